"""A browser family from a User-Agent header, for the admin console's session list.

Helpdesk needs "Chrome on Android" to tell a lost phone's session from the desk PC's; it never
needs the whole header (long, and close to a fingerprint). So a login keeps only this short,
bounded label (``sessions.model.ClientMeta``). Order matters: most browsers also claim to be
Safari, Chrome or Mozilla, so the more specific tokens are looked for first. Pure.
"""

from __future__ import annotations

MAX_USER_AGENT = 1024  # what is looked at; the rest of an absurd header is ignored

# (token in the header, family shown), most specific first.
_BROWSERS: tuple[tuple[str, str], ...] = (
    (" Line/", "LINE"),
    ("FBAN", "Facebook"),
    ("FBAV", "Facebook"),
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-", "script"),
    ("Python/", "script"),
)
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def browser_family(user_agent: str) -> str:
    """``"Chrome on Android"``, ``"Safari on iOS"``, ``"Firefox"``; ``"other"`` when unknown."""
    text = user_agent[:MAX_USER_AGENT]
    browser = next((name for token, name in _BROWSERS if token in text), "")
    system = next((name for token, name in _SYSTEMS if token in text), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or ("other" if text.strip() else "")
