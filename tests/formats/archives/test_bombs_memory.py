"""Issue #12 item 4: deflated members and compressed streams are inspected in bounded memory.

Each case is built in a temp folder in well under a second (tests/bombs.py repeats one
compressed block) and scanned in a forked child whose peak-RSS rise is measured.
The full-size cases (4 GiB members) are in benchmarks/bench_bombs.py.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from scanner.findings import Coverage
from scanner.io.reader import FileReader
from scanner.io.spool import Spool, SpoolError, SpoolReader
from scanner.limits import DEFAULT_LIMITS, Limits
from tests import bombs
from tests.harness import detect_reader, evil_pickle, findings, rule_ids
from tests.memory import peak_rss_rise

pytestmark = pytest.mark.slow

RISE_CAP = (
    40 << 20
)  # what one scan may add to the process peak; the old in-memory inflation added >300 MB here
BIG = 320 << 20


def _scan(path: Path, limits: Limits = DEFAULT_LIMITS):  # type: ignore[no-untyped-def]
    with FileReader(path, name=path.name) as r:
        return detect_reader(r, path.name, limits)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --------------------------------------------------------------------------- the spool itself


def test_spool_keeps_small_content_in_memory_and_spills_big_content() -> None:
    small = Spool("s", mem_limit=1 << 10)
    small.write(b"abc")
    r = small.reader()
    assert isinstance(r, SpoolReader) and not r.on_disk and r.read(1, 2) == b"bc"
    big = Spool("b", mem_limit=1 << 10)
    chunks = [bytes([i]) * 700 for i in range(10)]
    for c in chunks:
        big.write(c)
    assert big.on_disk
    r2 = big.reader()
    assert r2.size == 7000 and r2.on_disk
    whole = b"".join(chunks)
    for off, n in ((0, 7000), (699, 3), (6999, 10), (1024, 1024)):
        assert r2.read(off, n) == whole[off : off + n]
    r2.close()
    with pytest.raises(Exception):  # noqa: B017 - any ReaderError subclass: reading after close must not pass
        r2.read(0, 1)


def test_spool_file_is_unlinked_and_released_on_close(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = _open_fds()
    s = Spool("x", mem_limit=16)
    s.write(b"z" * 100)
    assert s.on_disk and list(tmp_path.iterdir()) == []  # never visible: nothing to leave behind if killed
    r = s.reader()
    assert _open_fds() == before + 1
    r.close()
    assert _open_fds() == before


def test_temp_storage_failure_is_a_limit_finding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*a: object, **k: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(SpoolError):
        Spool("x", mem_limit=4).write(b"12345")
    path = bombs.gzip_of(tmp_path / "a.pkl.gz", bombs.big_bytes_pickle_pieces(8 << 20, bombs.text_block()))
    r = _scan(path)
    (f,) = findings(r, "LIMIT-EXCEEDED")
    assert f.evidence["limit"] == "spool" and r.coverage is Coverage.PARTIAL
    zpath = bombs.zip_one_deflated(
        tmp_path / "a.zip", "data.pkl", bombs.big_bytes_pickle_pieces(8 << 20, bombs.text_block())
    )
    rz = _scan(zpath)
    assert any(f.evidence.get("limit") == "spool" for f in findings(rz, "LIMIT-EXCEEDED"))
    assert rz.coverage is Coverage.PARTIAL


# --------------------------------------------------------------------------- zip / npz members


def test_deflated_zero_member_bomb_stops_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.zip_one_deflated(tmp_path / "z.zip", "weights.bin", bombs.zeros(1 << 30))
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert rise < RISE_CAP, rise
    (f,) = findings(r, "ARCHIVE-BOMB")
    assert f.evidence["stopped_at"] == f.evidence["compressed_size"] * DEFAULT_LIMITS.max_ratio + 1 < 1 << 30
    assert r.coverage is Coverage.PARTIAL


def test_benign_big_deflated_pickle_member_passes_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.zip_one_deflated(
        tmp_path / "m.zip", "archive/data.pkl", bombs.big_bytes_pickle_pieces(BIG, bombs.text_block())
    )
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert rise < RISE_CAP, rise
    assert not {"ARCHIVE-BOMB", "LIMIT-EXCEEDED", "ARCHIVE-MALFORMED", "ZIP-CRC-MISMATCH"} & rule_ids(r), (
        rule_ids(r)
    )
    assert r.coverage is Coverage.FULL


def test_payload_after_a_spilled_prefix_is_still_found(tmp_path: Path) -> None:
    """Content past the in-memory part (on disk) is inspected like the rest: a pickle after a big blob."""
    pieces = bombs.big_bytes_pickle_pieces(16 << 20, bombs.text_block())[:-1]  # BINBYTES8 blob, no STOP
    evil = evil_pickle(4)[2:]  # the reduce to os.system, without the PROTO header
    pieces.append((b"0" + evil, 1))  # POP the blob, then the payload and its STOP
    path = bombs.zip_one_deflated(tmp_path / "e.zip", "data.pkl", pieces)
    r = _scan(path, Limits(spool_memory=1 << 20))
    assert any(f.severity.name == "CRITICAL" for f in r.findings), [
        (f.rule_id, f.message) for f in r.findings
    ]


def test_big_npz_array_member_passes_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.zip_one_deflated(tmp_path / "a.npz", "arr_0.npy", bombs.npy_pieces(BIG))
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert rise < RISE_CAP, rise
    assert r.format in ("numpy-npz", "npz") or "npz" in r.format, r.format
    assert not {"ARCHIVE-BOMB", "LIMIT-EXCEEDED"} & rule_ids(r) and r.coverage is Coverage.FULL


def test_member_cap_bounds_disk_use_too(tmp_path: Path) -> None:
    path = bombs.zip_one_deflated(
        tmp_path / "m.zip", "data.pkl", bombs.big_bytes_pickle_pieces(64 << 20, bombs.text_block())
    )
    r = _scan(path, Limits(max_member_inflated=8 << 20))
    (f,) = findings(r, "ARCHIVE-BOMB")
    assert "member cap" in f.message and f.evidence["stopped_at"] <= (8 << 20) + (1 << 20)


# --------------------------------------------------------------------------- single-stream wrappers and 7z


@pytest.mark.parametrize("kind", ["gzip", "lz4"])
def test_benign_big_compressed_pickle_passes_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    pieces = bombs.big_bytes_pickle_pieces(BIG if kind == "gzip" else 160 << 20, bombs.text_block())
    path = (bombs.gzip_of if kind == "gzip" else bombs.lz4_of)(tmp_path / f"m.pkl.{kind}", pieces)
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert rise < RISE_CAP, rise
    assert not {"ARCHIVE-BOMB", "LIMIT-EXCEEDED", "ARCHIVE-MALFORMED"} & rule_ids(r), rule_ids(r)
    assert r.coverage is Coverage.FULL


def test_gzip_zero_bomb_stops_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.gzip_of(tmp_path / "z.gz", bombs.zeros(1 << 30))
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert rise < RISE_CAP, rise
    assert findings(r, "ARCHIVE-BOMB") and r.coverage is Coverage.PARTIAL


def test_7z_members_share_one_spool_and_are_all_inspected(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr")
    path = tmp_path / "m.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr(bytes(24 << 20), "padding.bin")
        z.writestr(evil_pickle(), "model.pkl")
        for i in range(50):
            z.writestr(b"x" * 1000, f"small{i}.txt")
    limits = Limits(spool_memory=1 << 20, max_ratio=10**9)
    before = _open_fds()
    r, rise = peak_rss_rise(lambda: _scan(path, limits))
    assert rise < RISE_CAP, rise
    assert any(f.severity.name == "CRITICAL" and "model.pkl" in f.path for f in r.findings), [
        (f.rule_id, f.path) for f in r.findings
    ]
    assert _open_fds() == before


def _pax_global(key: str, value_len: int) -> bytes:
    import tarfile

    rec = f" {key}={'v' * value_len}\n"
    n = len(rec) + len(str(len(rec) + len(str(len(rec)))))
    body = (str(n) + rec).encode()
    ti = tarfile.TarInfo("././@PaxHeader")
    ti.type, ti.size = tarfile.XGLTYPE, len(body)
    return ti.tobuf(format=tarfile.USTAR_FORMAT) + body + b"\0" * (-len(body) % 512)


def test_global_pax_headers_with_distinct_keys_cannot_add_up_unbounded(tmp_path: Path) -> None:
    import tarfile

    member = tarfile.TarInfo("a.txt")
    member.size = 2
    tail = member.tobuf(format=tarfile.USTAR_FORMAT) + b"hi" + b"\0" * 510 + b"\0" * 1024
    bomb = tmp_path / "g.tar"
    bomb.write_bytes(b"".join(_pax_global(f"k{i}", 256 << 10) for i in range(8)) + tail)
    r = _scan(bomb)
    assert [f.evidence["limit"] for f in findings(r, "LIMIT-EXCEEDED")] == ["tar_pax_global"]
    assert r.coverage is Coverage.PARTIAL
    ok = tmp_path / "ok.tar"
    ok.write_bytes(
        _pax_global("comment", 100) + _pax_global("comment", 200) + tail
    )  # same key: replaced, not added
    assert "LIMIT-EXCEEDED" not in rule_ids(_scan(ok))


def test_zip_member_names_cannot_add_up_unbounded(tmp_path: Path) -> None:
    """Up to 10k names of 64 KiB each would be kept twice (raw and decoded): listing stops at a byte cap."""
    import zipfile

    from scanner.formats.zip.listing import MAX_NAME_BYTES

    path = tmp_path / "names.zip"
    n = MAX_NAME_BYTES // 60_000 + 2
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            z.writestr(f"{i:05d}" + "n" * 60_000, b"")
    r, rise = peak_rss_rise(lambda: _scan(path))
    assert [f.evidence["limit"] for f in findings(r, "LIMIT-EXCEEDED")] == ["zip_name_bytes"]
    assert "ARCHIVE-TOO-MANY-MEMBERS" not in rule_ids(r) and r.coverage is Coverage.PARTIAL
    assert rise < 3 * MAX_NAME_BYTES + RISE_CAP, rise
