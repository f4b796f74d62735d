"""HTML of the three sample apps: who the proxy says you are, plus a little make-believe content.

Pure functions (no I/O): every dynamic value is HTML-escaped, Thai first, English second (in
``lang="en"`` parts), UTF-8. The layout holds at 375 px: nothing overlaps, nothing scrolls
sideways. The page ids (``name-th``, ``provider-id``, ``hcode``, ``verified``) are stable for tests.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from html import escape
from typing import Any


@dataclass(frozen=True)
class AppInfo:
    title_th: str
    title_en: str
    blurb_th: str
    blurb_en: str


APPS: dict[str, AppInfo] = {
    "wifi": AppInfo(
        "Wi-Fi ผู้มาติดต่อ",
        "Guest Wi-Fi portal",
        "ออกรหัส Wi-Fi ให้ผู้มาติดต่อ ทุกคนที่มี Provider ID ใช้ได้",
        "Hand out guest Wi-Fi vouchers; open to every Provider ID holder.",
    ),
    "payslip": AppInfo(
        "สลิปเงินเดือน",
        "Payslip",
        "สลิปเงินเดือนประจำเดือนล่าสุดของท่าน (ต้องยืนยันตัวตน IAL 1.3 ขึ้นไป)",
        "Your latest payslip (needs identity assurance IAL 1.3 or higher).",
    ),
    "leave": AppInfo(
        "ระบบลางาน",
        "Leave requests",
        "ยื่นใบลาและดูวันลาคงเหลือ (บุคลากรของหน่วยบริการ 10999, 10998, 00051)",
        "Request leave and see your balance (staff of units 10999, 10998, 00051).",
    ),
}
MONTHS_TH = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
STYLE = """
*{box-sizing:border-box}
body{font-family:"Sarabun","Noto Sans Thai","Loma","Garuda","Leelawadee UI",Tahoma,sans-serif;
margin:0;background:#f3f6f9;color:#1b2a38;line-height:1.6}
header{background:#0b6e4f;color:#fff;padding:.6rem 1.5rem;display:flex;flex-wrap:wrap;gap:.2rem 1rem;
align-items:baseline}header a{color:#fff}header .sign-out{margin-left:auto}
main{max-width:46rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.45rem;margin:.3rem 0}h1 small,h2 small{font-weight:normal;color:#4a5a58}
.card{background:#fff;border-radius:12px;padding:1rem 1.5rem;margin:1rem 0;box-shadow:0 2px 10px #0001}
#name-th{font-size:1.35rem}.en{color:#4a5a58}.ok{color:#0b6e4f;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e9ef;padding:.3rem .5rem;
text-align:left;vertical-align:top;overflow-wrap:anywhere}td.num{text-align:right;font-variant-numeric:tabular-nums}
.voucher{font-size:2rem;letter-spacing:.3rem;font-family:monospace}
a.button{display:inline-block;background:#0b6e4f;color:#fff;border-radius:8px;padding:.5rem 1rem;
text-decoration:none;line-height:1.4}
.action{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:1rem 0 .3rem}.action p{margin:0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem;background:#f8fafc;padding:.5rem}
:focus-visible{outline:3px solid #b36b00;outline-offset:2px}
@media (max-width:600px){main{padding:0 .5rem}.card{padding:.8rem 1rem}}
"""


@dataclass(frozen=True)
class Seen:
    """What an app learnt from the proxy: the plain headers and the verified assertion claims."""

    name_th: str
    provider_id: str
    hcode: str
    email: str
    claims: dict[str, Any] | None
    note: str

    @property
    def verified(self) -> bool:
        return self.claims is not None

    def organizations(self) -> list[dict[str, Any]]:
        orgs = (self.claims or {}).get("organization")
        return [o for o in orgs if isinstance(o, dict)] if isinstance(orgs, list) else []


def flag(value: object) -> bool:
    """Provider ID sends some booleans as strings ("true"); the demo reads them the same way."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def thai_month(now: float) -> str:
    """The current month the way a Thai payslip prints it (Buddhist era year)."""
    local = time.localtime(now)
    return f"{MONTHS_TH[local.tm_mon - 1]} {local.tm_year + 543}"


def sibling_links(kind: str, host: str) -> str:
    """Links to the other sample apps on the same domain: the cross-host single sign-on to try."""
    label, dot, rest = host.partition(".")
    if not dot or label.lower() != kind:
        return ""  # reached some other way (e.g. straight at the app's port): no guessing
    links = [
        f'<a href="http://{escape(other)}.{escape(rest)}/">{escape(info.title_th)}</a>'
        for other, info in APPS.items()
        if other != kind
    ]
    return "".join(links)


def identity_card(seen: Seen) -> str:
    name_en = str((seen.claims or {}).get("name_eng") or "")
    ial = (seen.claims or {}).get("ial")
    status = "ok" if seen.verified else "bad"
    return (
        '<section class="card"><h2>ข้อมูลผู้ใช้ที่ได้รับจาก sso-proxy <small class="en" lang="en">/ '
        "Identity received from sso-proxy</small></h2>"
        f'<p>สวัสดี <strong id="name-th">{escape(seen.name_th)}</strong>'
        f' <span class="en" id="name-en" lang="en">{escape(name_en)}</span></p>'
        "<table>"
        f'<tr><th>Provider ID</th><td><code id="provider-id">{escape(seen.provider_id)}</code></td></tr>'
        f'<tr><th>รหัสหน่วยบริการ / hcode</th><td id="hcode">{escape(seen.hcode)}</td></tr>'
        f'<tr><th>อีเมล / email</th><td id="email">{escape(seen.email) or "-"}</td></tr>'
        f'<tr><th>ระดับการยืนยันตัวตน / IAL</th><td id="ial">{escape(str(ial if ial is not None else "-"))}'
        "</td></tr></table>"
        f"{organizations_table(seen)}"
        f'<p id="verified" class="{status}" data-verified="{str(seen.verified).lower()}">'
        f"{escape(seen.note)}</p></section>"
    )


def organizations_table(seen: Seen) -> str:
    orgs = seen.organizations()
    if not orgs:
        return '<p id="organizations">ไม่มีข้อมูลหน่วยงาน / no organization data</p>'
    rows = "".join(
        f"<tr><td>{escape(str(o.get('hname_th') or '-'))}</td><td>{escape(str(o.get('hcode') or '-'))}</td>"
        f"<td>{escape(str(o.get('position') or '-'))}</td><td>{escape(roles(o))}</td></tr>"
        for o in orgs
    )
    return (
        '<h3>หน่วยงานสังกัด <small class="en" lang="en">/ Organizations</small></h3>'
        '<table id="organizations"><tr><th>หน่วยงาน / unit</th><th>hcode</th>'
        f"<th>ตำแหน่ง / position</th><th>บทบาท / role</th></tr>{rows}</table>"
    )


def roles(org: dict[str, Any]) -> str:
    found = [
        label
        for key, label in (("is_hr_admin", "งานบุคคล HR"), ("is_director", "ผู้อำนวยการ"))
        if flag(org.get(key))
    ]
    return ", ".join(found) or "-"


def wifi_content(seen: Seen) -> str:
    # Make-believe voucher: stable per person and hour, so a reload shows the same code.
    seed = f"{seen.provider_id}:{int(time.time() // 3600)}"
    code = f"{sum(seed.encode()) * 7919 % 1_000_000:06d}"
    return (
        '<section class="card"><h2>รหัส Wi-Fi สำหรับผู้มาติดต่อ '
        '<small class="en" lang="en">/ Guest voucher</small></h2>'
        f'<p class="voucher" id="voucher">{code}</p>'
        "<p>ใช้ได้ 8 ชั่วโมง เครือข่าย <code>Hospital-Guest</code> "
        '<span class="en" lang="en">(valid 8 hours on network Hospital-Guest)</span></p></section>'
    )


def payslip_content(seen: Seen) -> str:
    lines = (
        ("เงินเดือน / salary", 28_550.00),
        ("เงินประจำตำแหน่ง / position allowance", 3_500.00),
        ("ค่าตอบแทนนอกเวลา / overtime", 2_400.00),
        ("ภาษีหัก ณ ที่จ่าย / withholding tax", -1_120.00),
        ("กองทุนบำเหน็จบำนาญ (กบข.) / pension fund", -856.50),
    )
    rows = "".join(
        f'<tr><td>{escape(label)}</td><td class="num">{amount:,.2f}</td></tr>' for label, amount in lines
    )
    total = sum(amount for _, amount in lines)
    return (
        f'<section class="card"><h2>สลิปเงินเดือน เดือน{escape(thai_month(time.time()))} '
        '<small class="en" lang="en">/ Payslip (sample figures)</small></h2>'
        f'<table>{rows}<tr><th>รับสุทธิ / net pay</th><th class="num">{total:,.2f} บาท</th></tr></table>'
        "</section>"
    )


def leave_content(seen: Seen) -> str:
    balance = (("ลาป่วย / sick leave", 30, 2), ("ลากิจ / personal leave", 10, 1), ("ลาพักผ่อน / vacation", 10, 4))
    rows = "".join(
        f'<tr><td>{escape(label)}</td><td class="num">{used}</td><td class="num">{total - used}</td></tr>'
        for label, total, used in balance
    )
    return (
        '<section class="card"><h2>วันลาคงเหลือ <small class="en" lang="en">/ Leave balance</small></h2>'
        '<table><tr><th scope="col">ประเภท / type</th><th scope="col">ใช้ไป / used</th>'
        f'<th scope="col">คงเหลือ / left</th></tr>{rows}</table>'
        '<div class="action"><a class="button" href="/approve">'
        'อนุมัติการลา <span lang="en">/ Approve leave</span></a>'
        '<p class="en">งานบุคคลและผู้อำนวยการเท่านั้น <span lang="en">/ HR and directors only</span></p>'
        "</div></section>"
    )


def approve_content(seen: Seen) -> str:
    pending = (("นางสาวตัวอย่าง ลาก่อน", "ลาพักผ่อน 2 วัน"), ("นายทดสอบ ป่วยจริง", "ลาป่วย 1 วัน"))
    rows = "".join(f"<tr><td>{escape(who)}</td><td>{escape(what)}</td></tr>" for who, what in pending)
    return (
        '<section class="card" id="approve"><h2>ใบลารออนุมัติ '
        '<small class="en" lang="en">/ Waiting for approval</small>'
        f"</h2><table>{rows}</table><p>ท่านเห็นหน้านี้เพราะเป็นงานบุคคลหรือผู้อำนวยการ "
        '<span class="en" lang="en">(you see this because you are HR or a director)</span></p></section>'
    )


def app_content(kind: str, path: str, seen: Seen) -> str:
    if kind == "leave" and (path == "/approve" or path.startswith("/approve/")):
        return approve_content(seen)
    return {"wifi": wifi_content, "payslip": payslip_content, "leave": leave_content}[kind](seen)


def render_page(kind: str, seen: Seen, *, path: str, host: str) -> str:
    """The whole page of app ``kind`` for one request."""
    info = APPS[kind]
    claims = json.dumps(seen.claims, ensure_ascii=False, indent=2, sort_keys=True) if seen.claims else "-"
    return (
        '<!doctype html><html lang="th"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(info.title_th)} / {escape(info.title_en)}</title><style>{STYLE}</style></head><body>"
        f"<header><strong>{escape(info.title_th)}</strong> {sibling_links(kind, host)}"
        '<a id="sign-out" class="sign-out" href="/oauth2/sign_out">'
        'ออกจากระบบ <span lang="en">/ Sign out</span></a>'
        "</header><main>"
        f'<h1>{escape(info.title_th)} <small lang="en">/ {escape(info.title_en)}</small></h1>'
        f'<p>{escape(info.blurb_th)} <span class="en" lang="en">{escape(info.blurb_en)}</span></p>'
        f"{app_content(kind, path, seen)}{identity_card(seen)}"
        '<section class="card"><details><summary lang="en">assertion claims (X-Provider-Assertion)</summary>'
        f'<pre lang="en">{escape(claims)}</pre></details></section>'
        "<p>แอปนี้ไม่มีโค้ดเข้าสู่ระบบเลย ข้อมูลทั้งหมดมาจาก sso-proxy "
        '<span class="en" lang="en">/ This app has no login code; '
        "everything above came from sso-proxy.</span></p>"
        "</main></body></html>"
    )
