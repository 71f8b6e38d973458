"""s3:// zoos through fsspec against a real S3-compatible server (moto_server) on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests.registries.models import safetensors_bytes

pytestmark = pytest.mark.slow

pytest.importorskip("s3fs", reason="s3fs (modelward[s3]) not installed")
MOTO = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
EVIL = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."


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


def test_scan_reads_only_the_ranges_it_needs(s3) -> None:
    blob = safetensors_bytes({"w": 4 << 20})  # 16 MiB, judged from its header
    s3.pipe("zoo/team/model.safetensors", blob)
    s3.pipe("zoo/team/evil.pkl", EVIL)
    res = CliRunner().invoke(app, ["scan", "s3://zoo/team", "-f", "json"])
    assert res.exit_code == 1, res.output
    files = {f["path"].rsplit("/", 1)[-1]: f for f in json.loads(res.stdout)["files"]}
    assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in files["evil.pkl"]["findings"])
    model = files["model.safetensors"]
    assert model["size"] == len(blob) and model["bytes_read"] < len(blob) // 20


def _audit(db: str) -> dict:
    res = CliRunner().invoke(app, ["audit", "s3://zoo", "--db", db, "-f", "json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["audit"]


def test_audit_of_a_bucket_is_incremental_by_etag(s3, tmp_path: Path) -> None:
    for i in range(4):
        s3.pipe(f"zoo/m{i}.pkl", pickle.dumps([i, i]))
    db = str(tmp_path / "inv.sqlite")
    first = _audit(db)
    assert first["files"]["new"] == 4
    second = _audit(db)
    assert second["reused_files"] == 4 and second["inspected_files"] == 0
    s3.pipe("zoo/m2.pkl", EVIL)  # overwritten: new ETag
    third = _audit(db)
    assert third["changed_paths"] == ["s3://zoo/m2.pkl"] and third["inspected_files"] == 1
    assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in third["new_findings"])


def test_missing_bucket_is_one_clear_error(s3) -> None:
    res = CliRunner().invoke(app, ["scan", "s3://no-such-bucket/x"])
    assert res.exit_code == 2
    assert "s3://no-such-bucket/x" in res.output and "Traceback" not in res.output
