"""The one exception tree of sso-proxy.

    SsoProxyError                      base; carries an HTTP status and a bilingual message
    ├── ConfigError                    the config file is invalid (carries every problem)
    ├── ListenError                    listen / metrics_listen cannot be bound (a one-line message)
    ├── BadRequest (400)               malformed or ambiguous request (paths, URIs, params)
    │   └── HttpsRequired (400)        plain http where the cookies are Secure (cookie_secure)
    ├── NotFound (404)                 no route for host + path
    ├── Unauthenticated (401)          no session (JSON clients / auth_request)
    ├── Forbidden (403)                rules refused the user, or a cross-site post
    ├── LoginError (4xx/5xx)           the login flow could not finish
    │   ├── LoginCancelled (400)       the person pressed cancel at MOPH (``error=access_denied``)
    │   ├── StateError (400)           state missing, expired, reused or not bound to this browser
    │   └── NoProviderId (403)         the person has Health ID but no Provider ID
    ├── IdpError (502)                 MOPH answered, but not with success
    │   ├── IdpUnavailable (503)       timeout, connection error, 5xx, garbage or truncated body
    │   ├── IdpRejectedCode (400)      422: invalid / expired / reused code, redirect_uri mismatch
    │   ├── IdpBadCredentials (502)    401: our client id / secret is wrong (operator's problem)
    │   ├── IdpNoProviderId (403)      400 "This user has not provider id"
    │   └── IdpTokenInvalid (502)      a JWT from MOPH failed verification
    ├── StoreUnavailable (503)         the session store did not answer in time
    │   └── EndedUnannounced (503)     ended in the store, not announced (sessions/ended.py)
    └── UpstreamError (502)            the upstream app could not be reached
        └── UpstreamTimeout (504)      the upstream app did not answer in time

Handlers raise; one renderer (``sso_proxy.web.render``) makes the page or JSON body. Each class
carries a SHORT heading (``title_*``) and what happened (``explain_*``, the default message), in
Thai and English; what the person can do next is the page's business (``sso_proxy.web.failures``).
"""

from __future__ import annotations


class SsoProxyError(Exception):
    """Base of every error sso-proxy raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    title_en: str = "Something went wrong"
    title_th: str = "เกิดข้อผิดพลาด"
    explain_en: str = "An unexpected error stopped this request."
    explain_th: str = "ระบบขัดข้องโดยไม่คาดคิด คำขอนี้จึงไม่สำเร็จ"

    def __init__(
        self,
        message: str = "",
        *,
        message_th: str = "",
        status: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message or self.explain_en or self.title_en)
        self.message = message or self.explain_en or self.title_en
        self.message_th = message_th or self.explain_th or self.title_th
        if status is not None:
            self.status = status
        # Operator-facing detail for logs; never shown to end users.
        self.detail = detail


class ConfigError(SsoProxyError):
    code = "config_error"
    title_en = "The configuration is invalid"
    title_th = "ไฟล์ตั้งค่าไม่ถูกต้อง"
    explain_en = explain_th = ""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) or self.title_en)
        self.problems = list(problems)


class ListenError(SsoProxyError):
    """``serve`` could not bind a configured address (port in use, address not on this machine):
    the message is the one line the operator reads, in English and Thai, naming the key."""

    code = "listen_error"
    title_en = "Cannot listen on the configured address"
    title_th = "เปิดพอร์ตที่ตั้งค่าไว้ไม่ได้"


class BadRequest(SsoProxyError):
    status = 400
    code = "bad_request"
    title_en = "Bad request"
    title_th = "คำขอไม่ถูกต้อง"
    explain_en = "This address or request could not be understood."
    explain_th = "ระบบไม่เข้าใจที่อยู่หรือคำขอนี้"


class HttpsRequired(BadRequest):
    """Plain http where the cookies are Secure (``sso_proxy.core.decide.plain_http``)."""

    code = "https_required"
    title_en = "This site works over https only"
    title_th = "เว็บไซต์นี้ใช้งานได้ผ่าน https เท่านั้น"


class NotFound(SsoProxyError):
    status = 404
    code = "not_found"
    title_en = "No application here"
    title_th = "ไม่พบแอปพลิเคชัน"
    explain_en = "No application is configured at this address."
    explain_th = "ไม่มีแอปพลิเคชันที่ตั้งค่าไว้ที่ที่อยู่นี้"


class Unauthenticated(SsoProxyError):
    status = 401
    code = "unauthenticated"
    title_en = "Please sign in"
    title_th = "กรุณาเข้าสู่ระบบ"
    explain_en = "You are not signed in, or your sign-in has expired."
    explain_th = "ท่านยังไม่ได้เข้าสู่ระบบ หรือการเข้าสู่ระบบหมดอายุแล้ว"


class Forbidden(SsoProxyError):
    status = 403
    code = "forbidden"
    title_en = "Access denied"
    title_th = "ไม่มีสิทธิ์เข้าใช้งาน"
    explain_en = "Your account is signed in, but is not permitted to do this."
    explain_th = "ท่านเข้าสู่ระบบแล้ว แต่บัญชีนี้ไม่มีสิทธิ์ทำรายการนี้"
    # (name, provider_id) of the person refused, when the raiser knows who asked: the page names
    # them (contract §5, ``web.failures.who_html``). Their own data only.
    signed_in_as: tuple[str, str] | None = None


class LoginError(SsoProxyError):
    status = 400
    code = "login_failed"
    title_en = "Sign-in failed"
    title_th = "เข้าสู่ระบบไม่สำเร็จ"
    explain_en = "The MOPH sign-in (Health ID) came back without a result, so you are not signed in."
    explain_th = "ระบบหมอพร้อม (Health ID) ส่งผลการเข้าสู่ระบบกลับมาไม่ครบ ท่านจึงยังไม่ได้เข้าสู่ระบบ"


class LoginCancelled(LoginError):
    code = "login_cancelled"
    title_en = "Sign-in cancelled"
    title_th = "ยกเลิกการเข้าสู่ระบบแล้ว"
    explain_en = "The sign-in was cancelled at the MOPH Health ID page, so you are not signed in."
    explain_th = "การเข้าสู่ระบบถูกยกเลิกที่หน้าหมอพร้อม (Health ID) ท่านจึงยังไม่ได้เข้าสู่ระบบ"


class StateError(LoginError):
    status = 400
    code = "login_state_invalid"
    title_en = "Please start again"
    title_th = "กรุณาเริ่มใหม่อีกครั้ง"
    explain_en = "The sign-in took too long or was opened in another tab, so it could not be finished here."
    explain_th = "การเข้าสู่ระบบใช้เวลานานเกินไป หรือถูกเปิดในแท็บอื่น จึงทำต่อในหน้านี้ไม่ได้"


class NoProviderId(LoginError):
    status = 403
    code = "no_provider_id"
    title_en = "No Provider ID yet"
    title_th = "ยังไม่มี Provider ID"
    explain_en = (
        "You signed in with Health ID (หมอพร้อม), but this account has no Provider ID. Provider ID is the "
        "Ministry of Public Health's account for registered health-care staff: hospital systems use it "
        "to know that you work in health care."
    )
    explain_th = (
        "ท่านเข้าสู่ระบบด้วยหมอพร้อม (Health ID) สำเร็จ แต่บัญชีนี้ยังไม่มี Provider ID "
        "ซึ่งเป็นบัญชีสำหรับบุคลากรสาธารณสุขที่ลงทะเบียนกับกระทรวงสาธารณสุข "
        "ระบบของโรงพยาบาลใช้ Provider ID เพื่อยืนยันว่าท่านเป็นบุคลากรสาธารณสุข"
    )


class IdpError(SsoProxyError):
    """MOPH Health ID / Provider ID did not give what we need.

    ``idp_message`` and ``idp_message_th`` keep exactly what the IdP said, for logs and pages.
    """

    status = 502
    code = "idp_error"
    title_en = "MOPH sign-in error"
    title_th = "ระบบหมอพร้อมตอบกลับผิดพลาด"
    explain_en = "The MOPH sign-in service answered with an error, so you are not signed in."
    explain_th = "ระบบยืนยันตัวตนของกระทรวงสาธารณสุขตอบกลับด้วยข้อผิดพลาด ท่านจึงยังไม่ได้เข้าสู่ระบบ"

    def __init__(
        self,
        message: str = "",
        *,
        message_th: str = "",
        status: int | None = None,
        detail: str = "",
        idp: str = "",
        http_status: int | None = None,
        idp_message: str = "",
        idp_message_th: str = "",
    ) -> None:
        super().__init__(message, message_th=message_th, status=status, detail=detail)
        self.idp = idp
        self.http_status = http_status
        self.idp_message = idp_message
        self.idp_message_th = idp_message_th


class IdpUnavailable(IdpError):
    status = 503
    code = "idp_unavailable"
    title_en = "MOPH sign-in is not answering"
    title_th = "ระบบหมอพร้อมไม่ตอบสนอง"
    explain_en = (
        "The MOPH sign-in service is not answering properly (no answer in time, or one that cannot be "
        "read), so you are not signed in. The problem is at the Ministry's service, not with your account."
    )
    explain_th = (
        "ระบบยืนยันตัวตนของกระทรวงสาธารณสุขไม่ตอบภายในเวลา หรือตอบกลับข้อมูลที่อ่านไม่ได้ "
        "ท่านจึงยังไม่ได้เข้าสู่ระบบ ปัญหาอยู่ที่ระบบของกระทรวง ไม่ใช่ที่บัญชีของท่าน"
    )


class IdpRejectedCode(IdpError):
    status = 400
    code = "idp_code_rejected"
    title_en = "Please sign in again"
    title_th = "กรุณาเข้าสู่ระบบใหม่"
    explain_en = "The sign-in code from MOPH expired or was already used (for example after a page refresh)."
    explain_th = "รหัสเข้าสู่ระบบจากหมอพร้อมหมดอายุหรือถูกใช้ไปแล้ว (เช่น หลังกดรีเฟรชหน้า)"


class IdpBadCredentials(IdpError):
    status = 502
    code = "idp_bad_credentials"
    title_en = "Sign-in is misconfigured"
    title_th = "ระบบเข้าสู่ระบบตั้งค่าไม่ถูกต้อง"
    explain_en = "MOPH refused this sign-in service's own credentials. Nothing you did caused this."
    explain_th = "กระทรวงสาธารณสุขไม่รับรหัสลูกข่ายของระบบเข้าสู่ระบบนี้ ปัญหานี้ไม่ได้เกิดจากท่าน"


class IdpNoProviderId(IdpError):
    status = 403
    code = "no_provider_id"
    title_en = NoProviderId.title_en
    title_th = NoProviderId.title_th
    explain_en = NoProviderId.explain_en
    explain_th = NoProviderId.explain_th


class IdpTokenInvalid(IdpError):
    status = 502
    code = "idp_token_invalid"
    title_en = "Sign-in could not be verified"
    title_th = "ตรวจสอบการเข้าสู่ระบบไม่ผ่าน"
    explain_en = "The identity data from MOPH failed verification, so you are not signed in."
    explain_th = "ข้อมูลยืนยันตัวตนที่ได้จากกระทรวงสาธารณสุขตรวจสอบไม่ผ่าน ท่านจึงยังไม่ได้เข้าสู่ระบบ"


class StoreUnavailable(SsoProxyError):
    status = 503
    code = "session_store_unavailable"
    title_en = "Temporarily unavailable"
    title_th = "ระบบไม่พร้อมใช้งานชั่วคราว"
    explain_en = (
        "The sign-in service cannot reach its session store right now. "
        "Your sign-in is kept and has not been lost."
    )
    explain_th = "ระบบเข้าสู่ระบบติดต่อที่เก็บข้อมูลการเข้าสู่ระบบไม่ได้ในขณะนี้ การเข้าสู่ระบบของท่านยังอยู่ ไม่สูญหาย"


class UpstreamError(SsoProxyError):
    status = 502
    code = "upstream_unavailable"
    title_en = "The application is not answering"
    title_th = "แอปพลิเคชันไม่ตอบสนอง"
    explain_en = "You are signed in, but the application behind this address could not be reached."
    explain_th = "ท่านเข้าสู่ระบบแล้ว แต่ติดต่อแอปพลิเคชันที่อยู่นี้ไม่ได้"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    title_en = "The application is too slow"
    title_th = "แอปพลิเคชันตอบช้าเกินไป"
    explain_en = "You are signed in, but the application took too long to answer."
    explain_th = "ท่านเข้าสู่ระบบแล้ว แต่แอปพลิเคชันใช้เวลาตอบนานเกินไป"


class UpstreamBusy(UpstreamError):
    status = 503
    code = "upstream_busy"
    title_en = "The application is busy"
    title_th = "แอปพลิเคชันมีผู้ใช้งานเต็ม"
    explain_en = (
        "This application already has as many live connections open as its administrator allows. "
        "Please try again in a moment."
    )
    explain_th = "แอปพลิเคชันนี้มีการเชื่อมต่อค้างอยู่เต็มจำนวนที่ผู้ดูแลระบบกำหนดแล้ว กรุณาลองใหม่อีกครั้งในอีกสักครู่"
