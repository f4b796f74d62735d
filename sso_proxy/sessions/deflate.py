"""Compression of session records before sealing: a session costs Redis half the memory.

A record is small JSON (one Provider ID profile and a token, 1-4 KB) full of field names and Thai
words that every record repeats. Raw DEFLATE primed with a fixed dictionary of exactly those
strings shrinks it to about 40 %; plain DEFLATE, which has to spell each name once per record,
only to about 60 %.

``DICTIONARY`` is part of the stored format: records packed with it can only be unpacked with it.
Never edit it; a better dictionary is a new format byte in ``record`` (and a new constant here).
Every value in it is invented or generic (field names, job titles, JWT header prefixes).
"""

from __future__ import annotations

import zlib

# Least useful first: DEFLATE reaches the end of the dictionary with the shortest distances.
DICTIONARY = (
    "Health Promoting Hospital District Health Office Provincial Public Health Office Hospital "
    "Mr. Mrs. Miss DR.(Male) DR.(Female) Other @gmail.com @hotmail.com @example.test "
    "โรงพยาบาลส่งเสริมสุขภาพตำบล สำนักงานสาธารณสุขอำเภอ สำนักงานสาธารณสุขจังหวัด "
    "กรุงเทพมหานคร อำเภอเมือง ตำบลในเมือง หมู่ที่ ถนน ซอย "
    "นักวิชาการคอมพิวเตอร์ นักเทคนิคการแพทย์ นักกายภาพบำบัด เจ้าพนักงานสาธารณสุข "
    "เจ้าพนักงานธุรการ เภสัชกร ทันตแพทย์ แพทย์หญิง นายแพทย์ นางสาว นาง นาย อื่นๆ "
    "พยาบาลวิชาชีพ นักวิชาการสาธารณสุข แพทย์ "
    '"moph_access_token_idp":"eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.'
    "eyJpc3MiOiJNT1BIIEFjY291bnQgQ2VudGVyIiwi"
    '{"v":1,"identity":{"provider_id":"","account_id":"","hash_cid":"","name_th":"","name_eng":"",'
    '"title_th":null,"title_en":null,"special_title_th":"","special_title_en":"","firstname_th":"",'
    '"lastname_th":"","firstname_en":"","lastname_en":"","email":"","ial":2.3,"organization":[{'
    '"business_id":"","position":"","position_id":"00","affiliation":"","license_id":null,"hcode":"",'
    '"code9":"00","hcode9":"","level":"","hname_th":"โรงพยาบาล","hname_eng":" Hospital","tax_id":"",'
    '"license_expired_date":null,"license_id_verify":true,"expertise":null,"expertise_id":null,'
    '"moph_station_ref_code":null,"is_private_provider":false,"address":{"address":null,"moo":null,'
    '"building":null,"soi":null,"street":null,"province":"","district":"","sub_district":"",'
    '"zip_code":""},"is_hr_admin":false,"is_director":false,"position_type":""}]},'
    '"created_at":1700000000.0,"provider_access_token":"'
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImp0aSI6I.eyJhdWQiOiI"
).encode()

_WBITS = -15  # raw DEFLATE: no zlib header or checksum; AES-GCM already authenticates the bytes
_LEVEL = 9


def pack(data: bytes) -> bytes:
    # SECURITY: compressing before encrypting leaks plaintext through the ciphertext length only
    # when an attacker can mix chosen text with a secret in one compressed message and watch the
    # length (CRIME/BREACH). A session record is written once, at login, from what MOPH returned
    # for the user; nobody can add text to it afterwards or observe one record's length per guess.
    # Packing many sessions of one user does not help either: each is compressed on its own.
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=DICTIONARY)
    return packer.compress(data) + packer.flush()


def unpack(data: bytes, limit: int) -> bytes | None:
    """``data`` unpacked, or None when it is not one complete stream of at most ``limit`` bytes."""
    unpacker = zlib.decompressobj(_WBITS, zdict=DICTIONARY)
    try:
        # SECURITY: bounded output: even a sealed value cannot make us inflate a huge buffer.
        out = unpacker.decompress(data, limit)
    except zlib.error:
        return None
    if not unpacker.eof or unpacker.unconsumed_tail or unpacker.unused_data:
        return None
    return out
