"""7z: every member decompressed in memory with caps and inspected by content (the nullifAI wrapper)."""

from __future__ import annotations

import io
import struct
import zlib

import py7zr

from scanner.findings import Coverage, Severity
from scanner.limits import Limits
from tests.formats.archives.helpers import crashed_here, pickle_analyzer_present
from tests.harness import benign_pickle, detect_bytes, evil_pickle, findings, rule_ids


def build_7z(
    members: dict[str, bytes],
    *,
    password: str | None = None,
    header_encryption: bool = False,
    encoded_header: bool = True,
) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=password, header_encryption=header_encryption) as z:
        if not encoded_header:
            z.set_encoded_header_mode(False)
        for name, data in members.items():
            z.writestr(data, name)
    return buf.getvalue()


def rename_member(archive: bytes, old: str, new: str) -> bytes:
    """py7zr refuses to write unsafe names, so patch a same-length name in a plain header and fix both CRCs."""
    assert len(old) == len(new)
    data = bytearray(archive)
    at = data.index(old.encode("utf-16-le"))
    data[at : at + 2 * len(old)] = new.encode("utf-16-le")
    next_ofs, next_size = struct.unpack_from("<QQ", data, 12)
    start = 32 + next_ofs
    struct.pack_into("<I", data, 28, zlib.crc32(data[start : start + next_size]))
    struct.pack_into("<I", data, 8, zlib.crc32(data[12:32]))
    return bytes(data)


def test_extensionless_member_is_inspected() -> None:
    result = detect_bytes(build_7z({"archive/data": evil_pickle(), "x/y.pkl": benign_pickle()}), "model.7z")
    assert result.format == "7z-archive"
    assert set(result.members) == {"model.7z!archive/data", "model.7z!x/y.pkl"}
    assert not rule_ids(result) & {"ARCHIVE-MALFORMED", "ARCHIVE-BOMB", "ARCHIVE-ENCRYPTED"}
    if pickle_analyzer_present():
        assert any(f.path == "model.7z!archive/data" and f.severity >= Severity.HIGH for f in result.findings)
        assert not [
            f for f in result.findings if f.path == "model.7z!x/y.pkl" and f.severity >= Severity.MEDIUM
        ]


def test_benign_7z_is_clean() -> None:
    result = detect_bytes(build_7z({"README.md": b"# hello\n", "config.json": b'{"a": 1}'}), "m.7z")
    assert result.findings == [] and result.coverage is Coverage.FULL


def test_traversal_name_does_not_hide_other_members() -> None:
    data = rename_member(
        build_7z({"XX/evil.pkl": b"hello\n", "archive/data": evil_pickle()}, encoded_header=False),
        "XX/evil.pkl",
        "../evil.pkl",
    )
    result = detect_bytes(data, "m.7z")
    assert findings(result, "ARCHIVE-PATH-TRAVERSAL")
    assert {"m.7z!../evil.pkl", "m.7z!archive/data"} <= set(result.members)


def test_encrypted_content_and_headers_fail_closed() -> None:
    for kwargs in ({"password": "pw"}, {"password": "pw", "header_encryption": True}):
        result = detect_bytes(build_7z({"archive/data": evil_pickle()}, **kwargs), "m.7z")
        assert findings(result, "ARCHIVE-ENCRYPTED"), kwargs
        assert result.coverage is Coverage.NONE
        assert result.members == []


def test_declared_size_bomb_is_not_inflated() -> None:
    data = build_7z({"zeros": bytes(30 << 20), "after.txt": b"small\n"})
    result = detect_bytes(data, "bomb.7z")
    (bomb,) = findings(result, "ARCHIVE-BOMB")
    assert bomb.evidence["declared"] == 30 << 20
    assert result.members == []  # solid block: reaching after.txt means inflating the bomb
    assert result.coverage is Coverage.PARTIAL


def test_member_in_memory_cap() -> None:
    data = build_7z({"big": bytes(3 << 20)})
    result = detect_bytes(data, "m.7z", Limits(max_member_inflated=1 << 20, max_ratio=10**9))
    assert findings(result, "ARCHIVE-BOMB")[0].evidence["limit"] == "max_member_inflated"


def test_member_limit() -> None:
    data = build_7z({f"f{i}": b"x\n" for i in range(6)})
    result = detect_bytes(data, "m.7z", Limits(max_members=3))
    assert findings(result, "ARCHIVE-TOO-MANY-MEMBERS")
    assert len(result.members) == 3


def test_corrupt_stream_keeps_what_decoded() -> None:
    data = bytearray(build_7z({"a.txt": b"hello " * 2000}, encoded_header=False))
    data[40] ^= 0xFF  # inside the packed stream, headers intact
    result = detect_bytes(bytes(data), "m.7z")
    assert findings(result, "ARCHIVE-MALFORMED")
    assert result.coverage is not Coverage.FULL
    assert not crashed_here(result)


def test_garbage_after_magic_is_malformed() -> None:
    result = detect_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(26) + b"junk" * 20, "m.7z")
    assert findings(result, "ARCHIVE-MALFORMED")
    assert result.coverage is Coverage.NONE
