"""Single-stream compression wrappers: detection by magic, bounded inflation, inner content inspected."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import time
import zlib

import lz4.frame
import pytest
import zstandard

from scanner.findings import Coverage, Severity
from scanner.formats.detect import sniff
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from tests.formats.archives.helpers import MY_HANDLERS, crashed_here, pickle_analyzer_present
from tests.harness import benign_pickle, detect_bytes, evil_pickle, findings, rule_ids


def _zf(data: bytes) -> bytes:
    """joblib < 0.10 'ZF' file: prefix, hex length left-justified to 19 chars, zlib stream."""
    return b"ZF" + f"{len(data):#x}".ljust(19).encode() + zlib.compress(data, 3)


WRAPPERS = {
    "gzip": (gzip.compress, "gzip"),
    "bzip2": (bz2.compress, "bzip2"),
    "xz": (lzma.compress, "xz"),
    "lzma-alone": (lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "lzma"),
    "zlib": (lambda d: zlib.compress(d, 3), "zlib"),  # joblib compress=3 default codec
    "zstd": (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
    "lz4-frame": (lz4.frame.compress, "lz4"),
    "joblib-zfile": (_zf, "joblib-zfile"),
}


def _assert_pickle_flagged(result, member_path: str) -> None:
    if not pickle_analyzer_present():
        return
    inner = [
        f
        for f in result.findings
        if f.path == member_path and f.severity >= Severity.HIGH and f.rule_id.startswith("PICKLE")
    ]
    assert inner, (
        f"pickle payload at {member_path} not flagged: {[(f.rule_id, f.path) for f in result.findings]}"
    )


@pytest.mark.parametrize("handler", sorted(WRAPPERS))
def test_wrapped_payload_is_decompressed_and_inspected(handler: str) -> None:
    compress, label = WRAPPERS[handler]
    payload = evil_pickle()
    result = detect_bytes(compress(payload), "model.joblib")
    assert result.format == handler
    member = f"model.joblib!<{label}>"
    assert member in result.members
    # the wrapper itself is fully read; only an unknown inner format may lower coverage
    assert [n for n in result.coverage_notes if not n.startswith(member)] == []
    if pickle_analyzer_present():
        assert result.coverage is Coverage.FULL, result.coverage_notes
    assert not rule_ids(result) & {"ARCHIVE-MALFORMED", "ARCHIVE-BOMB"}
    _assert_pickle_flagged(result, member)


@pytest.mark.parametrize("handler", sorted(WRAPPERS))
def test_benign_content_in_wrapper_passes(handler: str) -> None:
    compress, label = WRAPPERS[handler]
    result = detect_bytes(compress(b'{"architectures": ["Bert"], "hidden_size": 768}\n' * 20), "config.bin")
    assert result.format == handler
    assert result.coverage is Coverage.FULL
    assert [
        f for f in result.findings if f.severity >= Severity.MEDIUM and f.rule_id != "FORMAT-NAME-MISMATCH"
    ] == []
    assert f"config.bin!<{label}>" in result.members


def test_benign_pickle_in_gzip_not_flagged_by_wrapper() -> None:
    result = detect_bytes(gzip.compress(benign_pickle()), "model.pkl.gz")
    assert not {f.rule_id for f in result.findings if f.path == "model.pkl.gz"}
    if pickle_analyzer_present():
        assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings


def test_gzip_header_file_name_names_the_member_sanitized() -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="../../x/evil!model.pkl", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(evil_pickle())
    result = detect_bytes(buf.getvalue(), "m.gz")
    assert result.members == ["m.gz!evil_model.pkl"]
    _assert_pickle_flagged(result, "m.gz!evil_model.pkl")


def test_bomb_stops_at_ratio_cap_without_inflating_everything() -> None:
    data = gzip.compress(bytes(50 << 20), compresslevel=9)
    started = time.monotonic()
    result = detect_bytes(data, "zeros.gz")
    elapsed = time.monotonic() - started
    bomb = findings(result, "ARCHIVE-BOMB")
    assert len(bomb) == 1
    inflated = bomb[0].evidence["inflated_bytes"]
    assert bomb[0].evidence["limit"] == "max_ratio"
    assert inflated <= 200 * len(data) < (50 << 20) // 4  # stopped at the cap, far short of 50 MB
    assert result.coverage is Coverage.PARTIAL
    assert elapsed < 5


def test_bomb_absolute_and_budget_caps() -> None:
    data = zstandard.ZstdCompressor().compress(bytes(8 << 20))
    small_mem = detect_bytes(data, "a.zst", Limits(max_member_inflated=2 << 20, max_ratio=10**9))
    (f,) = findings(small_mem, "ARCHIVE-BOMB")
    assert f.evidence["limit"] == "max_member_inflated" and f.evidence["inflated_bytes"] == 2 << 20
    small_budget = detect_bytes(data, "a.zst", Limits(max_total_uncompressed=3 << 20, max_ratio=10**9))
    (f,) = findings(small_budget, "ARCHIVE-BOMB")
    assert f.evidence["limit"] == "max_total_uncompressed" and f.evidence["inflated_bytes"] == 3 << 20


def test_small_highly_compressible_content_is_not_a_bomb() -> None:
    result = detect_bytes(gzip.compress(bytes(512 << 10)), "zeros.gz")  # 500:1 but only 512 KiB
    assert "ARCHIVE-BOMB" not in rule_ids(result)


def test_truncated_gzip_still_inspects_the_payload_that_inflated() -> None:
    payload = evil_pickle() + bytes(200_000)
    data = gzip.compress(payload)
    result = detect_bytes(data[: len(data) // 2], "model.joblib")
    (bad,) = findings(result, "ARCHIVE-MALFORMED")
    assert bad.evidence["inflated_bytes"] >= len(evil_pickle())
    assert "model.joblib!<gzip>" in result.members
    assert result.coverage is Coverage.PARTIAL
    _assert_pickle_flagged(result, "model.joblib!<gzip>")


def test_multi_member_gzip_is_read_as_one_stream() -> None:
    payload = evil_pickle()
    data = gzip.compress(payload[:10]) + gzip.compress(payload[10:])
    result = detect_bytes(data, "model.pkl")
    assert result.members == ["model.pkl!<gzip>"]
    assert not rule_ids(result) & {"ARCHIVE-MALFORMED"}
    _assert_pickle_flagged(result, "model.pkl!<gzip>")


def test_multi_member_gzip_second_member_payload_reaches_the_inspector(monkeypatch) -> None:
    from scanner.formats import interface

    seen: dict[str, bytes] = {}
    real = interface.InspectContext.inspect_member

    def spy(self, reader, member, *, charge=False):
        seen[member] = reader.read(0, reader.size)
        return real(self, reader, member, charge=charge)

    monkeypatch.setattr(interface.InspectContext, "inspect_member", spy)
    detect_bytes(gzip.compress(b"first-member ") + gzip.compress(evil_pickle()), "m.gz")
    assert seen["<gzip>"] == b"first-member " + evil_pickle()


def test_gzip_crc_mismatch_and_trailing_garbage_are_reported() -> None:
    data = bytearray(gzip.compress(b"hello world\n"))
    data[-8] ^= 0xFF  # CRC32 in the trailer
    result = detect_bytes(bytes(data) + b"\x01trailing junk", "m.gz")
    messages = [f.message for f in findings(result, "ARCHIVE-MALFORMED")]
    assert any("CRC" in m for m in messages)
    assert any("bytes after the end" in m for m in messages)
    assert all(f.severity is Severity.MEDIUM for f in findings(result, "ARCHIVE-MALFORMED"))
    assert any("<gzip-trailing@" in m for m in result.members)


def test_zero_padding_after_stream_is_fine() -> None:
    result = detect_bytes(bz2.compress(b"plain text\n") + bytes(100), "m.bz2")
    assert "ARCHIVE-MALFORMED" not in rule_ids(result)


def test_truncated_zstd_and_lz4_are_malformed() -> None:
    payload = evil_pickle() + bytes(300_000)
    for data in (zstandard.ZstdCompressor().compress(payload), lz4.frame.compress(payload)):
        result = detect_bytes(data[: len(data) - 5], "m.bin")
        assert findings(result, "ARCHIVE-MALFORMED"), result.findings
        assert result.coverage is Coverage.PARTIAL


def test_joblib_zf_declared_length_mismatch() -> None:
    data = b"ZF" + b"0x999".ljust(19) + zlib.compress(b"abc")
    result = detect_bytes(data, "old.pkl")
    assert result.format == "joblib-zfile"
    assert any("declares" in f.message for f in findings(result, "ARCHIVE-MALFORMED"))


def test_nesting_beyond_depth_limit_is_reported() -> None:
    data = evil_pickle()
    for step in (
        gzip.compress,
        bz2.compress,
        lzma.compress,
        zstandard.ZstdCompressor().compress,
        lz4.frame.compress,
        gzip.compress,
    ):
        data = step(data)
    result = detect_bytes(data, "deep.gz")
    limits = findings(result, "LIMIT-EXCEEDED")
    assert limits and limits[0].evidence["limit"] == "max_depth"
    assert result.coverage is Coverage.PARTIAL


NOT_COMPRESSED = [
    b"BZh9 is how a bzip2 file starts, but this is a README\n" * 3,
    b"x^2 + y^2 = r^2 in a maths note\n" * 3,
    b"x\x01 not zlib" + b"\x00" * 40,
    b"ZF0x10 looks like joblib but is text\n",
    b"ZF0x10             \xff\xfe not zlib",
    b'{"json": true, "list": [1, 2, 3]}',
    b"]\x00\x00\x80\x00" + b"\xff" * 40,  # lzma props byte, impossible dict size, nonzero range-coder start
    b"\x1f\x8b\x07",  # gzip magic with a non-deflate method
    struct.pack("<I", 0xFD2FB528)[:3],
]


@pytest.mark.parametrize("data", NOT_COMPRESSED)
def test_text_and_lookalikes_are_not_claimed(data: bytes) -> None:
    handler = sniff(BytesReader(data, "x"))
    assert handler is None or handler.name not in MY_HANDLERS


def test_no_crash_findings_on_samples() -> None:
    for handler, (compress, _) in WRAPPERS.items():
        assert not crashed_here(detect_bytes(compress(b"data" * 100), f"x.{handler}"))


def test_compressed_joblib_names_are_not_a_mismatch_but_other_names_are() -> None:
    for name in ("model.joblib", "model.pkl", "clf.sav"):
        assert "FORMAT-NAME-MISMATCH" not in rule_ids(
            detect_bytes(zlib.compress(benign_pickle(), 3), name)
        ), name
    mismatch = findings(
        detect_bytes(gzip.compress(benign_pickle()), "model.safetensors"), "FORMAT-NAME-MISMATCH"
    )
    assert mismatch and mismatch[0].path == "model.safetensors"


def test_many_tiny_members_stay_cheap() -> None:
    data = gzip.compress(b"") * 50_000
    reader = BytesReader(data, "many.gz")
    started = time.monotonic()
    from tests.harness import detect_reader

    result = detect_reader(reader, "many.gz")
    assert time.monotonic() - started < 5
    assert reader.bytes_read < 40 * len(data)  # no 64 KiB re-read per 20-byte member
    assert result.members == ["many.gz!<gzip>"]
