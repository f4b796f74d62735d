"""Client of the MOPH Health ID and Provider ID APIs (see docs/moph-api.md)."""

from sso_proxy.moph.client import MophClient
from sso_proxy.moph.http import MAX_BODY_BYTES, Observer
from sso_proxy.moph.tokens import HealthToken, LoginResult, ProviderToken

__all__ = ["MAX_BODY_BYTES", "HealthToken", "LoginResult", "MophClient", "Observer", "ProviderToken"]
