"""The access-log lines of the proxies a test runs in its own process (``conftest.access_lines``).

``ACCESS`` (sso_proxy.observability.accesslog) is the process's one access log; during each test
it writes into an ``AccessLines`` instead of the terminal. Real ``sso-proxy serve`` processes
write theirs to their stdout (``ProxyProcess.events("access")``).
"""

from __future__ import annotations

import io
import json
from typing import Any

from sso_proxy.observability.accesslog import ACCESS


class Discard(io.StringIO):
    """Where lines go between tests: nowhere."""

    def write(self, text: str) -> int:
        return len(text)


class AccessLines:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def events(self) -> list[dict[str, Any]]:
        """Every line written so far (flushed first), parsed."""
        ACCESS.flush()
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def clear(self) -> None:
        ACCESS.flush()
        self.stream.seek(0)
        self.stream.truncate()
