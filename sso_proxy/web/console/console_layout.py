"""The console's page chrome and HTML pieces, on the proxy's one page renderer (``web.pages``).

Thai first, English beside it in ``lang="en"`` spans (the document is ``lang="th"``). Every
dynamic text goes through ``esc``; the helpers here take plain text unless a parameter says
``html``. No script, no external asset: inline CSS only (the page CSP allows nothing else), and
wide tables scroll inside their own box, so a 375 px phone never scrolls the page sideways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sso_proxy.web.pages import esc, page

CONSOLE = "/oauth2/admin"
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("sessions", "ผู้ใช้ที่เข้าระบบอยู่", "Sessions"),
    ("access", "ใครเข้าอะไรได้", "Who can open what"),
    ("events", "เหตุการณ์ล่าสุด", "Recent events"),
    ("health", "สถานะระบบ", "Health"),
)
STYLE = """
main{max-width:72rem;margin:1.5rem auto;padding:1.2rem 1.4rem}
nav.console{display:flex;flex-wrap:wrap;gap:.4rem;margin:.8rem 0 1.2rem}
nav.console a{padding:.35rem .7rem;border-radius:6px;background:#e8f1ee;color:#0b6e4f;text-decoration:none}
nav.console a[aria-current]{background:#0b6e4f;color:#fff}
.who{font-size:.9rem;color:#4a5a58}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #dde5e3;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f7f6;white-space:nowrap}
td form{display:inline-block;margin:.1rem 0}
button.small{padding:.3rem .7rem;font-size:.85rem}
button.danger{background:#a4262c}
.ok{color:#0b6e4f;font-weight:bold} .no{color:#a4262c;font-weight:bold}
.muted{color:#5b6b69;font-size:.85rem}
input[type=text],input[type=search],select,textarea{font:inherit;padding:.4rem;max-width:100%;box-sizing:border-box}
textarea{width:100%;min-height:8rem}
form.inline{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0}
pre{white-space:pre-wrap;word-break:break-word;font-size:.8rem;background:#f4f7f6;padding:.5rem}
button .en,a[aria-current] .en{color:inherit}
@media (max-width:600px){main{margin:0;border-radius:0;padding:.8rem}
table.cards thead{display:none}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:auto}
table.cards tr{border-bottom:2px solid #c9d6d3;padding:.4rem 0}
table.cards td{border:0;padding:.15rem 0}
table.cards td::before{content:attr(data-label);display:block;font-size:.75rem;color:#4a5a58}}
"""


def label(th: str, en: str) -> str:
    """Thai text with its English beside it, each marked with its language."""
    return f'{esc(th)} <span lang="en" class="en">{esc(en)}</span>'


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def url(section: str, query: Mapping[str, str] | None = None) -> str:
    from urllib.parse import urlencode

    base = f"{CONSOLE}/{section}"
    pairs = {key: value for key, value in (query or {}).items() if value}
    return f"{base}?{urlencode(pairs)}" if pairs else base


def nav(current: str) -> str:
    links = "".join(
        f'<a href="{esc(url(name))}"{" aria-current=page" if name == current else ""}>{label(th, en)}</a>'
        for name, th, en in SECTIONS
    )
    return f'<nav class="console">{links}</nav>'


def console_page(*, section: str, admin_name: str, admin_id: str, body_html: str, notice: str = "") -> str:
    """A whole console page: title of ``section``, who is signed in, navigation, ``body_html``."""
    th, en = next((t, e) for name, t, e in SECTIONS if name == section)
    who = (
        f'<p class="who">{label("ผู้ดูแลระบบ", "Administrator")}: {esc(admin_name)} '
        f'({esc(admin_id)}) · <a href="/oauth2/sign_out">{label("ออกจากระบบ", "Sign out")}</a></p>'
    )
    note = f'<p class="note" role="status">{notice}</p>' if notice else ""
    return page(
        title_th=f"คอนโซลผู้ดูแล: {th}",
        title_en=f"Admin console: {en}",
        extra_html=f"{who}{nav(section)}{note}{body_html}",
        style=STYLE,
    )


def table(
    headers: Sequence[tuple[str, str]],
    rows_html: Iterable[Sequence[str]],
    *,
    empty: str = "",
    cards: bool = True,
) -> str:
    """A table whose cells are already HTML; ``headers`` are (Thai, English) pairs. ``cards``: on a
    narrow screen each row becomes a card, each cell headed by its column's name."""
    head = "".join(f'<th scope="col">{label(th, en)}</th>' for th, en in headers)
    names = [esc(f"{th} / {en}") for th, en in headers]  # each cell's heading, on a narrow screen
    body = "".join(
        "<tr>"
        + "".join(f'<td data-label="{name}">{cell}</td>' for name, cell in zip(names, row, strict=False))
        + "</tr>"
        for row in rows_html
    )
    if not body:
        nothing = empty or label("ไม่มีข้อมูล", "Nothing to show")
        body = f'<tr><td colspan="{len(headers)}" class="muted">{nothing}</td></tr>'
    css = ' class="cards"' if cards else ""
    return (
        f'<div class="scroll"><table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def hidden(fields: Mapping[str, str]) -> str:
    return "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())


def post_button(
    action: str, token: str, fields: Mapping[str, str], th: str, en: str, *, danger: bool = False
) -> str:
    """A one-button POST form carrying the console token (``console_guard.action_token``)."""
    css = "small danger" if danger else "small"
    return (
        f'<form method="post" action="{esc(action)}">{hidden({"token": token, **fields})}'
        f'<button type="submit" class="{css}">{label(th, en)}</button></form>'
    )


def search_form(
    section: str, name: str, value: str, th: str, en: str, extra: Mapping[str, str] | None = None
) -> str:
    return (
        f'<form class="inline" method="get" action="{esc(url(section))}">{hidden(dict(extra or {}))}'
        f'<label>{label(th, en)} <input type="search" name="{esc(name)}" value="{esc(value)}"></label>'
        f'<button type="submit" class="small">{label("ค้นหา", "Search")}</button></form>'
    )


def verdict(allowed: bool) -> str:
    if allowed:
        return f'<span class="ok">{label("เข้าได้", "allowed")}</span>'
    return f'<span class="no">{label("ไม่ได้", "refused")}</span>'
