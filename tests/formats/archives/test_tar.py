"""tar: members inspected in place, link/device/traversal members reported, tarfile's view of the end honoured."""

from __future__ import annotations

import gzip
import io
import tarfile

from scanner.findings import Coverage, Severity
from scanner.formats.detect import sniff
from scanner.formats.parsers.tar_header import parse_header
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from tests.formats.archives.helpers import crashed_here, pickle_analyzer_present
from tests.harness import detect_bytes, evil_pickle, findings, rule_ids


def build_tar(entries: list[tuple[str, bytes | None, bytes, str]], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """entries: (name, data or None, type, linkname)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data, typ, link in entries:
            info = tarfile.TarInfo(name)
            info.type = typ
            info.linkname = link
            info.size = len(data) if data is not None else 0
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def reg(name: str, data: bytes) -> tuple[str, bytes, bytes, str]:
    return (name, data, tarfile.REGTYPE, "")


def test_members_links_devices_and_traversal() -> None:
    data = build_tar(
        [
            reg("archive/data", evil_pickle()),
            reg("../../home/user/.bashrc", b"echo hi\n"),
            reg("/etc/cron.d/x", b"* * * * * root true\n"),
            ("lnk", None, tarfile.SYMTYPE, "/etc/passwd"),
            ("hard", None, tarfile.LNKTYPE, "archive/data"),
            ("dev", None, tarfile.CHRTYPE, ""),
            ("fifo", None, tarfile.FIFOTYPE, ""),
            ("dir", None, tarfile.DIRTYPE, ""),
        ]
    )
    result = detect_bytes(data, "model.tar")
    assert result.format == "tar-archive"
    assert "model.tar!archive/data" in result.members
    assert "model.tar!../../home/user/.bashrc" in result.members
    assert len(findings(result, "ARCHIVE-PATH-TRAVERSAL")) == 2
    links = findings(result, "ARCHIVE-SYMLINK")
    assert {f.evidence["target"] for f in links} == {"/etc/passwd", "archive/data"}
    assert len(findings(result, "ARCHIVE-SPECIAL-MEMBER")) == 2
    assert all(f.path == "model.tar" for f in links)
    if pickle_analyzer_present():
        assert any(
            f.path == "model.tar!archive/data" and f.severity >= Severity.HIGH for f in result.findings
        )


def test_long_names_gnu_and_pax() -> None:
    long = "d/" * 80 + "../escape.pkl"
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        result = detect_bytes(build_tar([reg(long, b"hello\n")], fmt), "a.tar")
        assert f"a.tar!{long}" in result.members, (fmt, result.members)
        assert findings(result, "ARCHIVE-PATH-TRAVERSAL")


def test_ustar_prefix_is_joined() -> None:
    name = "p" * 120 + "/file.bin"
    result = detect_bytes(build_tar([reg(name, b"x")], tarfile.USTAR_FORMAT), "a.tar")
    assert result.members == [f"a.tar!{name}"]


def test_tar_gz_nests_through_gzip() -> None:
    inner = build_tar([reg("archive/data.pkl", evil_pickle())])
    result = detect_bytes(gzip.compress(inner), "model.tar.gz")
    assert result.format == "gzip"
    assert "model.tar.gz!<gzip>!archive/data.pkl" in result.members
    assert "FORMAT-NAME-MISMATCH" not in rule_ids(result)


def test_benign_tar_is_clean() -> None:
    result = detect_bytes(
        build_tar([reg("README.md", b"# model\n"), ("d", None, tarfile.DIRTYPE, "")]), "a.tar"
    )
    assert result.findings == [] and result.coverage is Coverage.FULL


def test_data_after_end_marker_is_reported_and_inspected() -> None:
    hidden = build_tar([reg("hidden/payload.pkl", evil_pickle())])
    first = build_tar([reg("ok.txt", b"fine\n")])
    result = detect_bytes(
        first + hidden, "a.tar"
    )  # `tar -i` extracts both; tarfile stops at the first zero block
    (f,) = findings(result, "ARCHIVE-MALFORMED")
    assert f.severity is Severity.MEDIUM
    trailing = [m for m in result.members if m.endswith(">") and "<tar-trailing@" in m]
    assert len(trailing) == 1
    assert f"{trailing[0]}!hidden/payload.pkl" in result.members


def test_zero_padding_is_not_trailing_data() -> None:
    result = detect_bytes(build_tar([reg("ok.txt", b"fine\n")]) + bytes(4096), "a.tar")
    assert "ARCHIVE-MALFORMED" not in rule_ids(result)


def test_member_limit() -> None:
    data = build_tar([reg(f"f{i}.txt", b"x\n") for i in range(8)])
    result = detect_bytes(data, "a.tar", Limits(max_members=5))
    assert findings(result, "ARCHIVE-TOO-MANY-MEMBERS")
    assert len(result.members) == 5
    assert result.coverage is Coverage.PARTIAL


def test_sparse_and_unknown_types_are_partial_but_inspected() -> None:
    data = build_tar([(f"s{t.decode()}", b"payload\n", t, "") for t in (tarfile.GNUTYPE_SPARSE, b"Z")])
    result = detect_bytes(data, "a.tar")
    assert len(findings(result, "ARCHIVE-UNSUPPORTED")) == 2
    assert result.coverage is Coverage.PARTIAL
    assert "a.tar!sZ" in result.members  # tarfile.extractfile reads unknown types as regular files


def test_truncated_member_is_inspected_partially() -> None:
    data = build_tar([reg("archive/data", evil_pickle() + bytes(5000))])
    result = detect_bytes(data[:2048], "a.tar")
    assert any("truncated" in f.message for f in findings(result, "ARCHIVE-MALFORMED"))
    assert "a.tar!archive/data" in result.members
    assert result.coverage is Coverage.PARTIAL


def test_duplicate_names_are_reported() -> None:
    result = detect_bytes(build_tar([reg("data.pkl", b"a\n"), reg("data.pkl", b"b\n")]), "a.tar")
    (f,) = findings(result, "ARCHIVE-MALFORMED")
    assert f.severity is Severity.MEDIUM and "more than once" in f.message
    assert len(result.members) == 2


def test_pax_size_override_is_honoured() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("a.bin")
        info.size = 700
        info.pax_headers = {"size": "700"}
        t.addfile(info, io.BytesIO(b"z" * 700))
    result = detect_bytes(buf.getvalue(), "a.tar")
    assert result.members == ["a.tar!a.bin"]
    assert "ARCHIVE-MALFORMED" not in rule_ids(result)


def test_v7_header_without_magic_is_detected() -> None:
    data = bytearray(build_tar([reg("old.bin", b"hello\n")], tarfile.USTAR_FORMAT))
    data[257:265] = bytes(8)
    data[148:156] = b" " * 8
    data[148:156] = f"{sum(data[:512]):06o}\x00 ".encode()
    parse_header(bytes(data[:512]))
    assert sniff(BytesReader(bytes(data), "x")).name == "tar-archive"
    assert detect_bytes(bytes(data), "old.tar").members == ["old.tar!old.bin"]


def test_bad_checksum_or_text_is_not_tar() -> None:
    data = bytearray(build_tar([reg("a", b"x")]))
    data[0] ^= 1
    h = sniff(BytesReader(bytes(data), "x"))
    assert h is None or h.name != "tar-archive"
    text = b"hello world, this is not an archive\n" * 40
    assert sniff(BytesReader(text, "x")).name != "tar-archive"


def test_no_crash_on_samples() -> None:
    assert not crashed_here(detect_bytes(build_tar([reg("a", b"x")]), "a.tar"))
