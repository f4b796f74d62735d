"""The session store: reachable, which Redis, and whether everyone stays signed in across a restart.

A Redis that neither appends (AOF) nor snapshots (RDB save points) starts empty after a restart:
every user is signed out at once. That works, so it is a warning, not a failure. So is an
eviction policy that may drop sessions under memory pressure (``volatile-*`` policies evict keys
with a TTL, which every session and every user index has: an evicted index hides that user's
sessions from a revocation). A read-only replica refuses every login: a failure. So is a Redis
user that may not use the invalidation channel (``channel_check``): sign-outs would not reach the
other replicas at once, and every replica turns its session cache off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from redis.exceptions import ResponseError

from sso_proxy.config.schema import Config
from sso_proxy.doctor.outcome import Check, Status, failed, mask_url, passed, warned, worst
from sso_proxy.sessions.redis_client import REDIS_FAILURES, build_client, url_credentials
from sso_proxy.sessions.redis_pubsub import CHANNEL, acl_fix

LABEL = "session store"
CHANNEL_LABEL = "session channel"
PROBE = "doctor"  # what doctor publishes: no storage hint, so every replica ignores it
_FAILURES: tuple[type[BaseException], ...] = (*REDIS_FAILURES, ValueError)


def memory_check(workers: int) -> Check:
    """The in-process store: fine for a demo, wrong for production, broken with several workers."""
    en = "memory store: sessions are lost at every restart and not shared between replicas"
    th = "เก็บเซสชันในหน่วยความจำ: รีสตาร์ตแล้วผู้ใช้ทุกคนต้องเข้าระบบใหม่ และไม่แชร์ระหว่างเครื่อง"
    if workers > 1:
        return failed(LABEL, en + f" nor between the {workers} workers (use redis)", th)
    return warned(LABEL, en + " (use redis for production)", th)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def persistence(info: Mapping[str, Any], save: str | None) -> tuple[Status, str, str]:
    """How the data survives a restart, from ``INFO persistence`` and ``CONFIG GET save``."""
    aof = str(info.get("aof_enabled", "0")) == "1"
    points = save.strip() if save is not None else None
    failing = [
        key
        for key in ("aof_last_write_status", "rdb_last_bgsave_status")
        if _text(info.get(key, "ok")) != "ok"
    ]
    if failing:
        return (
            Status.WARN,
            f"persistence is failing ({', '.join(failing)} not ok: disk full?)",
            "บันทึกลงดิสก์ล้มเหลว",
        )
    if aof:
        extra = f", RDB save {points}" if points else ""
        return Status.PASS, f"AOF on{extra}", "บันทึกข้อมูลลงดิสก์ (AOF) ผู้ใช้ยังอยู่หลังรีสตาร์ต"
    if points:
        return (
            Status.PASS,
            f"AOF off, RDB save {points} (logins since the last snapshot are lost on a crash)",
            "บันทึกแบบ snapshot (RDB)",
        )
    if points is None:
        return Status.WARN, "AOF off, RDB save points unknown (CONFIG GET refused)", "ตรวจการบันทึกลงดิสก์ไม่ได้"
    return (
        Status.WARN,
        "no persistence (AOF off, no RDB save points): a Redis restart signs everyone out",
        "Redis ไม่บันทึกลงดิสก์: รีสตาร์ต Redis แล้วผู้ใช้ทุกคนต้องเข้าระบบใหม่",
    )


def eviction(maxmemory: Any, policy: str | None) -> str | None:
    """A warning when Redis may drop sessions to make room; None when it never will."""
    try:
        limit = int(_text(maxmemory or 0))
    except ValueError:
        limit = 0
    if limit <= 0 or policy in (None, "noeviction"):
        return None
    return (
        f"maxmemory-policy {policy} may evict sessions when memory is full, and a user's session index"
        " with them: `sessions revoke` and the console's revoke would then miss that user's sessions"
        " (use noeviction)"
    )


async def _config_value(client: Any, name: str) -> str | None:
    try:
        reply = await client.config_get(name)
    except REDIS_FAILURES:
        return None  # managed Redis often forbids CONFIG
    for key, value in dict(reply).items():
        if _text(key) == name:
            return _text(value)
    return None


async def _facts(config: Config) -> dict[str, Any]:
    client = build_client(config.session)
    try:
        facts: dict[str, Any] = {}
        for section in ("server", "persistence", "replication", "memory"):
            facts.update(await client.info(section))
        facts["save"] = await _config_value(client, "save")
        facts["policy"] = await _config_value(client, "maxmemory-policy")
        return facts
    finally:
        await client.aclose()


def where(config: Config) -> str:
    cfg = config.session
    if cfg.redis_sentinels:
        return f"sentinels {', '.join(cfg.redis_sentinels)} master {cfg.redis_sentinel_master}"
    return mask_url(cfg.redis_url or "")


async def store_check(config: Config, seconds: float = 10.0) -> Check:
    if config.session.store != "redis":
        return memory_check(config.workers)
    try:
        async with asyncio.timeout(seconds):
            facts = await _facts(config)
    except _FAILURES as exc:
        en = f"redis at {where(config)} not reachable: {type(exc).__name__}: {exc}"
        return failed(LABEL, en, "เชื่อมต่อ Redis ไม่ได้")
    return facts_check(config, facts)


def facts_check(config: Config, facts: Mapping[str, Any]) -> Check:
    version = _text(facts.get("redis_version", "?"))
    status, how, th = persistence(facts, facts.get("save"))
    en = f"redis at {where(config)} reachable, Redis {version}, {how}"
    notes: list[str] = []
    if (note := eviction(facts.get("maxmemory"), facts.get("policy"))) is not None:
        notes.append(note)
        status = worst([status, Status.WARN])
    if _text(facts.get("role", "master")) not in ("master", "primary"):
        notes.append("this Redis is a read-only replica: logins cannot be stored (point at the master)")
        status = Status.FAIL
    return Check(LABEL, status, en, "เชื่อมต่อ Redis ได้ " + th, tuple(notes))


async def channel_check(config: Config, seconds: float = 10.0) -> Check:
    """May the configured Redis user SUBSCRIBE and PUBLISH on the invalidation channel?"""
    user = url_credentials(config.session.redis_url).get("username") or "default"
    try:
        async with asyncio.timeout(seconds):
            refused = await _refused(config)
    except _FAILURES as exc:
        en = f"not tried: redis at {where(config)} not reachable: {type(exc).__name__}"
        return failed(CHANNEL_LABEL, en, "ไม่ได้ตรวจ เพราะเชื่อมต่อ Redis ไม่ได้")
    if refused is not None:  # NOPERM: an ACL user without the channel (Redis 7's default)
        command, refusal = refused
        en = (
            f"redis user {user} may not {command} on channel {CHANNEL} ({refusal}): sign-outs and"
            " revocations would not reach the other replicas at once, so every replica keeps its"
            f" session cache off; fix: {acl_fix(user)} (and in the aclfile, if Redis uses one)"
        )
        th = f"ผู้ใช้ Redis {user} ไม่มีสิทธิ์ใช้ช่อง {CHANNEL}: การออกจากระบบไม่ถึงเครื่องอื่นทันที แก้ด้วย {acl_fix(user)}"
        return failed(CHANNEL_LABEL, en, th)
    en = f"redis user {user} may SUBSCRIBE and PUBLISH on {CHANNEL}: sign-outs reach every replica at once"
    th = f"ผู้ใช้ Redis {user} ใช้ช่อง {CHANNEL} ได้: การออกจากระบบถึงทุกเครื่องทันที"
    return passed(CHANNEL_LABEL, en, th)


async def _refused(config: Config) -> tuple[str, ResponseError] | None:
    """SUBSCRIBE until Redis confirms, then PUBLISH a probe: the command Redis refused, if any."""
    client = build_client(config.session)
    try:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            while await pubsub.get_message(timeout=1.0) is None:
                pass  # until the confirmation (or the refusal, raised)
        except ResponseError as exc:
            return "SUBSCRIBE", exc
        finally:
            await pubsub.aclose()
        try:
            await client.publish(CHANNEL, PROBE)
        except ResponseError as exc:
            return "PUBLISH", exc
        return None
    finally:
        await client.aclose()
