"""Response envelopes of the two MOPH servers, and the one exception handlers raise to fail.

Health ID says ``"status": "success"`` (a string) plus ``status_code``; Provider ID says
``"status": 200`` (an integer). Error bodies are undocumented beyond ``message`` (and
``message_th`` on Provider ID); the shapes here follow moph-api.md's suggestions, and both
servers get a Thai message so clients that read ``message_th`` first have something to show.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

Api = Literal["health", "provider"]

# English message (verbatim from the manual where it has one) -> Thai message.
MESSAGES_TH: dict[str, str] = {
    "Credential is required": "ต้องระบุข้อมูลรับรองของแอปพลิเคชัน",
    "Access grant has denied": "ไม่ได้รับอนุญาตให้เข้าถึง",
    "Access grant has denied.": "ไม่ได้รับอนุญาตให้เข้าถึง",
    "Code is invalid": "รหัส code ไม่ถูกต้อง",
    "Redirect uri is invalid": "redirect uri ไม่ถูกต้อง",
    "Code and Client ID not match.": "code และ client id ไม่ตรงกัน",
    "Code has been expired": "รหัส code หมดอายุแล้ว",
    "Response type is invalid": "response type ไม่ถูกต้อง",
    "Server error": "เกิดข้อผิดพลาดที่เซิร์ฟเวอร์",
    "This user has not provider id": "ไม่พบข้อมูล provider id",
    "This user has no provider id": "ไม่พบข้อมูล provider id",
    "The requested parameter can not used.": "ไม่สามารถใช้พารามิเตอร์ที่ร้องขอได้",
    "Authentication is required to access this resource": "ต้องยืนยันตัวตนก่อนเข้าถึงข้อมูลนี้",
    "access_token is invalid": "access_token ไม่ถูกต้อง",
    "The requested resource was not found": "ไม่พบข้อมูลที่ร้องขอ",
    "Internal Server Error": "เกิดข้อผิดพลาดภายในระบบ",
    "The service is temporarily unavailable. Please try again later.": (
        "ระบบไม่พร้อมให้บริการชั่วคราว กรุณาลองใหม่อีกครั้งภายหลัง"
    ),
    "Unknown test user": "ไม่พบผู้ใช้ทดสอบนี้",
}

# Documented message per server and status, used when a fault knob asks for a bare status.
DEFAULT_MESSAGES: dict[Api, dict[int, str]] = {
    "health": {401: "Credential is required", 422: "Access grant has denied", 500: "Server error"},
    "provider": {
        400: "The requested parameter can not used.",
        401: "Authentication is required to access this resource",
        404: "The requested resource was not found",
        500: "Internal Server Error",
        503: "The service is temporarily unavailable. Please try again later.",
    },
}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def json_reply(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


def health_ok(message: str, data: dict[str, Any]) -> web.Response:
    return json_reply({"status": "success", "message": message, "status_code": 200, "data": data})


def provider_ok(data: dict[str, Any]) -> web.Response:
    return json_reply({"status": 200, "message": "OK", "data": data})


def fail_body(api: Api, status: int, message: str) -> dict[str, Any]:
    message_th = MESSAGES_TH.get(message, message)
    if api == "health":
        return {"status": "fail", "message": message, "message_th": message_th, "status_code": status}
    return {"status": status, "message": message, "message_th": message_th}


def default_message(api: Api, status: int) -> str:
    known = DEFAULT_MESSAGES[api].get(status)
    if known:
        return known
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Fail(Exception):
    """Raised by handlers to answer with a documented error; rendered by ``fail_middleware``."""

    def __init__(self, api: Api, status: int, message: str) -> None:
        super().__init__(message)
        self.api = api
        self.status = status
        self.message = message

    def response(self) -> web.Response:
        return json_reply(fail_body(self.api, self.status, self.message), status=self.status)


class HealthFail(Fail):
    def __init__(self, status: int, message: str) -> None:
        super().__init__("health", status, message)


class ProviderFail(Fail):
    def __init__(self, status: int, message: str) -> None:
        super().__init__("provider", status, message)


@web.middleware
async def fail_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Fail as failure:
        return failure.response()
