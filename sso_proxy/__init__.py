"""sso-proxy: identity-aware reverse proxy and SSO sidecar for MOPH Health ID + Provider ID."""

__version__ = "0.1.0"
