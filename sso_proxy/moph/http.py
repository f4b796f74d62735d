"""One HTTP exchange with a MOPH server: bounded, timed, never redirected, every failure typed.

Why one place: every MOPH call fails the same ways (slow, down, redirected, oversize, garbage,
an error envelope) and each of those must end as exactly one ``IdpError`` subclass, with the
latency reported to the metrics hook and nothing secret in the logs. Endpoint modules only say
how a 4xx of *their* endpoint is to be read (a ``Classifier``) and what a good body looks like;
``sso_proxy.moph.envelope`` reads the bodies. Each IdP's calls go through the egress proxy chosen
for it (``sso_proxy.moph.egress``), and a login's calls share one deadline (``moph.budget``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import structlog
from yarl import URL

from sso_proxy.errors import IdpError, IdpUnavailable
from sso_proxy.moph.budget import Deadline
from sso_proxy.moph.egress import Egress

MAX_BODY_BYTES = 1 << 20
_CHUNK = 64 * 1024

Observer = Callable[[str, float, str], None]
"""``observer(call_name, seconds, outcome)``.

call_name: health_token, health_key, provider_token, provider_key, profile. outcome: "ok", "timeout",
"connection_error", "body_too_large", "cancelled" or the ``code`` of the IdpError raised.
"""
Classifier = Callable[[int, str], type[IdpError]]
"""Maps (HTTP status, IdP message) of a 4xx answer to the error class it means for one endpoint."""
T = TypeVar("T")

log = structlog.get_logger("sso_proxy.moph")


@dataclass(frozen=True)
class Reply:
    """A finished response: the body is fully read (within the cap) and may hold tokens."""

    idp: str
    name: str
    status: int
    body: bytes = field(repr=False)


class _BodyTooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def unavailable(reply: Reply, why: str, *, message: str = "", message_th: str = "") -> IdpUnavailable:
    return IdpUnavailable(
        idp=reply.idp,
        http_status=reply.status,
        detail=f"{reply.idp} {reply.name}: {why}",
        idp_message=message,
        idp_message_th=message_th,
    )


class IdpHttp:
    """Sends requests to one IdP with its timeout; reports each call to the log and the observer."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        idp: str,
        timeout: float,
        observer: Observer | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        egress: Egress | None = None,
    ) -> None:
        self.idp = idp
        self._session = session
        self._timeout = timeout
        self._observer = observer
        self._max_body = max_body_bytes
        self.egress = egress if egress is not None else Egress(None, "not configured")
        self._proxy = proxy_arguments(self.egress)

    async def call(
        self,
        name: str,
        method: str,
        url: str,
        parse: Callable[[Reply], T],
        *,
        deadline: Deadline | None = None,
        **kwargs: Any,
    ) -> T:
        """Send, read (capped), then ``parse``; any failure leaves as an ``IdpError``.

        With a ``deadline`` the call waits at most what is left of it, and is never started once
        it has passed (``sso_proxy.moph.budget``)."""
        limit, by_deadline = (self._timeout, False) if deadline is None else deadline.limit(self._timeout)
        if deadline is not None and limit <= 0:
            raise self._failed(name, deadline.describe())
        # SECURITY: a proxy that was named but cannot be used fails the call; never a way around it.
        if self.egress.problem is not None:
            raise self._failed(name, f"egress proxy unusable: {self.egress.problem}")
        started = time.monotonic()
        outcome, status = "error", None
        try:
            reply = await self._send(name, method, url, limit, **kwargs)
            status = reply.status
            result = parse(reply)
            outcome = "ok"
            return result
        except TimeoutError:
            outcome = "timeout"
            why = deadline.describe() if deadline is not None and by_deadline else None
            raise self._failed(name, why or f"no answer within {self._timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            outcome = "connection_error"
            raise self._failed(name, f"connection failed{self._via()} ({failure_name(exc)})") from None
        except _BodyTooLarge as exc:
            outcome, status = "body_too_large", exc.status
            raise self._failed(name, f"body larger than {self._max_body} bytes", status) from None
        except IdpError as exc:
            outcome = exc.code
            # Through a proxy, an error answer may be the proxy's own (a deny page): say so.
            exc.detail += self._via()
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self._report(name, time.monotonic() - started, outcome, status)

    async def _send(self, name: str, method: str, url: str, limit: float, **kwargs: Any) -> Reply:
        timeout = aiohttp.ClientTimeout(total=limit)
        # The asyncio deadline also covers the body read, whatever the session's defaults are.
        async with asyncio.timeout(limit):
            # SECURITY: a redirect from MOPH is a fault, never followed (it could leak credentials).
            async with self._session.request(
                method,
                url,
                timeout=timeout,
                allow_redirects=False,
                raise_for_status=False,
                **self._proxy,
                **kwargs,
            ) as response:
                body = await read_capped(response, self._max_body)
                return Reply(self.idp, name, response.status, body)

    def _failed(self, name: str, why: str, status: int | None = None) -> IdpUnavailable:
        return IdpUnavailable(idp=self.idp, http_status=status, detail=f"{self.idp} {name}: {why}")

    def _via(self) -> str:
        return f" {self.egress.describe()}" if self.egress.proxy is not None else ""

    def _report(self, name: str, seconds: float, outcome: str, status: int | None) -> None:
        # Only the call name, status, latency and outcome: bodies may hold tokens or citizen ids.
        emit = log.info if outcome == "ok" else log.warning
        via = {"proxy": self.egress.proxy} if self.egress.proxy is not None else {}
        emit(
            "idp_call",
            idp=self.idp,
            call=name,
            status=status,
            latency_ms=round(seconds * 1000, 1),
            outcome=outcome,
            **via,
        )
        if self._observer is None:
            return
        try:
            self._observer(name, seconds, outcome)
        except Exception:  # a metrics bug must never break a login
            log.exception("idp_observer_failed", call=name)


def proxy_arguments(egress: Egress) -> dict[str, Any]:
    """aiohttp's ``proxy=`` for ``egress``; none when direct.

    Credentials ride in the proxy URL: aiohttp then sends them as ``Proxy-Authorization`` on a
    CONNECT and on an absolute-form request alike (``proxy_headers`` reach only the CONNECT)."""
    if egress.proxy is None:
        return {}
    url = URL(egress.proxy)
    if egress.username:
        url = url.with_user(egress.username).with_password(egress.password or None)
    return {"proxy": url}


def failure_name(exc: BaseException) -> str:
    """The exception's class, and the proxy's answer when a proxy refused (e.g. 403 to CONNECT)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} {status}" if isinstance(status, int) and status else type(exc).__name__


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or ``_BodyTooLarge`` as soon as it passes ``limit`` (after decompression)."""
    # SECURITY: bounded read; a huge or endless body must not exhaust memory.
    if response.content_length is not None and response.content_length > limit:
        raise _BodyTooLarge(response.status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(response.status)
        chunks.append(chunk)
    return b"".join(chunks)
