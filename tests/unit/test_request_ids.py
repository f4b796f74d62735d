"""Request ids (``observability.request_ids``): one maker for log lines, error pages and the access log."""

from __future__ import annotations

import os
import re
import warnings

from sso_proxy.observability import recorder
from sso_proxy.observability.request_ids import new_request_id


def test_ids_are_sixteen_hex_digits_and_never_repeat() -> None:
    made = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", made_id) for made_id in made)
    assert len(set(made)) == len(made)


def test_the_bound_id_is_one_of_them() -> None:
    bound = recorder.bind_request_id()
    assert re.fullmatch(r"[0-9a-f]{16}", bound)
    assert bound[:8] == new_request_id()[:8]  # this process's prefix


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    """Workers are forked from one parent: without a new prefix each would repeat the parent's ids."""
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of fork() in a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{16}", child)
    assert child[:8] != parent[:8]
