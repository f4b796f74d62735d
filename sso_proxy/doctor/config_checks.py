"""The checks that read only local files: the config itself, the redirect URI, the admin console,
the signing keys.

The config is validated exactly as ``check-config`` and ``serve`` validate it (``load_config``):
the doctor adds live checks on top and never a second opinion on the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from sso_proxy.config.schema import Config, load_config, summary
from sso_proxy.doctor.outcome import Check, failed, passed, warned
from sso_proxy.errors import ConfigError
from sso_proxy.identity.key_files import key_file_warnings, load_signing_keys

JWKS_PATH = "/.well-known/jwks.json"


def config_check(path: str, environ: Mapping[str, str] | None = None) -> tuple[Check, Config | None]:
    """The config line, and the config when it is valid (the other checks need it)."""
    try:
        config = load_config(path, environ)
    except ConfigError as exc:
        en = f"{path}: {len(exc.problems)} problem(s)"
        return failed("config", en, "ไฟล์ตั้งค่าไม่ถูกต้อง", exc.problems), None
    en = f"{path}: {summary(config)}"
    if config.warnings:
        return warned("config", en, "ไฟล์ตั้งค่าใช้ได้ แต่มีคำเตือน", config.warnings), config
    return passed("config", en, "ไฟล์ตั้งค่าถูกต้อง"), config


def redirect_uri_check(config: Config) -> Check:
    """The exact string to register with Health ID: MOPH compares it character by character."""
    uri = config.redirect_uri
    en = f"register exactly {uri} with Health ID"
    th = f"ลงทะเบียน redirect URI กับ Health ID ให้ตรงทุกตัวอักษร: {uri}"
    if not uri.startswith("https://"):
        return warned("redirect_uri", en + " (not https: MOPH production expects https)", th)
    return passed("redirect_uri", en, th)


def console_check(config: Config) -> Check:
    """Where the admin console is, or why it is off: a route on the login host shares its origin
    (``Config.login_host_routes``), and the console then refuses every request."""
    url = config.public_url + "/oauth2/admin/"
    if not config.admin.allow:
        return passed("admin console", f"not in use: no admin.allow rules ({url})", "ไม่ได้เปิดใช้")
    if shared := config.login_host_routes:
        names = ", ".join(shared)
        en = (
            f"off: {names} is served on the login host {config.public_host}, the console's origin; "
            f"give {names} a host name of its own"
        )
        return warned("admin console", en, f"คอนโซลผู้ดูแลระบบปิดอยู่ เพราะ {names} อยู่บนโฮสต์เข้าสู่ระบบ")
    return passed("admin console", f"at {url} for the admin rules", "คอนโซลผู้ดูแลระบบพร้อมใช้งาน")


def signing_check(config: Config) -> Check:
    """Key files load as serve loads them; lists each kid (the first signs) and the JWKS URL."""
    jwks = config.public_url + JWKS_PATH
    paths = config.signing.key_files
    if not paths and config.signing.ephemeral:
        en = f"signing.ephemeral: a new key at every start, replicas disagree (tests only); JWKS at {jwks}"
        return warned("signing keys", en, "กุญแจชั่วคราว ใช้สำหรับทดสอบเท่านั้น")
    if not paths:
        en = "signing.key_files is empty: serve refuses to start (sso-proxy keys generate --out FILE)"
        return failed("signing keys", en, "ยังไม่มีไฟล์กุญแจสำหรับลงนาม")
    try:
        keys = load_signing_keys(paths)
    except ConfigError as exc:
        if len(exc.problems) == 1:  # the usual case: the whole story on the mark's line
            return failed("signing keys", exc.problems[0], "อ่านไฟล์กุญแจสำหรับลงนามไม่ได้")
        en = f"{len(exc.problems)} key file problems"
        return failed("signing keys", en, "อ่านไฟล์กุญแจสำหรับลงนามไม่ได้", exc.problems)
    kids = ", ".join(f"{key.kid} ({'signs' if i == 0 else 'published'})" for i, key in enumerate(keys))
    en = f"kid {kids}; JWKS at {jwks}"
    th = f"กุญแจสำหรับลงนาม {len(keys)} ดอก เผยแพร่ที่ {jwks}"
    if warnings := key_file_warnings(paths):
        return warned("signing keys", en, th, warnings)
    return passed("signing keys", en, th)
