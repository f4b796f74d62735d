"""Failure pages: what happened (the error's own words) and what to do next, with ONE action.

Every kind of failure has advice and a primary action that leads somewhere new, never back into
the same wall: a fresh login for a login that failed on the way, the official Provider ID site
for a person without one, sign-out for a refusal, the login host's "My apps" for a wrong address,
nothing at all where retrying cannot help (then the reference for the IT office is the way on).
Pure: values in, HTML out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sso_proxy.errors import SsoProxyError
from sso_proxy.web.pages import actions, esc, link_button, page

PROVIDER_ID_SITE = "https://provider.id.th"
IT_TH = "หากยังพบปัญหา กรุณาแจ้งงานไอทีของหน่วยงานพร้อมรหัสอ้างอิงด้านล่าง"
IT_EN = "If it keeps happening, tell your IT office the reference below."


@dataclass(frozen=True, slots=True)
class NextStep:
    advice_th: str
    advice_en: str
    # "retry": the raiser's fresh start (``retry_url``), else this address again; "restart": the
    # same, else the host's root; "sign_in"; "provider_id"; "home": "My apps"; "switch": the
    # sign-out page; "": no button (retrying cannot help).
    kind: str
    label_th: str = "ลองอีกครั้ง"
    label_en: str = "Try again"


RETRY = NextStep(f"ลองอีกครั้ง {IT_TH}", f"Try again. {IT_EN}", "retry")
LOGIN_AGAIN = NextStep(f"ลองเข้าสู่ระบบอีกครั้ง {IT_TH}", f"Try signing in again. {IT_EN}", "retry")
WAIT = NextStep("รอสักครู่แล้วลองอีกครั้ง", "Wait a moment, then try again.", "retry")
LATER = NextStep(f"ลองใหม่ภายหลัง {IT_TH}", f"Try again later. {IT_EN}", "retry")
ADDRESS = NextStep(
    "ตรวจสอบลิงก์ที่ใช้ หรือเริ่มใหม่จากหน้าแอปของฉัน",
    "Check the link you used, or start again from My apps.",
    "home",
    "แอปของฉัน",
    "My apps",
)
STEPS: dict[str, NextStep] = {
    "internal_error": RETRY,
    "bad_request": ADDRESS,
    "not_found": ADDRESS,
    "https_required": NextStep(
        "เปิดที่อยู่นี้ใหม่โดยขึ้นต้นด้วย https://", "Open the address again starting with https://.", ""
    ),
    "unauthenticated": NextStep(
        "เข้าสู่ระบบด้วย Provider ID อีกครั้งเพื่อใช้งานต่อ",
        "Sign in with Provider ID again to carry on.",
        "sign_in",
        "เข้าสู่ระบบ",
        "Sign in",
    ),
    "forbidden": NextStep(
        "หากเป็นเครื่องที่ใช้ร่วมกัน บัญชีที่เข้าสู่ระบบอยู่อาจเป็นของผู้ใช้ก่อนหน้า ให้ออกจากระบบแล้วเข้าสู่ระบบด้วยบัญชีของท่าน "
        "หากต้องการสิทธิ์ กรุณาติดต่องานไอทีของหน่วยงาน",
        "On a shared computer the account signed in may be the previous person's: sign out and sign in "
        "with your own. If you need access, contact your IT office.",
        "switch",
        "ออกจากระบบหรือเปลี่ยนบัญชี",
        "Sign out or switch account",
    ),
    "console_off": NextStep(
        "ปัญหานี้ไม่ได้เกิดจากบัญชีของท่าน กรุณาแจ้งผู้ดูแลบริการเข้าสู่ระบบนี้พร้อมรหัสอ้างอิงด้านล่าง",
        "Nothing about your account causes this: tell the administrator of this sign-in service the "
        "reference below.",
        "switch",
        "ออกจากระบบหรือเปลี่ยนบัญชี",
        "Sign out or switch account",
    ),
    "login_failed": LOGIN_AGAIN,
    "login_cancelled": NextStep(
        "หากต้องการใช้งาน กดปุ่มด้านล่างเพื่อเข้าสู่ระบบอีกครั้ง หากไม่ต้องการ ปิดหน้านี้ได้เลย",
        "To use the application, press the button below to sign in again. Otherwise you can close this page.",
        "retry",
        "เข้าสู่ระบบอีกครั้ง",
        "Sign in again",
    ),
    "login_state_invalid": NextStep(
        "กดปุ่มด้านล่างเพื่อเริ่มเข้าสู่ระบบใหม่ในแท็บนี้ แล้วทำให้เสร็จภายในไม่กี่นาที",
        "Press the button below to start the sign-in again in this tab, and finish it within a few minutes.",
        "restart",
        "เริ่มเข้าสู่ระบบใหม่",
        "Start again",
    ),
    "no_provider_id": NextStep(
        "ขอให้งานบุคคล (HR) ของโรงพยาบาลหรือหน่วยงานของท่านลงทะเบียนท่านในระบบ Provider ID "
        "ขั้นตอนอยู่ที่เว็บไซต์ทางการ provider.id.th เมื่อลงทะเบียนแล้ว จึงเปิดแอปที่ต้องการอีกครั้ง",
        "Ask the HR office of your hospital or unit to register you in Provider ID; the official site "
        "provider.id.th explains how. Once you are registered, open the application again.",
        "provider_id",
        "ไปที่ provider.id.th",
        "Go to provider.id.th",
    ),
    "idp_error": LOGIN_AGAIN,
    "idp_unavailable": WAIT,
    "idp_code_rejected": NextStep(
        "เข้าสู่ระบบอีกครั้ง โดยไม่กดรีเฟรชระหว่างเข้าสู่ระบบ",
        "Sign in again, without refreshing the page while signing in.",
        "retry",
        "เข้าสู่ระบบอีกครั้ง",
        "Sign in again",
    ),
    "idp_bad_credentials": NextStep(
        "กรุณาแจ้งงานไอทีของหน่วยงานพร้อมรหัสอ้างอิงด้านล่าง การลองใหม่จะไม่ช่วย",
        "Please tell your IT office the reference below: trying again will not help.",
        "",
    ),
    "idp_token_invalid": LOGIN_AGAIN,
    "session_store_unavailable": WAIT,
    "upstream_unavailable": LATER,
    "upstream_timeout": LATER,
}


def next_step(exc: SsoProxyError) -> NextStep:
    """The step for ``exc``'s code, else its nearest parent class's (a console error is a 403)."""
    for cls in type(exc).__mro__:
        step = STEPS.get(getattr(cls, "code", ""))
        if step is not None:
            return step
    return RETRY


def action_href(step: NextStep, exc: SsoProxyError, home: str) -> str | None:
    """Where the primary button goes (None: no button). ``home``: "My apps" ("" unknown)."""
    retry: str | None = getattr(exc, "retry_url", None)
    if step.kind == "retry":
        return retry or ""  # "": this very address again (a GET)
    if step.kind == "restart":
        return retry or "/"  # never the used link itself: a fresh start on this host
    if step.kind == "sign_in":
        return retry or "/oauth2/start"
    if step.kind == "provider_id":
        return PROVIDER_ID_SITE
    if step.kind == "switch":
        return "/oauth2/sign_out"
    if step.kind == "home":
        return home or None  # an unknown host's "/" is no way out
    return None


def failure_page(exc: SsoProxyError, *, reference: str, home: str = "") -> str:
    """The whole page: short heading, what happened and what to do in Thai then English, one button."""
    step = next_step(exc)
    said_th = exc.message_th if exc.message_th != exc.title_th else ""
    said_en = exc.message if exc.message != exc.title_en else ""
    href = action_href(step, exc, home)
    button = link_button(href, step.label_th, step.label_en) if href is not None else ""
    return page(
        title_th=exc.title_th,
        title_en=exc.title_en,
        body_th=f"{said_th} {step.advice_th}".strip(),
        body_en=f"{said_en} {step.advice_en}".strip(),
        extra_html=who_html(exc) + (actions(button) if button else ""),
        reference=reference,
    )


def who_html(exc: SsoProxyError) -> str:
    """Who is signed in, on a refusal whose raiser knows who asked: ``exc.signed_in_as`` =
    (name, provider_id), e.g. the admin console's 403 (the person's own data only)."""
    who = getattr(exc, "signed_in_as", None)
    if not isinstance(who, tuple) or len(who) != 2:
        return ""
    name, provider_id = (esc(part) for part in who)
    return (
        f'<p class="note">ผู้ที่เข้าสู่ระบบอยู่ <span lang="en">/ Signed in as</span>: <strong>{name}</strong> '
        f"(Provider ID <code>{provider_id}</code>)</p>"
    )
