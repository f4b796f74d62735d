"""Bilingual (Thai / English) HTML pages and JSON bodies for people who hit a wall.

Every page says what happened and what to do next, Thai first, English after it in ``lang="en"``
parts (the document is ``lang="th"``): a short heading, the explanation in the body, ONE primary
action (the filled button) and at most a few secondary ones. Pages never reveal rules, tokens or
other users' data. All dynamic text is HTML-escaped; helpers take plain text unless a parameter
says ``html``. No script and no external asset (the CSP allows neither): inline CSS that fits a
375 px wide phone. The answers to a request's verdict and every error page are built from these
by ``sso_proxy.web.render``; the aiohttp helpers below serve the login pages.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

_STYLE = """
*{box-sizing:border-box}
body{font-family:"Sarabun","Noto Sans Thai","Leelawadee UI","Loma","Garuda",Tahoma,sans-serif;
background:#f4f7f6;color:#1d2b2a;margin:0;padding:0;line-height:1.6}
main{max-width:40rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem 2.2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.4rem;line-height:1.35;margin:0 0 1rem;color:#0b6e4f}
h1 .sub{display:block;font-size:1rem;font-weight:normal;color:#4a5a58}
h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
p{margin:.6rem 0} .en{color:#4a5a58} a{color:#0b5c8a}
.ref{font-size:.85rem;color:#4f5f5d;margin-top:2rem;border-top:1px solid #e3e9e7;padding-top:.8rem}
button,.button{background:#0b6e4f;color:#fff;border:2px solid #0b6e4f;border-radius:8px;
padding:.6rem 1.2rem;font:inherit;font-size:1rem;line-height:1.4;cursor:pointer;text-decoration:none;
display:inline-block;max-width:100%;text-align:center}
button .en,.button .en{color:inherit}
.secondary{background:#fff;color:#0b6e4f}
.actions{display:flex;flex-wrap:wrap;gap:.7rem;align-items:center;margin:1.4rem 0 .4rem}
.actions form,.actions p{margin:0}
.note{background:#fff7e6;border-left:4px solid #b36b00;padding:.6rem 1rem;margin:1rem 0}
:focus-visible{outline:3px solid #b36b00;outline-offset:2px}
code{font-size:.95em;word-break:break-all}
@media (max-width:600px){main{margin:0;border-radius:0;box-shadow:none;padding:1.2rem 1rem}
.actions{flex-direction:column;align-items:stretch}.actions .button,.actions button{width:100%}}
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


_THAI = re.compile("[\u0e00-\u0e7f]")


def text_html(text: str) -> str:
    """Text an administrator wrote in no stated language (a title, a note), escaped, with its
    English marked ``lang="en"``: all of it when it has no Thai letter, else the English half of
    the usual "ไทย / English"."""
    th, sep, en = text.partition(" / ")
    if sep and _THAI.search(th) and not _THAI.search(en):
        return f'{esc(th)} <span lang="en">/ {esc(en)}</span>'
    return esc(text) if _THAI.search(text) else f'<span lang="en">{esc(text)}</span>'


def label(th: str, en: str) -> str:
    """Thai text with its English beside it, each marked with its language."""
    return f'{esc(th)} <span lang="en" class="en">{esc(en)}</span>'


def page(
    *,
    title_th: str,
    title_en: str,
    body_th: str = "",
    body_en: str = "",
    extra_html: str = "",
    reference: str = "",
    style: str = "",
) -> str:
    """A full HTML document; ``body_*`` are plain text (escaped), ``extra_html`` is trusted markup,
    ``style`` trusted CSS added to the house style (the admin console's tables)."""
    th = f"<p>{esc(body_th)}</p>" if body_th else ""
    en = f'<p class="en" lang="en">{esc(body_en)}</p>' if body_en else ""
    return (
        '<!doctype html><html lang="th"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title_th)} | {esc(title_en)}</title><style>{_STYLE}{style}</style></head>"
        f'<body><main><h1>{esc(title_th)} <span class="sub" lang="en">{esc(title_en)}</span></h1>'
        f"{th}{en}{extra_html}{reference_html(reference)}</main></body></html>"
    )


def reference_html(reference: str) -> str:
    """The request's id (its log lines carry it): what to quote to the IT office."""
    if not reference:
        return ""
    return (
        '<p class="ref">รหัสอ้างอิงสำหรับแจ้งงานไอที <span lang="en">(reference for the IT office)</span>: '
        f"<code>{esc(reference)}</code></p>"
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


def actions(*parts_html: str) -> str:
    """A page's buttons in one row (one column on a phone), the primary one first."""
    return f'<div class="actions">{"".join(part for part in parts_html if part)}</div>'


def button_form(
    action: str, label_th: str, label_en: str, fields: Mapping[str, str], *, secondary: bool = False
) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">' for name, value in fields.items()
    )
    css = ' class="secondary"' if secondary else ""
    return (
        f'<form method="post" action="{esc(action)}">{hidden}'
        f'<button type="submit"{css}>{esc(label_th)} / <span lang="en">{esc(label_en)}</span></button></form>'
    )


def link_button(href: str, label_th: str, label_en: str, *, secondary: bool = False) -> str:
    css = "button secondary" if secondary else "button"
    text = f'{esc(label_th)} / <span lang="en">{esc(label_en)}</span>'
    return f'<p><a class="{css}" href="{esc(href)}">{text}</a></p>'


def redirect(location: str, *, status: int = 302) -> web.Response:
    """A redirect from the proxy's own pages (not cached, not framed)."""
    response = web.Response(status=status, headers={"Location": location})
    apply_page_headers(response)
    return response
