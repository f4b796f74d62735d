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


def build_head(method: str, target: str, host: str, headers: list[tuple[str, str]], framing: str) -> bytes:
    """The request head in one buffer.

    ``framing`` is "" or one Content-Length / Transfer-Encoding line. Headers the *client* named in
    its ``Connection`` header are the caller's to strip (``sso_proxy.headers``): only it can tell
    them from the identity headers the proxy adds under the same names.
    """
    parts = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
    lines = 3  # request line, Host, and the blank line that ends the head
    for name, value in headers:
        if name.lower() not in _NOT_COPIED:
            parts += (name, ": ", value, "\r\n")
            lines += 1
    if framing:
        parts.append(framing)
        lines += 1
    parts.append("\r\n")
    text = "".join(parts)
    # SECURITY: a CR, LF or NUL inside any name, value or the target would split the head into
    # extra headers or a second request (header injection / request smuggling).
    if text.count("\n") != lines or text.count("\r") != lines or "\x00" in text or " " in target:
        raise ValueError("control character or space in the upstream request head")
    return text.encode("utf-8", "surrogateescape")
