"""Reading request parameters the way the MOPH servers are seen to accept them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")


async def body_params(request: web.Request) -> dict[str, str]:
    """Fields of a form-encoded or JSON body (clients use both; the manual shows form).

    A body in neither declared type is sniffed. Non-text JSON values become text; nested
    values and nulls are dropped, which makes them count as missing.
    """
    raw = (await request.read()).decode("utf-8", errors="replace") if request.body_exists else ""
    content_type = request.content_type
    if content_type == "application/json" or (
        content_type != "application/x-www-form-urlencoded" and raw.lstrip().startswith("{")
    ):
        try:
            document: Any = json.loads(raw)
        except ValueError:
            return {}
        if not isinstance(document, dict):
            return {}
        fields: dict[str, str] = {}
        for key, value in document.items():
            text = _text(value)
            if text is not None:
                fields[str(key)] = text
        return fields
    return dict(parse_qsl(raw, keep_blank_values=True))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def expiration_date(timestamp: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Bangkok time without a zone, as Provider ID writes it."""
    return datetime.fromtimestamp(timestamp, UTC).astimezone(BANGKOK).strftime("%Y-%m-%d %H:%M:%S")
