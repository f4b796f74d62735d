"""One deadline for a whole login's MOPH calls, shorter than what the front door waits.

A login makes up to five calls (Health ID token and key, Provider ID token and key, profile),
each bounded by its IdP's ``timeout`` (10 s by default). Five slow calls in a row would take 50 s,
but the shipped nginx gives the callback request ``proxy_read_timeout 30s``: the browser would get
nginx's bare 504 instead of our page that says MOPH is slow and offers a retry. So the whole login
gets ``health_id.timeout + provider_id.timeout`` (one slow answer from each), never more than
``MAX_LOGIN_SECONDS``, which leaves the session-store write and the answer inside nginx's 30 s.
Each call waits for the smaller of its own timeout and what is left; a call is never started
once the deadline has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# SECURITY (availability): under deploy/nginx's proxy_read_timeout (30 s) with room to answer.
MAX_LOGIN_SECONDS = 25.0


def login_seconds(health_timeout: float, provider_timeout: float) -> float:
    """The budget of one whole login (see the module doc)."""
    return min(health_timeout + provider_timeout, MAX_LOGIN_SECONDS)


class Deadline:
    """A point in ``time.monotonic()`` time, and what is left until it."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return self.at - self._clock()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def limit(self, timeout: float) -> tuple[float, bool]:
        """The wait for a call whose own timeout is ``timeout``, and whether the deadline set it."""
        left = self.remaining()
        return (left, True) if left < timeout else (timeout, False)

    def describe(self) -> str:
        return f"the login's deadline of {self.seconds:g}s passed"
