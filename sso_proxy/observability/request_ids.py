"""The one maker of request ids: for the log lines of a request and its access-log line.

An id is 16 hex digits: this process's random prefix (new in every forked worker, so workers never
repeat each other) and a counter. Ids name requests in logs and on error pages ("reference"); they
are not secrets and grant nothing, so a counter serves (and costs a fraction of a random token).
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter = itertools.count()


def new_request_id() -> str:
    """A request id, unique in this process's lifetime (and, by the prefix, across workers)."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFF:08x}"


def _reseed() -> None:
    """A new prefix and counter: at import, and in a forked child (else it repeats the parent's)."""
    global _prefix, _counter
    _prefix = f"{secrets.randbits(32):08x}"
    _counter = itertools.count(secrets.randbits(32))


_reseed()
os.register_at_fork(after_in_child=_reseed)
