"""The one exception tree of sso-proxy.

    SsoProxyError                      base; carries an HTTP status and a bilingual message
    ├── ConfigError                    the config file is invalid (carries every problem)
    ├── BadRequest (400)               malformed or ambiguous request (paths, URIs, params)
    ├── NotFound (404)                 no route for host + path
    ├── Unauthenticated (401)          no session (JSON clients / auth_request)
    ├── Forbidden (403)                rules refused the user, or a cross-site post
    ├── LoginError (4xx/5xx)           the login flow could not finish
    │   ├── StateError (400)           state missing, expired, reused or not bound to this browser
    │   └── NoProviderId (403)         the person has Health ID but no Provider ID
    ├── IdpError (502)                 MOPH answered, but not with success
    │   ├── IdpUnavailable (503)       timeout, connection error, 5xx, garbage or truncated body
    │   ├── IdpRejectedCode (400)      422: invalid / expired / reused code, redirect_uri mismatch
    │   ├── IdpBadCredentials (502)    401: our client id / secret is wrong (operator's problem)
    │   ├── IdpNoProviderId (403)      400 "This user has not provider id"
    │   └── IdpTokenInvalid (502)      a JWT from MOPH failed verification
    ├── StoreUnavailable (503)         the session store did not answer in time
    └── UpstreamError (502)            the upstream app could not be reached
        └── UpstreamTimeout (504)      the upstream app did not answer in time

Handlers raise; one middleware (``sso_proxy.web.pages``) renders the page or JSON body.
"""

from __future__ import annotations


class SsoProxyError(Exception):
    """Base of every error sso-proxy raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    title_en: str = "Something went wrong"
    title_th: str = "เกิดข้อผิดพลาด"

    def __init__(
        self,
        message: str = "",
        *,
        message_th: str = "",
        status: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message or self.title_en)
        self.message = message or self.title_en
        self.message_th = message_th or self.title_th
        if status is not None:
            self.status = status
        # Operator-facing detail for logs; never shown to end users.
        self.detail = detail


class ConfigError(SsoProxyError):
    code = "config_error"
    title_en = "The configuration is invalid"
    title_th = "ไฟล์ตั้งค่าไม่ถูกต้อง"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) or self.title_en)
        self.problems = list(problems)


class BadRequest(SsoProxyError):
    status = 400
    code = "bad_request"
    title_en = "Bad request"
    title_th = "คำขอไม่ถูกต้อง"


class NotFound(SsoProxyError):
    status = 404
    code = "not_found"
    title_en = "No application is configured at this address"
    title_th = "ไม่พบแอปพลิเคชันที่ที่อยู่นี้"


class Unauthenticated(SsoProxyError):
    status = 401
    code = "unauthenticated"
    title_en = "Please sign in"
    title_th = "กรุณาเข้าสู่ระบบ"


class Forbidden(SsoProxyError):
    status = 403
    code = "forbidden"
    title_en = "Access denied"
    title_th = "ไม่มีสิทธิ์เข้าใช้งาน"


class LoginError(SsoProxyError):
    status = 400
    code = "login_failed"
    title_en = "Sign-in could not be completed"
    title_th = "ไม่สามารถเข้าสู่ระบบได้"


class StateError(LoginError):
    status = 400
    code = "login_state_invalid"
    title_en = "This sign-in link has expired or was already used. Please start again."
    title_th = "ลิงก์เข้าสู่ระบบนี้หมดอายุหรือถูกใช้ไปแล้ว กรุณาเริ่มใหม่อีกครั้ง"


class NoProviderId(LoginError):
    status = 403
    code = "no_provider_id"
    title_en = (
        "Your Health ID account has no Provider ID. This application is only for registered "
        "health-care staff. Please contact your hospital's HR or IT office to register."
    )
    title_th = (
        "บัญชี Health ID ของท่านยังไม่มี Provider ID ระบบนี้สำหรับบุคลากรสาธารณสุขที่ลงทะเบียนแล้วเท่านั้น "
        "กรุณาติดต่องานบุคคลหรืองานไอทีของหน่วยงาน"
    )


class IdpError(SsoProxyError):
    """MOPH Health ID / Provider ID did not give what we need.

    ``idp_message`` and ``idp_message_th`` keep exactly what the IdP said, for logs and pages.
    """

    status = 502
    code = "idp_error"
    title_en = "The MOPH login service returned an error"
    title_th = "ระบบยืนยันตัวตนของกระทรวงสาธารณสุขตอบกลับผิดพลาด"

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
    title_en = "The MOPH login service is not answering right now. Please try again in a moment."
    title_th = "ระบบยืนยันตัวตนของกระทรวงสาธารณสุขไม่ตอบสนองในขณะนี้ กรุณาลองใหม่อีกครั้ง"


class IdpRejectedCode(IdpError):
    status = 400
    code = "idp_code_rejected"
    title_en = "The sign-in code was not accepted (expired or already used). Please sign in again."
    title_th = "รหัสเข้าสู่ระบบไม่ถูกต้อง หมดอายุ หรือถูกใช้ไปแล้ว กรุณาเข้าสู่ระบบใหม่"


class IdpBadCredentials(IdpError):
    status = 502
    code = "idp_bad_credentials"
    title_en = "sso-proxy's client credentials were refused by MOPH. Please tell the IT office."
    title_th = "MOPH ปฏิเสธรหัสลูกข่ายของระบบ กรุณาแจ้งงานไอทีของหน่วยงาน"


class IdpNoProviderId(IdpError):
    status = 403
    code = "no_provider_id"
    title_en = NoProviderId.title_en
    title_th = NoProviderId.title_th


class IdpTokenInvalid(IdpError):
    status = 502
    code = "idp_token_invalid"
    title_en = "The token from MOPH could not be verified. Please try again."
    title_th = "ไม่สามารถตรวจสอบโทเคนจาก MOPH ได้ กรุณาลองใหม่อีกครั้ง"


class StoreUnavailable(SsoProxyError):
    status = 503
    code = "session_store_unavailable"
    title_en = "The sign-in service is temporarily unavailable. Please try again shortly."
    title_th = "ระบบจัดการการเข้าสู่ระบบไม่พร้อมใช้งานชั่วคราว กรุณาลองใหม่อีกครั้งในอีกสักครู่"


class UpstreamError(SsoProxyError):
    status = 502
    code = "upstream_unavailable"
    title_en = "The application is not answering. Please try again later."
    title_th = "แอปพลิเคชันไม่ตอบสนอง กรุณาลองใหม่ภายหลัง"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    title_en = "The application took too long to answer. Please try again later."
    title_th = "แอปพลิเคชันใช้เวลาตอบสนองนานเกินไป กรุณาลองใหม่ภายหลัง"
