"""Settings of the bundled MOPH mock: client registrations, code lifetime and the clock.

The defaults are invented credentials shaped like real registrations (moph-api.md §8): a UUIDv7
Health ID client with a 40-char hex secret and a UUIDv4 Provider ID client with a 32-char
mixed-case secret. They are public on purpose; the mock guards nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

HEALTH_TOKEN_TTL = 31_535_998  # seconds; the manual's example value (~1 year)
PROVIDER_TOKEN_TTL = 86_400  # seconds; one day per the manual
CENTER_TOKEN_TTL = 86_400  # MOPH Account Center token lifetime is undocumented; one day here
# What the Health ID and Provider ID tokens may be signed with. The manual shows RS256 (the
# default); RS384/RS512 let a test show the client takes what an RSA key may sign with.
TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512")


def _wall_clock() -> Callable[[], float]:
    return time.time


@dataclass
class MockSettings:
    """How the mock behaves. ``clock`` is injectable so tests can expire codes and tokens."""

    health_client_id: str = "0193a8f2-6c1e-7b3d-9a4f-2e5d8c7b1a09"
    health_client_secret: str = "3f9c2b7e1d4a6f8091c3e5b7d9f1a2c4e6b8d0f2"
    provider_client_id: str = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
    provider_secret_key: str = "Xk29PqLm7RtV4sWz8YbN3cHd6FgJ1aQe"
    # Registered redirect URIs, matched exactly. Empty: accept any absolute http(s) URI (ad-hoc
    # use), but the code is still bound to the URI it was issued for.
    redirect_uris: list[str] = field(default_factory=list)
    code_ttl: float = 600.0
    # Seconds since the epoch; replace in tests to move time without sleeping.
    clock: Callable[[], float] = field(default_factory=_wall_clock)
    # More Health ID clients (client_id -> secret), e.g. to test "Code and Client ID not match.".
    extra_health_clients: dict[str, str] = field(default_factory=dict)
    # The ``iss`` claim of Health ID tokens (only seen in a weak source; see moph-api.md §5).
    health_issuer: str = "https://moph.id.th"
    # Signing algorithm of the Health ID and Provider ID tokens (one of TOKEN_ALGORITHMS).
    token_algorithm: str = "RS256"

    def __post_init__(self) -> None:
        if self.token_algorithm not in TOKEN_ALGORITHMS:
            raise ValueError(f"token_algorithm must be one of {', '.join(TOKEN_ALGORITHMS)}")

    def health_clients(self) -> dict[str, str]:
        """Every registered Health ID client, client_id -> client_secret."""
        return {**self.extra_health_clients, self.health_client_id: self.health_client_secret}
