"""Typed keys for aiohttp application and request storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from sso_proxy.server.runtime import Runtime

RUNTIME: web.AppKey[Runtime] = web.AppKey("sso_proxy.server.runtime")
