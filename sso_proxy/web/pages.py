"""Bilingual (Thai / English) HTML pages and JSON bodies for people who hit a wall.

Every page says what happened and what to do next, in Thai first, then English. Pages never
reveal rules, tokens or other users' data. All dynamic text is HTML-escaped. The answers to a
request's verdict and every error page are built from these by ``sso_proxy.web.render``; the
aiohttp helpers below serve the login pages.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

_STYLE = """
body{font-family:"Sarabun","Noto Sans Thai","Leelawadee UI",Tahoma,sans-serif;background:#f4f7f6;
color:#1d2b2a;margin:0;padding:0}
main{max-width:40rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem 2.2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.35rem;margin:0 0 .3rem;color:#0b6e4f}
h2{font-size:1rem;margin:0 0 1.2rem;color:#4a5a58;font-weight:normal}
p{line-height:1.6} .en{color:#4a5a58} .ref{font-size:.8rem;color:#7a8a88;margin-top:2rem}
button,.button{background:#0b6e4f;color:#fff;border:0;border-radius:8px;padding:.7rem 1.4rem;
font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}
.note{background:#fff7e6;border-left:4px solid #f0a500;padding:.6rem 1rem;margin:1rem 0}
"""


# SECURITY: the proxy's own pages are never cached, framed or sniffed.
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
        "frame-ancestors 'none'",
    ),
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(
    *,
    title_th: str,
    title_en: str,
    body_th: str = "",
    body_en: str = "",
    extra_html: str = "",
    reference: str = "",
) -> str:
    """A full HTML document; ``body_*`` are plain text (escaped), ``extra_html`` is trusted markup."""
    ref = f'<p class="ref">Ref: {esc(reference)}</p>' if reference else ""
    th = f"<p>{esc(body_th)}</p>" if body_th else ""
    en = f'<p class="en">{esc(body_en)}</p>' if body_en else ""
    return (
        '<!doctype html><html lang="th"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title_th)} | {esc(title_en)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{esc(title_th)}</h1><h2>{esc(title_en)}</h2>{th}{en}{extra_html}{ref}"
        "</main></body></html>"
    )


def html_response(text: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    apply_page_headers(response)
    if headers:
        response.headers.update(headers)
    return response


def json_response(data: Mapping[str, Any], *, status: int = 200) -> web.Response:
    response = web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def apply_page_headers(response: web.StreamResponse) -> None:
    for name, value in PAGE_HEADERS:
        response.headers[name] = value


def button_form(action: str, label_th: str, label_en: str, fields: Mapping[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">' for name, value in fields.items()
    )
    return (
        f'<form method="post" action="{esc(action)}">{hidden}'
        f'<button type="submit">{esc(label_th)} / {esc(label_en)}</button></form>'
    )


def link_button(href: str, label_th: str, label_en: str) -> str:
    return f'<p><a class="button" href="{esc(href)}">{esc(label_th)} / {esc(label_en)}</a></p>'


def redirect(location: str, *, status: int = 302) -> web.Response:
    """A redirect from the proxy's own pages (not cached, not framed)."""
    response = web.Response(status=status, headers={"Location": location})
    apply_page_headers(response)
    return response
