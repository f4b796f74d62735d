"""The one error of a session store beyond StoreUnavailable: ended, but not announced."""

from __future__ import annotations

from sso_proxy.errors import StoreUnavailable


class EndedUnannounced(StoreUnavailable):
    """The store ended the session(s), but telling the other replicas failed (the channel is
    refused or down). Replicas whose own subscription is down do not cache, so they refuse at
    once; those still subscribed may answer from their cache for up to ``identity_cache`` (<= 1 s).
    A StoreUnavailable, so a caller that does not know it fails closed (503); never "kept"."""

    code = "session_end_unannounced"
    title_en = "Signed out"
    title_th = "ออกจากระบบแล้ว"
    explain_en = (
        "Your session has been ended. Other servers of this service were not told at once:"
        " they stop accepting it within a second."
    )
    explain_th = "ยุติการเข้าสู่ระบบแล้ว แต่แจ้งเซิร์ฟเวอร์อื่นของระบบทันทีไม่ได้ เซิร์ฟเวอร์เหล่านั้นจะเลิกยอมรับภายในหนึ่งวินาที"

    def __init__(self, *, digests: list[str], ended: int, provider_id: str | None, detail: str) -> None:
        super().__init__(detail=detail)
        self.digests = digests  # their storage hints (what a cache drops)
        self.ended = ended  # how many sessions the store ended
        self.provider_id = provider_id  # whose (None: unknown, or none was there)
