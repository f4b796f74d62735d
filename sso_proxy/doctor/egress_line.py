"""The egress line: how the Health ID and Provider ID calls leave this machine.

The choice itself is the login's own (``sso_proxy.moph.egress``): the doctor only prints it, so
what it says is what the proxy will do. A proxy setting that cannot be used is a failure, since
the MOPH calls then fail rather than quietly going direct.
"""

from __future__ import annotations

from collections.abc import Mapping

from sso_proxy.config.schema import Config
from sso_proxy.doctor.outcome import Check, failed, passed
from sso_proxy.moph.egress import Egress, choose_proxy


def configured_proxy(config: Config) -> str | None:
    """The config's ``egress_proxy``, when this version of the config has that key."""
    value = getattr(config, "egress_proxy", None)
    return value if isinstance(value, str) and value.strip() else None


def egress_for(config: Config, environ: Mapping[str, str]) -> dict[str, Egress]:
    """The egress of each IdP, keyed ``health_id`` / ``provider_id``."""
    explicit = configured_proxy(config)
    return {
        "health_id": choose_proxy(config.health_id.base_url, environ, explicit),
        "provider_id": choose_proxy(config.provider_id.base_url, environ, explicit),
    }


def egress_check(egresses: Mapping[str, Egress]) -> Check:
    en = "; ".join(f"{name} {egress.describe()}" for name, egress in egresses.items())
    problems = sorted({egress.problem for egress in egresses.values() if egress.problem})
    if problems:
        return failed("egress proxy", en, "ตั้งค่าพร็อกซีขาออกไม่ถูกต้อง", problems)
    if any(egress.proxy is not None for egress in egresses.values()):
        return passed("egress proxy", en, "เรียก MOPH ผ่านพร็อกซีขาออก")
    return passed("egress proxy", en, "เรียก MOPH โดยตรง ไม่ผ่านพร็อกซี")
