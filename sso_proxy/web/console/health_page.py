"""The console's health page: is the session store there (and how fast, and does it persist),
how did the last MOPH calls go, which keys sign, which config runs, which version.

Read-only, this process's view (another replica may differ in its MOPH calls and reloads).
"""

from __future__ import annotations

import time

from aiohttp import web

from sso_proxy import __version__
from sso_proxy.errors import StoreUnavailable
from sso_proxy.observability.metrics import RECENT_IDP_CALLS
from sso_proxy.observability.reloads import HISTORY, ConfigLoad, file_sha256
from sso_proxy.sessions.redis_client import REDIS_FAILURES
from sso_proxy.web import pages
from sso_proxy.web.console.console_http import Admin
from sso_proxy.web.console.console_layout import console_page, label, table, when
from sso_proxy.web.console.console_state import CONSOLE_STATE, ConsoleState
from sso_proxy.web.console.event_redis import RedisEvents
from sso_proxy.web.pages import esc

PERSISTENCE_KEYS = (
    "aof_enabled",
    "rdb_last_bgsave_status",
    "rdb_last_save_time",
    "rdb_changes_since_last_save",
)


async def health_view(request: web.Request, admin: Admin) -> web.StreamResponse:
    rt = admin.rt
    sections = [
        ("ที่เก็บเซสชัน", "Session store", await store_rows(admin, request.app[CONSOLE_STATE])),
        ("การเรียก MOPH ล่าสุด", "Last MOPH calls", idp_rows()),
        ("กุญแจลงนาม", "Signing keys", key_rows(admin)),
        ("ไฟล์ตั้งค่า", "Config file", config_rows(rt.config.source)),
        ("รุ่น", "Version", [("sso-proxy", esc(__version__))]),
    ]
    body = "".join(
        f"<h3>{label(th, en)}</h3>"
        + table((("รายการ", "Item"), ("ค่า", "Value")), [[esc(k), v] for k, v in rows], cards=False)
        for th, en, rows in sections
    )
    text = console_page(
        section="health", admin_name=admin.identity.name_th or "", admin_id=admin.provider_id, body_html=body
    )
    return pages.html_response(text)


async def store_rows(admin: Admin, state: ConsoleState) -> list[tuple[str, str]]:
    rt, events = admin.rt, state.events
    kind = rt.config.session.store
    started = time.perf_counter()
    try:
        await rt.store.ping()
        reach = f'<span class="ok">{label("ติดต่อได้", "reachable")}</span>'
    except StoreUnavailable as exc:
        reach = f'<span class="no">{label("ติดต่อไม่ได้", "unreachable")}</span> {esc(exc.detail)}'
    latency = f"{(time.perf_counter() - started) * 1000:.1f} ms"
    rows = [("store", esc(kind)), ("status", reach), ("ping", esc(latency))]
    heartbeat = rt.store_ok_at
    age = f"{time.monotonic() - heartbeat:.1f} s" if heartbeat else "-"
    rows.append(("heartbeat age", esc(age)))
    rows.append(("persistence", await persistence(events) if kind == "redis" else memory_note()))
    kept = (
        f"≤ {events.max_events:,} (+ ≤ {events.max_admin:,} admin actions and revocations, "
        f"+ ≤ {events.max_anonymous:,} anonymous), ≤ {events.max_age / 86400:g} d"
    )
    rows.append(("events kept", esc(kept)))
    rows.append(("events dropped (queue full)", esc(str(state.sink.dropped))))
    return rows


def memory_note() -> str:
    return label(
        "ไม่มี: เซสชันอยู่ในหน่วยความจำของโปรเซสนี้ หายเมื่อรีสตาร์ต", "none: in this process's memory, lost on restart"
    )


async def persistence(events: object) -> str:
    if not isinstance(events, RedisEvents):
        return "-"
    try:
        info = await events.client.info("persistence")
    except REDIS_FAILURES as exc:
        return esc(f"unknown ({type(exc).__name__})")
    parts = []
    for key in PERSISTENCE_KEYS:
        value = info.get(key, "-") if isinstance(info, dict) else "-"
        if key == "rdb_last_save_time" and isinstance(value, int):
            value = when(value)
        parts.append(f"{key}: {value}")
    return "<br>".join(esc(part) for part in parts)


def idp_rows() -> list[tuple[str, str]]:
    calls = list(RECENT_IDP_CALLS)[-20:]
    if not calls:
        return [("-", label("ยังไม่มีการเรียกตั้งแต่เริ่มโปรเซส", "no call since this process started"))]
    rows = []
    for at, name, seconds, outcome in reversed(calls):
        css = "ok" if outcome == "ok" else "no"
        rows.append(
            (name, f'{esc(when(at))} · <span class="{css}">{esc(outcome)}</span> · {seconds * 1000:.0f} ms')
        )
    return rows


def key_rows(admin: Admin) -> list[tuple[str, str]]:
    keys = admin.rt.signer.jwks().get("keys", [])
    rows = [
        (f"kid{' (signs)' if i == 0 else ''}", f"<code>{esc(k.get('kid', '-'))}</code>")
        for i, k in enumerate(keys)
    ]
    jwks = admin.rt.config.public_url + "/.well-known/jwks.json"
    rows.append(("JWKS", f'<a href="{esc(jwks)}">{esc(jwks)}</a>'))
    return rows


def config_rows(source: str) -> list[tuple[str, str]]:
    running = HISTORY.running
    on_disk = file_sha256(source)
    rows = [("file", esc(source or "-"))]
    rows.append(("sha256 (running)", f"<code>{esc(running.sha256 if running else '-')}</code>"))
    changed = running is not None and on_disk != running.sha256
    note = f' <span class="no">{label("ไฟล์ถูกแก้หลังโหลด", "changed since loaded")}</span>' if changed else ""
    rows.append(("sha256 (on disk now)", f"<code>{esc(on_disk or '-')}</code>{note}"))
    rows.append(("last reload", reload_text(HISTORY.last_reload)))
    return rows


def reload_text(load: ConfigLoad | None) -> str:
    if load is None:
        return label("ยังไม่มีการโหลดใหม่ (SIGHUP)", "no reload (SIGHUP) yet")
    if load.ok:
        return f'{esc(when(load.at))} · <span class="ok">{label("สำเร็จ", "applied")}</span>'
    problems = "<br>".join(esc(p) for p in load.problems)
    return f'{esc(when(load.at))} · <span class="no">{label("ถูกปฏิเสธ", "refused")}</span><br>{problems}'
