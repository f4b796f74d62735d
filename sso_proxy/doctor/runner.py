"""``sso-proxy doctor``: run every check, print one line each in a fixed order, exit 1 on a failure.

The live checks run concurrently (a host that does not answer costs one timeout, not one per
check), but print in the order an operator reads them: the file, what to register, where the
admin console is, how traffic leaves, each MOPH server, the session store (and, for Redis, its
invalidation channel), the signing keys.
Each line is printed as soon as it and every line above it are done.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from sso_proxy.config.schema import Config
from sso_proxy.doctor.config_checks import config_check, console_check, redirect_uri_check, signing_check
from sso_proxy.doctor.egress_line import egress_check, egress_for
from sso_proxy.doctor.idp_checks import clock_check, key_check
from sso_proxy.doctor.outcome import Check, Redactor, exit_code, failed, render
from sso_proxy.doctor.reachability import probe_host
from sso_proxy.doctor.store_checks import channel_check, store_check
from sso_proxy.moph.egress import Egress
from sso_proxy.sessions.redis_client import url_credentials
from sso_proxy.upstream.clients import client_session

Emit = Callable[[Check], None]


def secrets_of(config: Config, egresses: Mapping[str, Egress]) -> list[str | None]:
    """Every secret value the config or the proxy settings hold: none of them may be printed."""
    return [
        config.health_id.client_secret,
        config.provider_id.secret_key,
        config.session.cookie_secret,
        url_credentials(config.session.redis_url).get("password"),
        *(egress.password for egress in egresses.values()),
    ]


async def run_checks(path: str, environ: Mapping[str, str], emit: Emit) -> list[Check]:
    """Every check's result, each handed to ``emit`` in print order as soon as it is known."""
    first, config = config_check(path)
    if config is None:
        emit(first)
        return [first]
    egresses = egress_for(config, environ)
    redact = Redactor(secrets_of(config, egresses))
    done: list[Check] = []

    def out(check: Check) -> None:
        done.append(check)
        emit(masked(check, redact))

    for check in (first, redirect_uri_check(config), console_check(config), egress_check(egresses)):
        out(check)
    async with client_session(trust_env=False) as session:  # the proxy is chosen per call
        tasks = [asyncio.ensure_future(job) for job in _live(config, egresses, session)]
        try:
            for task in tasks:
                out(await task)
        finally:
            for task in tasks:
                task.cancel()
    out(signing_check(config))
    return done


def _live(
    config: Config, egresses: Mapping[str, Egress], session: aiohttp.ClientSession
) -> list[Awaitable[Check]]:
    jobs: list[Awaitable[Check]] = []
    for name, cfg in (("health_id", config.health_id), ("provider_id", config.provider_id)):
        egress = egresses[name]
        if egress.problem is not None:  # the login's calls fail too: they never bypass a bad proxy
            jobs += [_not_tried(f"{name} {what}", egress.problem) for what in ("host", "key", "clock")]
            continue
        jobs.append(probe_host(name, cfg.base_url, egress=egress, seconds=cfg.timeout))
        jobs.append(key_check(name, config, session, egress))
        jobs.append(clock_check(name, cfg.base_url, session, egress, cfg.timeout))
    jobs.append(store_check(config))
    if config.session.store == "redis":
        jobs.append(channel_check(config))
    return jobs


async def _not_tried(label: str, problem: str) -> Check:
    return failed(label, f"not tried: {problem}", "ไม่ได้ตรวจ เพราะตั้งค่าพร็อกซีขาออกไม่ถูกต้อง")


def masked(check: Check, redact: Redactor) -> Check:
    return Check(
        check.name,
        check.status,
        redact(check.en),
        redact(check.th),
        tuple(redact(detail) for detail in check.details),
    )


def print_check(check: Check) -> None:
    """UTF-8 whatever the locale says, so the Thai half and the marks always print."""
    text = "".join(line + "\n" for line in render(check))
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def doctor_main(path: str) -> int:
    checks = asyncio.run(run_checks(path, dict(os.environ), print_check))
    return exit_code(checks)
