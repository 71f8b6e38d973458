"""An S3 object overwritten during a scan is a finding, never bytes of two objects judged as one.

Probe result before the fix: in a bucket without versioning, a reader that fetched its first range from
one object and, after an overwrite of the same key, its next range from the new object returned both
(``b'AAAA…'`` then ``b'BBBB…'``) with no error. Reads are now sent with ``If-Match: <listed ETag>``.
Runs a real S3-compatible server (moto_server) on 127.0.0.1.
"""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.io.reader import ReaderError
from scanner.pipeline import Pipeline
from scanner.rules import get_rule_db
from scanner.settings import ScanOptions
from scanner.sources.object_store import ObjectStoreSource

pytest.importorskip("s3fs", reason="s3fs (modelward[s3]) not installed")
MOTO = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[object]:
    if not Path(MOTO).exists():
        pytest.skip("moto_server (moto[server]) not installed")
    port = _port()
    proc = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        for key, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }.items():
            monkeypatch.setenv(key, value)
        import fsspec

        fsspec.config.conf.clear()
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir("zoo")
        yield fs
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _overwrite(key: str, data: bytes) -> None:
    import fsspec

    fsspec.filesystem("s3", skip_instance_cache=True).pipe(key, data)


def test_reader_refuses_ranges_of_an_overwritten_object(s3) -> None:
    s3.pipe("zoo/m.bin", b"A" * 100_000)  # type: ignore[attr-defined]
    snap = ObjectStoreSource().resolve("s3://zoo/m.bin")
    reader = snap.artifacts[0].open()
    assert reader.read(0, 10) == b"A" * 10
    _overwrite("zoo/m.bin", b"B" * 100_000)
    with pytest.raises(ReaderError, match="changed in the bucket"):
        reader.read(50_000, 10)
    assert [p.rule_id for p in reader.integrity_problems] == ["REGISTRY-CONTENT-CHANGED"]


def test_unchanged_object_reads_normally(s3) -> None:
    data = bytes(range(256)) * 400
    s3.pipe("zoo/ok.bin", data)  # type: ignore[attr-defined]
    snap = ObjectStoreSource().resolve("s3://zoo")
    reader = snap.artifacts[0].open()
    assert reader.read(1000, 5000) == data[1000:6000]
    assert reader.read(90_000, 10_000) == data[90_000:100_000]
    assert reader.integrity_problems == []


def test_scan_of_an_object_swapped_after_listing_is_blocked(s3) -> None:
    """Listed as a harmless pickle, replaced by a dangerous one before the scan reads it."""
    benign = pickle.dumps({"weights": list(range(20))}, protocol=2)
    evil = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR." + b"." * (len(benign) - 34)
    s3.pipe("zoo/team/model.pkl", benign)  # type: ignore[attr-defined]
    snap = ObjectStoreSource().resolve("s3://zoo/team")
    _overwrite("zoo/team/model.pkl", evil)
    result = Pipeline(get_rule_db(), ScanOptions()).scan(snap)
    (fr,) = result.files
    assert "REGISTRY-CONTENT-CHANGED" in {f.rule_id for f in fr.findings}
