"""A verdict names the bytes that were inspected: a file rewritten while scanned blocks.

Every test rewrites a real file in place mid-scan the way an attacker would (same size, mtime put
back with os.utime; only the ctime, which nobody unprivileged can set, still moves) or swaps the path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import scanner.engine as engine
from scanner.cache import ResultCache
from scanner.engine import ScanOptions, inspect_artifact
from scanner.findings import Decision
from scanner.integrity import hashing
from scanner.io.reader import FileReader
from scanner.rules import get_rule_db
from scanner.sources.base import Artifact
from tests.harness import scan

MALICIOUS = b"cos\nsystem\n(S'touch /tmp/x'\ntR."
BENIGN = b"S'" + b"a" * (len(MALICIOUS) - 5) + b"'\n."
CHANGED = "FILE-CHANGED-DURING-SCAN"


def _rewrite(path: Path, data: bytes) -> None:
    """Overwrite in place, same size, then restore atime/mtime: what a stealthy swap looks like."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _swap(path: Path, data: bytes) -> None:
    """Replace the path with another file (new inode) of the same size and mtime."""
    st = path.stat()
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    assert len(BENIGN) == len(MALICIOUS)
    p = tmp_path / "model.pkl"
    p.write_bytes(BENIGN)
    return p


def _after_inspection(monkeypatch: pytest.MonkeyPatch, action) -> None:  # noqa: ANN001
    real = engine.inspect_with_detection

    def hooked(reader, ctx):  # noqa: ANN001, ANN202
        out = real(reader, ctx)
        action()
        return out

    monkeypatch.setattr(engine, "inspect_with_detection", hooked)


def _assert_blocked_not_bound_to(report, data: bytes) -> None:  # noqa: ANN001
    fr = report.files[0]
    assert report.verdict.decision is Decision.BLOCK
    assert CHANGED in {f.rule_id for f in fr.findings}
    assert fr.coverage.value != "full"


@pytest.mark.parametrize("change", [_rewrite, _swap], ids=["rewrite-in-place", "path-swapped"])
def test_benign_inspected_then_malicious_on_disk_blocks(
    model: Path, monkeypatch: pytest.MonkeyPatch, change
) -> None:  # noqa: ANN001
    assert scan(model).verdict.decision is Decision.ALLOW
    _after_inspection(monkeypatch, lambda: change(model, MALICIOUS))
    _assert_blocked_not_bound_to(scan(model), MALICIOUS)


def test_rewrite_during_hashing_blocks(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inspectors read a header only; the rest is hashed later through the descriptor: rewrite in between."""
    real = hashing.digest_fd_into

    def hooked(hasher, fd, start, stop, block_size=hashing.DEFAULT_BLOCK_SIZE):  # noqa: ANN001, ANN202
        _rewrite(model, MALICIOUS)
        return real(hasher, fd, start, stop, block_size)

    monkeypatch.setattr("scanner.io.reader.digest_fd_into", hooked)
    # force the "rest of the file" path: the inspectors' reads stop feeding the running hash
    monkeypatch.setattr(FileReader, "_hash_through", lambda self, offset, data: None)
    _assert_blocked_not_bound_to(scan(model), MALICIOUS)


def test_rewrite_between_two_inspector_reads_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Malicious bytes read first, then the file turns benign before the rest is read and hashed."""
    p = tmp_path / "model.pkl"
    p.write_bytes(MALICIOUS)
    real_read = FileReader._read
    done = []

    def read(self, offset, length):  # noqa: ANN001, ANN202
        data = real_read(self, offset, length)
        if not done:
            done.append(1)
            _rewrite(p, BENIGN)
        return data

    monkeypatch.setattr(FileReader, "_read", read)
    report = scan(p)
    assert CHANGED in {f.rule_id for f in report.files[0].findings}
    assert report.verdict.decision is Decision.BLOCK


def test_unchanged_file_keeps_its_digest_and_no_finding(model: Path) -> None:
    fr = scan(model).files[0]
    assert fr.sha256 == hashlib.sha256(BENIGN).hexdigest()
    assert CHANGED not in {f.rule_id for f in fr.findings}


def test_digest_is_of_the_inspected_bytes_when_read_whole_and_in_part(tmp_path: Path) -> None:
    """The running hash through the reader and the finishing hash agree with hashlib on the real file."""
    data = os.urandom(3 << 20)
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    for reads in ([(0, 100), (100, 5000)], [(10, 20)], [(0, 3 << 20)], [((3 << 20) - 10, 10), (0, 50)]):
        with FileReader(p) as r:
            for off, n in reads:
                r.read(off, n)
            assert r.sha256() == hashlib.sha256(data).hexdigest()


def _local_artifact(p: Path) -> Artifact:
    return Artifact(
        path=p.name, size=p.stat().st_size, opener=lambda: FileReader(p, name=p.name), local_path=str(p)
    )


def test_cache_path_hash_then_rewrite_blocks_and_is_not_cached(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cache the digest is taken first; a rewrite before inspection must not be judged under it."""
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key")
    cache = ResultCache(tmp_path / "cache")
    opts = ScanOptions(cache=cache)
    rules = get_rule_db()
    real = engine._judge_open

    def hooked(artifact, reader, *a):  # noqa: ANN001, ANN202
        _rewrite(model, MALICIOUS)
        return real(artifact, reader, *a)

    monkeypatch.setattr(engine, "_judge_open", hooked)
    fr = inspect_artifact(_local_artifact(model), rules, opts)
    assert CHANGED in {f.rule_id for f in fr.findings}
    assert not list((tmp_path / "cache").rglob("*.json")), "a result for changed bytes was cached"


def test_cache_hit_for_bytes_rewritten_after_hashing_is_not_served(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest matches a cached ALLOW, then the file is rewritten before the hit is returned."""
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key")
    cache = ResultCache(tmp_path / "cache")
    opts = ScanOptions(cache=cache)
    rules = get_rule_db()
    inspect_artifact(_local_artifact(model), rules, opts)
    real_get = cache.get

    def get(key):  # noqa: ANN001, ANN202
        hit = real_get(key)
        _rewrite(model, MALICIOUS)
        return hit

    monkeypatch.setattr(cache, "get", get)
    fr = inspect_artifact(_local_artifact(model), rules, opts)
    assert not fr.cached
    assert CHANGED in {f.rule_id for f in fr.findings} or any(
        f.severity.value == "critical" for f in fr.findings
    )


def test_cache_hit_after_in_place_rewrite_is_not_served(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALLOW cached for the benign bytes; the file becomes malicious with mtime and size restored."""
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key")
    opts = ScanOptions(cache=ResultCache(tmp_path / "cache"))
    rules = get_rule_db()
    first = inspect_artifact(_local_artifact(model), rules, opts)
    assert not first.findings and list((tmp_path / "cache").rglob("*.json"))
    _rewrite(model, MALICIOUS)
    again = inspect_artifact(_local_artifact(model), rules, opts)
    assert not again.cached and again.sha256 == hashlib.sha256(MALICIOUS).hexdigest()
    assert any(f.severity.value == "critical" for f in again.findings)


def test_bytes_differ_from_digest_verified_before_scan(model: Path) -> None:
    """pull and signature checks hash first and hand the digest over; the scan re-hashes and compares."""
    rules = get_rule_db()
    opts = ScanOptions(known_sha256={"model.pkl": hashlib.sha256(MALICIOUS).hexdigest()})
    fr = inspect_artifact(_local_artifact(model), rules, opts)
    assert CHANGED in {f.rule_id for f in fr.findings}
    ok = inspect_artifact(
        _local_artifact(model),
        rules,
        ScanOptions(known_sha256={"model.pkl": hashlib.sha256(BENIGN).hexdigest()}),
    )
    assert CHANGED not in {f.rule_id for f in ok.findings} and ok.sha256 == hashlib.sha256(BENIGN).hexdigest()


def test_malicious_inspected_then_benign_on_disk_reports_no_benign_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the report must not pair the blocked verdict with the digest of other bytes."""
    p = tmp_path / "model.pkl"
    p.write_bytes(MALICIOUS)
    _after_inspection(monkeypatch, lambda: _rewrite(p, BENIGN))
    report = scan(p)
    fr = report.files[0]
    assert CHANGED in {f.rule_id for f in fr.findings}
    assert fr.sha256 != hashlib.sha256(BENIGN).hexdigest()
    assert report.verdict.decision is Decision.BLOCK
