"""s3:// zoos through fsspec against a real S3-compatible server (moto_server) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests.audit.bounded_scan import scan_within
from tests.registries.models import safetensors_bytes
from tests.registries.servers.fault_proxy import FaultProxy

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


# ---- network guarantees: moto_server behind a misbehaving proxy -----------------------------------------

OBJECT = r"^/zoo/team/weights\.pkl"
SESSION_TOKEN = "aws-session-token-0123456789abcdef"


@pytest.fixture
def faulty(s3, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The bucket (two small objects) behind a fault-injecting proxy; short limits so every case ends in seconds."""
    s3.pipe("zoo/team/weights.pkl", EVIL)
    s3.pipe("zoo/team/ok.pkl", pickle.dumps([1]))
    p = FaultProxy(os.environ["AWS_ENDPOINT_URL"])
    for key, value in {
        "AWS_ENDPOINT_URL": p.url,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "MODELWARD_NETWORK_SECONDS": "6",  # a loaded CI machine needs room for the healthy calls
        "MODELWARD_NETWORK_STALL_SECONDS": "1",
        "MODELWARD_HTTP_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield p
    finally:
        p.stop()


def _weights(doc: dict) -> dict:
    return next(f for f in doc["files"] if f["path"].endswith("weights.pkl"))


def test_trickling_object_read_ends_at_the_deadline_exit_2(faulty: FaultProxy) -> None:
    faulty.add("trickle", OBJECT, method="GET")
    code, out, doc, took = scan_within("s3://zoo/team")
    assert code == 2 and took < 25, (code, took, out)
    assert any("within" in e for e in doc["errors"]), doc["errors"]


@pytest.mark.parametrize("what", ["everything", "listing"])
def test_store_that_never_answers_or_trickles_its_listing_is_one_error(faulty: FaultProxy, what: str) -> None:
    if what == "everything":
        faulty.add("silent", r".")
    else:
        faulty.add("trickle", r"list-type", method="GET")
    code, out, _doc, took = scan_within("s3://zoo/team")
    assert code == 2 and took < 25, (code, took, out)
    assert "s3://zoo/team" in out


def test_endpoint_whose_name_never_resolves_ends_at_the_deadline(
    faulty: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, release = socket.getaddrinfo, threading.Event()

    def resolver(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - socket.getaddrinfo
        if str(host).endswith("hang.test"):
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "resolver gave up")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://s3.hang.test:{faulty.port}")
    try:
        code, out, _doc, took = scan_within("s3://zoo/team")
    finally:
        release.set()
    assert code == 2 and took < 25, (code, took, out)


def test_body_larger_than_the_range_is_refused_without_reading_it(faulty: FaultProxy) -> None:
    faulty.add("oversize", OBJECT, method="GET", size=64 << 20)
    code, out, doc, _ = scan_within("s3://zoo/team")
    assert code == 2, out
    assert _weights(doc)["bytes_read"] < 1 << 20
    assert any("more than the 35 bytes" in e for e in doc["errors"]), doc["errors"]


def test_gzip_encoded_object_is_refused_not_decoded(faulty: FaultProxy) -> None:
    faulty.add("gzip", OBJECT, method="GET")
    code, out, doc, _ = scan_within("s3://zoo/team")
    assert code == 2, out
    assert any("Content-Encoding: gzip" in e for e in doc["errors"]), doc["errors"]


def test_redirect_never_carries_the_session_token_to_another_origin(faulty: FaultProxy) -> None:
    other = FaultProxy(faulty.url)
    try:
        faulty.add("redirect", OBJECT, method="GET", location=other.url)
        code, out, doc, _ = scan_within("s3://zoo/team")
        assert not other.log, other.log  # the redirect is not followed at all
        assert code == 2, out
        assert faulty.headers_seen("x-amz-security-token")  # the endpoint itself got it
        assert SESSION_TOKEN not in out
    finally:
        other.stop()
