"""HTML of the mock's browser screens: the test-user picker and the authorize error page.

The picker stands in for Health ID's login screen. Each user is a submit button carrying a
stable ``data-user`` attribute so browser tests can click a known person; "Cancel" goes back to
the client with ``error=access_denied`` (and the ``state`` it sent), as an OAuth 2.0 server does
when the person declines (RFC 6749 4.1.2.1). Thai first, English in ``lang="en"`` parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from urllib.parse import quote, urlencode

from sso_proxy.mockidp.users import MockUser

_STYLE = """
body{font-family:"Sarabun","Noto Sans Thai",system-ui,sans-serif;background:#f3f6f9;margin:0;color:#1b2a38}
main{max-width:46rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:12px;
box-shadow:0 2px 10px #0002}
h1{font-size:1.4rem;margin:.2rem 0}.en{color:#4a5757;font-size:.9rem}.mock{color:#b3261e;font-weight:bold}
ul{list-style:none;padding:0}li{margin:.5rem 0}
button{width:100%;text-align:left;padding:.7rem 1rem;border:1px solid #c9d6e2;border-radius:8px;
background:#fafcfe;cursor:pointer;font:inherit}button:hover{background:#e8f1fa}
.name{font-weight:bold;display:block}.meta{display:block;font-size:.9rem;color:#445}
.meta code{word-break:break-all}a.cancel{display:inline-block;padding:.5rem 0;color:#0b5c8a}
:focus-visible{outline:3px solid #b36b00;outline-offset:2px}
@media (max-width:600px){main{margin:0;border-radius:0;padding:1rem}}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="th">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request (the mock serves none)
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def display_name_th(user: MockUser) -> str:
    """Thai name with the title a colleague would use (special title for doctors etc.)."""
    profile = user.provider
    if profile is None:
        return f"{user.health['name_prefix']}{user.health['name']} {user.health['surname']}"
    special = str(profile.get("special_title_th") or "")
    title = special if special and special != "อื่นๆ" else str(profile.get("title_th") or "")
    return f"{title}{profile.get('name_th') or ''}"


def _roles(user: MockUser) -> list[str]:
    if user.provider is None:
        return ["ไม่มี Provider ID (มีเฉพาะ Health ID) · no Provider ID"]
    if not user.organizations:
        return ["ไม่มีหน่วยงานสังกัด · no organization"]
    return [
        f"{org.get('position') or '-'} · {org.get('hname_th') or '-'} ({org.get('hcode') or '-'})"
        for org in user.organizations
    ]


def _user_button(user: MockUser) -> str:
    key = escape(user.key)
    roles = "".join(f'<span class="meta">{escape(role)}</span>' for role in _roles(user))
    return (
        f'<li><button type="submit" name="user" value="{key}" data-user="{key}">'
        f'<span class="name">{escape(display_name_th(user))}</span>{roles}'
        f'<span class="meta en" lang="en">{escape(user.summary)} · IAL {user.ial:g} · '
        f"key <code>{key}</code></span>"
        "</button></li>"
    )


def login_page(users: Iterable[MockUser], hidden: Mapping[str, str], action: str) -> str:
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    buttons = "\n".join(_user_button(user) for user in users)
    body = (
        "<h1>เข้าสู่ระบบด้วย Health ID (หมอพร้อม ดิจิทัลไอดี)</h1>\n"
        '<p class="en" lang="en">Sign in with MOPH Health ID</p>\n'
        '<p class="mock">ระบบจำลองสำหรับทดสอบ · <span lang="en">MOCK SERVER FOR TESTING. '
        "All people below are invented.</span></p>\n"
        '<p>เลือกผู้ใช้ทดสอบเพื่อเข้าสู่ระบบ <span class="en" lang="en">Choose a test user to sign in</span></p>\n'
        f'<form method="post" action="{escape(action)}">\n{fields}\n<ul>\n{buttons}\n</ul>\n</form>\n'
        f'<p><a class="cancel" id="cancel" href="{escape(cancel_url(hidden))}">ยกเลิก '
        '<span lang="en">/ Cancel</span></a></p>'
    )
    return _page("เข้าสู่ระบบ Health ID (จำลอง) · Mock Health ID sign-in", body)


def cancel_url(params: Mapping[str, str]) -> str:
    """Back to the client's redirect_uri (already checked) as a declined authorization."""
    pairs = [("error", "access_denied")] + ([("state", params["state"])] if "state" in params else [])
    redirect_uri = params.get("redirect_uri", "")
    joiner = "&" if "?" in redirect_uri else "?"
    return redirect_uri + joiner + urlencode(pairs, quote_via=quote, safe="")


def error_page(status: int, message: str, message_th: str) -> str:
    body = (
        f'<h1>{escape(message_th)}</h1>\n<p class="en" lang="en">{escape(message)}</p>\n'
        f'<p class="meta" lang="en">HTTP {status} · Health ID (mock)</p>'
    )
    return _page(f"{message} · Health ID (mock)", body)
