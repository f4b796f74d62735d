"""The request head for the upstream hop, written as one buffer.

The caller's header list is final except for the hop's own framing and connection management,
which are decided here (RFC 9110 §7.6.1): Host, Content-Length / Transfer-Encoding, and no
hop-by-hop header of the client's hop.
"""

from __future__ import annotations

# Request headers we never copy from the caller's list: the framing and connection management of
# the upstream hop are ours to decide (RFC 9110 §7.6.1).
_NOT_COPIED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "http2-settings",
        "proxy-authorization",  # a credential for a proxy, never for the app
    }
)


def build_head(
    method: str, target: str, host: str, headers: list[tuple[str, str]], framing: str, tail: str = ""
) -> bytes:
    """The request head in one buffer.

    ``framing`` is "" or one Content-Length / Transfer-Encoding line. Headers the *client* named in
    its ``Connection`` header are the caller's to strip (``sso_proxy.core.headers``): only it can tell
    them from the identity headers the proxy adds under the same names. ``tail``: more header
    lines, made and checked by ``header_lines`` (for lines reused across requests).
    """
    parts = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
    lines = 3  # request line, Host, and the blank line that ends the head
    for name, value in headers:
        if name.lower() not in _NOT_COPIED:
            parts += (name, ": ", value, "\r\n")
            lines += 1
    if framing:
        lines += 1
    text = "".join(parts)
    end = framing + "\r\n"
    # SECURITY: a CR, LF or NUL inside any name, value or the target would split the head into
    # extra headers or a second request (header injection / request smuggling).
    newlines = text.count("\n") + end.count("\n")
    returns = text.count("\r") + end.count("\r")
    if newlines != lines or returns != lines or "\x00" in text or "\x00" in end or " " in target:
        raise ValueError("control character or space in the upstream request head")
    return (text + tail + end).encode("utf-8", "surrogateescape")


def header_lines(headers: list[tuple[str, str]]) -> str:
    """``Name: value\\r\\n`` lines as ``build_head`` writes them, checked the same way; for ``tail``."""
    parts: list[str] = []
    lines = 0
    for name, value in headers:
        if name.lower() not in _NOT_COPIED:
            parts += (name, ": ", value, "\r\n")
            lines += 1
    text = "".join(parts)
    # SECURITY: as in build_head: no line of ours may carry a CR, LF or NUL of its own.
    if text.count("\n") != lines or text.count("\r") != lines or "\x00" in text:
        raise ValueError("control character in an upstream request header")
    return text
