"""Which end record and central directory each real zip reader takes, and what modelward inspects.

Every blob here was first built against the real loaders (torch 2.13 ``torch.load`` over miniz, Python
3.11 ``zipfile`` under ``np.load(allow_pickle=True)``) and ran their payload, while modelward listed
only a benign directory and allowed the file:

- miniz takes the last end record and reads the central directory at its recorded offset, wherever that
  is (after the end record, inside its comment); the scanner used to skip such an end record and list an
  earlier decoy one without a word;
- miniz reads the zip64 record where the locator points, Python 3.11's ``zipfile`` right before the
  locator, and without a record there Python uses the 32-bit fields: two directories, one file; the
  scanner read only the locator's.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from scanner.findings import Decision
from scanner.formats.zip.listing import central_listing
from scanner.io.reader import BytesReader
from tests.formats.builders import data
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, scan_on_disk, verdict


def _local(name: str, body: bytes) -> tuple[bytes, dict]:
    raw = name.encode()
    crc = zlib.crc32(body)
    hdr = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, len(body), len(body), len(raw), 0
    )
    return hdr + raw + body, {"name": raw, "crc": crc, "size": len(body)}


def _central(meta: dict, offset: int, comment: bytes = b"") -> bytes:
    m = meta
    return (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            0x031E,
            20,
            0,
            0,
            0,
            0x21,
            m["crc"],
            m["size"],
            m["size"],
            len(m["name"]),
            0,
            len(comment),
            0,
            0,
            0,
            offset,
        )
        + m["name"]
        + comment
    )


def _eocd(n: int, size: int, offset: int, comment_len: int = 0) -> bytes:
    return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, size, offset, comment_len)


def _zip64_record(n: int, size: int, offset: int) -> bytes:
    return struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, size, offset)


def _zip64_locator(pos: int) -> bytes:
    return struct.pack("<4sIQI", b"PK\x06\x07", 0, pos, 1)


def _npy_object(body: bytes) -> bytes:
    h = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    h += b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + body


def _npy_numbers() -> bytes:
    h = b"{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }"
    h += b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + struct.pack("<4q", 0, 1, 2, 3)


def _torch_members() -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data("state_dict.pt"))) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _decoy_then_real_end(evil: bytes, cd_in: str) -> bytes:
    """A benign torch zip with its end record, whose comment holds the evil data.pkl and the real end record.

    The real (last) end record's directory sits after it (``cd_in="comment"``: inside its own comment) or
    overlaps the end record's own bytes (``"tail"``: right after the end record, no comment declared).
    """
    members = _torch_members()
    body, metas = b"", []
    for name, blob in members:
        raw, meta = _local(name, blob)
        metas.append((meta, len(body)))
        body += raw
    cd1 = b"".join(_central(m, o) for m, o in metas)
    head = body + cd1
    comment_at = len(head) + 22
    pkl_name = next(n for n, _ in members if n.endswith("/data.pkl"))
    evil_local, evil_meta = _local(pkl_name, evil)
    real = [(evil_meta, comment_at) if m["name"] == pkl_name.encode() else (m, o) for m, o in metas]
    cd2 = b"".join(_central(m, o) for m, o in real)
    eocd2_at = comment_at + len(evil_local)
    eocd2 = _eocd(len(real), len(cd2), eocd2_at + 22, len(cd2) if cd_in == "comment" else 0)
    comment = evil_local + eocd2 + cd2
    return head + _eocd(len(metas), len(cd1), len(body), len(comment)) + comment


def test_last_end_record_with_its_directory_in_its_comment_is_the_one_read(tmp_path):
    # torch.load ran the payload (miniz: the last end record, the directory at its offset); modelward listed
    # the decoy end record before it and allowed the file
    fr = scan_on_disk(tmp_path, _decoy_then_real_end(EVIL_PICKLE, "comment"), name="model.pt")
    assert blocked_for_payload(fr)
    assert any("does not precede its end records" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))
    assert verdict(fr) is Decision.BLOCK


def test_last_end_record_with_its_directory_after_it_is_the_one_read(tmp_path):
    fr = scan_on_disk(tmp_path, _decoy_then_real_end(EVIL_PICKLE, "tail"), name="model.pt")
    assert blocked_for_payload(fr)
    assert verdict(fr) is Decision.BLOCK


def test_listing_follows_the_last_end_record():
    blob = _decoy_then_real_end(EVIL_PICKLE, "comment")
    listing = central_listing(BytesReader(blob, "m"))
    assert listing is not None
    pkl = [e for e in listing.entries if e.name.endswith("/data.pkl")]
    assert [e.uncompressed_size for e in pkl] == [len(EVIL_PICKLE)]


def test_unreadable_last_end_record_blocks_even_with_a_readable_earlier_one(tmp_path):
    # readers fail on such a file; the scanner still lists the earlier directory but says it is malformed
    members = _torch_members()
    body, metas = b"", []
    for name, blob in members:
        raw, meta = _local(name, blob)
        metas.append((meta, len(body)))
        body += raw
    cd = b"".join(_central(m, o) for m, o in metas)
    bogus = _eocd(1, 46, 3)  # points at no directory
    blob = body + cd + _eocd(len(metas), len(cd), len(body), len(bogus)) + bogus
    fr = scan_on_disk(tmp_path, blob, name="model.pt")
    assert any("last end-of-central-directory record" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))
    assert verdict(fr) is Decision.BLOCK


def _npz_zip64_split(evil_npy: bytes) -> bytes:
    """npz: the locator's zip64 record (miniz) lists a benign x.npy, the one before the locator (Python) an evil one.

    The evil member sits between the locator's record and the locator, where no gap was looked for.
    """
    good_local, good_meta = _local("x.npy", _npy_numbers())
    cd_m = _central(good_meta, 0)
    rec_m_at = len(good_local) + len(cd_m)
    rec_m = _zip64_record(1, len(cd_m), len(good_local))
    evil_at = rec_m_at + len(rec_m)
    evil_local, evil_meta = _local("x.npy", evil_npy)
    cd_p_at = evil_at + len(evil_local)
    cd_p = _central(evil_meta, evil_at)
    rec_p = _zip64_record(1, len(cd_p), cd_p_at)
    return (
        good_local
        + cd_m
        + rec_m
        + evil_local
        + cd_p
        + rec_p
        + _zip64_locator(rec_m_at)
        + _eocd(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    )


def _npz_zip64_vs_32bit(evil_npy: bytes) -> bytes:
    """npz: the locator's zip64 record (miniz, newer zipfile) lists a benign x.npy; Python 3.11 finds no record
    right before the locator, so it takes the 32-bit fields, whose directory holds the evil x.npy. The evil
    local header hides in the benign directory record's comment, the locator in the evil record's comment.
    """
    good_local, good_meta = _local("x.npy", _npy_numbers())
    evil_local, evil_meta = _local("x.npy", evil_npy)
    cd_m_at = len(good_local)
    evil_at = cd_m_at + 46 + len(b"x.npy")
    cd_m = _central(good_meta, 0, comment=evil_local)
    rec_m_at = cd_m_at + len(cd_m)
    rec_m = _zip64_record(1, len(cd_m), cd_m_at)
    cd_p_at = rec_m_at + len(rec_m)
    cd_p = _central(evil_meta, evil_at, comment=_zip64_locator(rec_m_at))
    return good_local + cd_m + rec_m + cd_p + _eocd(1, len(cd_p), cd_p_at)


def test_zip64_record_before_the_locator_is_read_as_python_reads_it(tmp_path):
    # np.load(allow_pickle=True) ran the payload from Python's directory; modelward read only miniz's
    fr = scan_on_disk(tmp_path, _npz_zip64_split(_npy_object(EVIL_PICKLE)), name="arrays.npz")
    assert blocked_for_payload(fr)
    assert any("two readable central directories" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))


def test_python_32bit_fields_when_the_zip64_record_is_elsewhere(tmp_path):
    fr = scan_on_disk(tmp_path, _npz_zip64_vs_32bit(_npy_object(EVIL_PICKLE)), name="arrays.npz")
    assert blocked_for_payload(fr)
    assert verdict(fr) is Decision.BLOCK


def test_both_directories_are_listed():
    for blob in (_npz_zip64_split(_npy_object(EVIL_PICKLE)), _npz_zip64_vs_32bit(_npy_object(EVIL_PICKLE))):
        listing = central_listing(BytesReader(blob, "m"))
        assert listing is not None
        assert sorted(e.uncompressed_size for e in listing.entries) == sorted(
            [len(_npy_numbers()), len(_npy_object(EVIL_PICKLE))]
        )


def test_zip64_end_records_as_torch_writes_them_are_clean(tmp_path):
    # every torch.save zip carries zip64 end records (miniz writes them always): one directory for all readers
    fr = scan_on_disk(tmp_path, data("state_dict.pt"), name="model.pt")
    assert not findings(fr, "ARCHIVE-MALFORMED")
    assert not findings(fr, "ZIP-EXTRA-DATA")
    assert verdict(fr) is Decision.ALLOW


def test_python_zip64_end_records_are_clean(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello\n")
    blob = buf.getvalue()
    # rewrite it the way zipfile writes an archive that needs zip64 end records (count past 0xFFFF)
    eocd_at = blob.rfind(b"PK\x05\x06")
    _, _, _, n, _, size, offset, _ = struct.unpack("<4sHHHHIIH", blob[eocd_at : eocd_at + 22])
    rec_at = eocd_at
    blob = (
        blob[:eocd_at]
        + _zip64_record(n, size, offset)
        + _zip64_locator(rec_at)
        + _eocd(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    )
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:  # still a zip Python reads
        assert zf.read("a.txt") == b"hello\n"
    fr = scan_on_disk(tmp_path, blob, name="x.zip")
    assert fr.findings == []
    assert verdict(fr) is Decision.ALLOW
