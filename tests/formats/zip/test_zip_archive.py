"""Generic zips and the relaxed reader's building blocks."""

from __future__ import annotations

import time

from scanner.findings import Coverage, Decision
from scanner.formats.zip.checks import name_problems
from scanner.formats.zip.listing import central_listing, list_names
from scanner.io.reader import BytesReader
from tests.formats.builders import Member, build_zip, data
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, rule_ids, scan_on_disk, verdict


def test_plain_zip_allowed(tmp_path):
    fr = scan_on_disk(tmp_path, data("plain.zip"), name="x.zip")
    assert fr.format == "zip-archive"
    assert fr.findings == []
    assert verdict(fr) is Decision.ALLOW
    assert len(fr.members) == 2


def test_pickle_named_as_text_inside_zip(tmp_path):
    fr = scan_on_disk(tmp_path, build_zip([Member("readme.txt", EVIL_PICKLE, method=8)]), name="x.zip")
    assert "FORMAT-NAME-MISMATCH" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_nested_zip(tmp_path):
    inner = build_zip([Member("deep/model.bin", EVIL_PICKLE)])
    fr = scan_on_disk(tmp_path, build_zip([Member("inner.zip", inner, method=8)]), name="x.zip")
    assert blocked_for_payload(fr)


def test_gap_between_members_is_inspected(tmp_path):
    blob = bytearray(build_zip([Member("a.txt", b"hello\n"), Member("b.txt", b"world\n")]))
    # shift member b and the central directory by inserting a pickle before b's local header
    second = blob.index(b"PK\x03\x04", 4)
    blob[second:second] = EVIL_PICKLE
    out = bytes(blob)
    # fix the recorded offsets: b's local offset and the CD offset grow by len(EVIL_PICKLE)
    import struct

    eocd = out.rfind(b"PK\x05\x06")
    cd_off = struct.unpack("<I", out[eocd + 16 : eocd + 20])[0] + len(EVIL_PICKLE)
    out = out[: eocd + 16] + struct.pack("<I", cd_off) + out[eocd + 20 :]
    cd2 = out.index(b"PK\x01\x02", cd_off + 4)
    off = struct.unpack("<I", out[cd2 + 42 : cd2 + 46])[0] + len(EVIL_PICKLE)
    out = out[: cd2 + 42] + struct.pack("<I", off) + out[cd2 + 46 :]
    fr = scan_on_disk(tmp_path, out, name="x.zip")
    assert "ZIP-EXTRA-DATA" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_zip_found_behind_a_pickle_by_end_record(tmp_path):
    fr = scan_on_disk(tmp_path, EVIL_PICKLE + data("plain.zip"), name="x.bin")
    assert "ZIP-PREFIX-DATA" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_bomb_is_fast_and_bounded(tmp_path):
    blob = build_zip([Member(f"z{i}", b"\0" * (20 << 20), method=8) for i in range(3)])
    t0 = time.monotonic()
    fr = scan_on_disk(tmp_path, blob, name="x.zip")
    assert time.monotonic() - t0 < 10
    assert len(findings(fr, "ARCHIVE-BOMB")) == 3
    assert fr.coverage is Coverage.PARTIAL


def test_corrupt_deflate_is_reported(tmp_path):
    blob = bytearray(build_zip([Member("a.txt", b"hello world " * 50, method=8)]))
    blob[40:50] = b"\xff" * 10
    fr = scan_on_disk(tmp_path, bytes(blob), name="x.zip")
    assert {"ARCHIVE-MALFORMED", "ZIP-CRC-MISMATCH"} & rule_ids(fr)
    assert verdict(fr) is not Decision.ALLOW


def test_name_checker():
    assert name_problems("a/b.txt") == []
    assert "'..' component" in name_problems("a/../../b")
    assert "absolute path" in name_problems("/etc/passwd")
    assert "UNC path" in name_problems("\\\\server\\share\\x")
    assert "drive letter" in name_problems("C:/x")
    assert "NUL byte" in name_problems("a\x00.txt")


def test_cheap_listing_reads_only_tail_and_directory():
    blob = build_zip([Member("a/data.pkl", b"x" * 100_000), Member("a/version", b"3\n")])
    r = BytesReader(blob, "mem")
    assert list_names(r) == ["a/data.pkl", "a/version"]
    assert r.bytes_read < 70_000 + 200  # the 64 KiB tail window plus the directory, not the member


def test_stored_member_is_zero_copy_window():
    blob = build_zip([Member("a.bin", b"abc" * 1000)])
    listing = central_listing(BytesReader(blob, "m"))
    assert listing is not None and listing.entries[0].compressed_size == 3000


def test_fake_empty_end_record_behind_a_pickle_does_not_hide_it(tmp_path):
    blob = EVIL_PICKLE + b"PK\x05\x06" + b"\0" * 18
    fr = scan_on_disk(tmp_path, blob, name="x.pkl")
    assert blocked_for_payload(fr)


def test_real_empty_zip(tmp_path):
    fr = scan_on_disk(tmp_path, b"PK\x05\x06" + b"\0" * 18, name="x.zip")
    assert fr.format == "zip-archive"
    assert fr.findings == []


def test_zip64_records_are_read(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        with zf.open("a.pkl", "w", force_zip64=True) as fh:
            fh.write(EVIL_PICKLE)
        zf.writestr("b.txt", "hi\n")
    blob = buf.getvalue()
    listing = central_listing(BytesReader(blob, "m"))
    assert listing is not None and listing.names() == ["a.pkl", "b.txt"]
    fr = scan_on_disk(tmp_path, blob, name="x.zip")
    assert not [r for r in rule_ids(fr) if r.startswith(("ZIP-", "ARCHIVE-"))], [
        f.message for f in fr.findings
    ]
    assert blocked_for_payload(fr)


def _zipcrypto_stored(name: str, plain_len: int, stored: bytes) -> bytes:
    """A stored member flagged encrypted whose records say plaintext size ``plain_len`` (what zip -e writes:
    the 12-byte encryption header makes the stored data 12 bytes longer)."""
    import struct

    raw = bytearray(build_zip([Member(name, stored, flags=0x1)]))
    raw[22:26] = struct.pack("<I", plain_len)
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = struct.pack("<I", plain_len)
    return bytes(raw)


def test_zipcrypto_header_is_not_a_size_mismatch(tmp_path):
    # picklescan's benign_password_protected.zip / modelscan's password_protected.zip shape
    for plain_len in (0, 15):
        cipher = bytes((i * 37 + 11) & 0xFF for i in range(12 + plain_len))
        fr = scan_on_disk(
            tmp_path, _zipcrypto_stored("test.txt", plain_len, cipher), name=f"p{plain_len}.zip"
        )
        assert "ARCHIVE-ENCRYPTED" in rule_ids(fr)
        assert "ARCHIVE-MALFORMED" not in rule_ids(fr), [(f.rule_id, f.message) for f in fr.findings]


def test_encrypted_flag_with_other_size_lie_is_still_malformed(tmp_path):
    fr = scan_on_disk(tmp_path, _zipcrypto_stored("m.bin", 3, b"x" * 40), name="lie.zip")
    assert "ARCHIVE-MALFORMED" in rule_ids(fr)


def test_encrypted_flag_on_plaintext_pickle_still_blocks(tmp_path):
    # picklescan's malicious1_0x1.zip: the flag is set, the bytes are a plain pickle
    fr = scan_on_disk(tmp_path, build_zip([Member("model/config.pkl", EVIL_PICKLE, flags=0x1)]), name="f.zip")
    assert {"ARCHIVE-ENCRYPTED"} <= rule_ids(fr)
    assert "ARCHIVE-MALFORMED" not in rule_ids(fr)
    assert blocked_for_payload(fr)
