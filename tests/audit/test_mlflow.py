"""models:/ and runs:/ targets against a real `mlflow server` (SQLite backend, local artifact store) on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests.audit.bounded_scan import scan_within
from tests.registries.servers.fault_proxy import FaultProxy

# one mlflow server per module: keep the module on one xdist worker (--dist loadgroup) so it starts once
pytestmark = [pytest.mark.xdist_group("mlflow"), pytest.mark.slow]

pytest.importorskip("mlflow", reason="mlflow (modelward[mlflow]) not installed")
MLFLOW = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
EVIL = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = _port()
    proc = subprocess.Popen(
        [
            MLFLOW,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "art"),
        ],
        stdout=open(root / "server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        import requests

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(uri + "/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start: " + (root / "server.log").read_text()[-2000:])
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _log(uri: str, tmp_path: Path, name: str, files: dict[str, bytes]) -> str:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    src = tmp_path / "model"
    src.mkdir()
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), artifact_path="model")
    client = MlflowClient(uri)
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return run.info.run_id


def test_registered_model_and_run_are_scanned(
    tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    run_id = _log(tracking, tmp_path, "clf", {"weights.pkl": EVIL, "meta/config.pkl": pickle.dumps({"a": 1})})
    for target in ("models:/clf/1", f"runs:/{run_id}/model"):
        res = CliRunner().invoke(app, ["scan", target, "-f", "json"])
        assert res.exit_code == 1, res.output
        files = {f["path"].rsplit("/", 1)[-1]: f for f in json.loads(res.stdout)["files"]}
        assert {"weights.pkl", "config.pkl"} <= set(files)
        assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in files["weights.pkl"]["findings"])
        assert files["config.pkl"]["sha256"] and not files["config.pkl"]["findings"]
    assert not list(Path(tmp_path).glob("modelward-mlflow-*"))


def test_audit_of_a_model_version_is_incremental(
    tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    _log(tracking, tmp_path, "reg", {"a.pkl": pickle.dumps([1]), "b.pkl": pickle.dumps([2])})
    db = str(tmp_path / "inv.sqlite")
    runs = [
        json.loads(CliRunner().invoke(app, ["audit", "models:/reg/1", "--db", db, "-f", "json"]).stdout)[
            "audit"
        ]
        for _ in range(2)
    ]
    assert runs[0]["files"]["new"] == 2 and runs[1]["reused_files"] == 2 and runs[1]["inspected_files"] == 0


def test_unknown_model_is_one_clear_error(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    res = CliRunner().invoke(app, ["scan", "models:/nope/3"])
    assert res.exit_code == 2 and "models:/nope/3" in res.output and "Traceback" not in res.output


# ---- network guarantees: a real mlflow server behind a misbehaving proxy --------------------------------

RUN_FILES = {"weights.pkl": EVIL, "big.bin": bytes(range(256)) * 4096}  # 1 MiB beside the pickle
ARTIFACT = r"^/api/2\.0/mlflow-artifacts/artifacts/[^?]*weights\.pkl"
TOKEN = "mlflow-token-0123456789abcdef"


@pytest.fixture(scope="module")
def logged_run(tracking: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _log(tracking, tmp_path_factory.mktemp("run"), "netcheck", RUN_FILES)


@pytest.fixture
def proxy(tracking: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The tracking server behind a fault-injecting proxy; short limits so every case ends in seconds."""
    import mlflow

    p = FaultProxy(tracking)
    _point_at(p.url, monkeypatch)
    for key, value in {
        "MODELWARD_NETWORK_SECONDS": "6",  # a loaded CI machine needs room for the healthy calls
        "MODELWARD_NETWORK_STALL_SECONDS": "1",
        "MODELWARD_NETWORK_MIN_RATE": "100",
        "MODELWARD_HTTP_ATTEMPTS": "2",
        "MODELWARD_HTTP_BACKOFF": "0.05",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    try:
        yield p
    finally:
        mlflow.set_tracking_uri(tracking)
        p.stop()


def _point_at(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_TRACKING_URI, and the MLflow client's process-wide URI (``_log`` set it) to the same server."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


def _files(doc: dict) -> dict[str, dict]:
    return {f["path"].rsplit("/", 1)[-1]: f for f in doc.get("files", [])}


def test_artifacts_are_read_by_range_with_identity_encoding(proxy: FaultProxy, logged_run: str) -> None:
    code, out, doc, _ = scan_within(f"runs:/{logged_run}/model")
    assert code == 1, out
    files = _files(doc)
    assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in files["weights.pkl"]["findings"])
    assert files["big.bin"]["bytes_read"] < len(RUN_FILES["big.bin"]) // 2  # ranges, not a download
    assert set(proxy.headers_seen("accept-encoding")) == {"identity"}


def test_trickling_artifact_is_a_stall_exit_2(proxy: FaultProxy, logged_run: str) -> None:
    proxy.add("trickle", ARTIFACT, method="GET")
    code, out, doc, took = scan_within(f"runs:/{logged_run}/model")
    assert code == 2 and took < 25, (code, took, out)
    # the stall detector, or the socket read timeout (capped at the stall window) on a busy machine
    assert any(e.startswith("weights.pkl") for e in doc["errors"]), doc["errors"]


def test_tracking_server_that_never_answers_is_one_error_within_the_budget(
    proxy: FaultProxy, logged_run: str
) -> None:
    proxy.add("silent", r".")
    code, out, _doc, took = scan_within(f"runs:/{logged_run}/model")
    assert code == 2 and took < 25, (code, took, out)
    assert "timed out" in out or "budget" in out or "response" in out, out


def test_trickling_rest_answer_is_one_error_within_the_budget(proxy: FaultProxy) -> None:
    proxy.add("trickle", r"^/api/2\.0/mlflow/model-versions/get\b")
    code, out, _doc, took = scan_within("models:/netcheck/1")
    assert code == 2 and took < 25, (code, took, out)


def test_tracking_host_whose_name_never_resolves_ends_at_the_deadline(
    proxy: FaultProxy, logged_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, release = socket.getaddrinfo, threading.Event()

    def resolver(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - socket.getaddrinfo
        if str(host).endswith("hang.test"):
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "resolver gave up")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    _point_at(f"http://mlflow.hang.test:{proxy.port}", monkeypatch)
    try:
        code, out, _doc, took = scan_within(f"runs:/{logged_run}/model")
    finally:
        release.set()
    assert code == 2 and took < 25, (code, took, out)
    assert "mlflow.hang.test" in out


def test_body_larger_than_the_listing_is_a_size_mismatch_never_a_download(
    proxy: FaultProxy, logged_run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's download folders only (xdist)
    proxy.add("oversize", ARTIFACT, method="GET", size=64 << 20)
    code, out, doc, _ = scan_within(f"runs:/{logged_run}/model")
    assert code in (1, 2), out
    weights = _files(doc)["weights.pkl"]
    assert any(x["rule_id"] == "REGISTRY-SIZE-MISMATCH" for x in weights["findings"]), weights
    assert weights["bytes_read"] < 1 << 20
    assert not list(Path(tempfile.gettempdir()).glob("modelward-mlflow-*"))


def test_gzip_encoded_artifact_is_refused_not_decoded(proxy: FaultProxy, logged_run: str) -> None:
    proxy.add("gzip", ARTIFACT, method="GET")
    code, out, doc, _ = scan_within(f"runs:/{logged_run}/model")
    assert code == 2, out
    assert any("Content-Encoding: gzip" in e for e in doc["errors"]), doc["errors"]
    weights = _files(doc)["weights.pkl"]
    assert not any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in weights["findings"])  # never decoded


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_credentials_stay_with_the_tracking_server_across_a_redirect(
    proxy: FaultProxy, tracking: str, logged_run: str, monkeypatch: pytest.MonkeyPatch, auth: str
) -> None:
    other = FaultProxy(tracking)  # another origin (another port) serving the same bytes
    try:
        proxy.add("redirect", ARTIFACT, method="GET", location=other.url)
        if auth == "token":
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", TOKEN)
        code, out, _doc, _ = scan_within(f"runs:/{logged_run}/model")
        assert code == 1, out
        assert other.log and not other.headers_seen("authorization")
        assert proxy.headers_seen("authorization")  # the tracking server itself got them
        assert TOKEN not in out
        assert set(proxy.headers_seen("accept-encoding")) == {"identity"}
    finally:
        other.stop()


# ---- stores the tracking server does not proxy: the MLflow client, bounded ------------------------------


class _Info:
    def __init__(self, path: str, size: int) -> None:
        self.path, self.is_dir, self.file_size = path, False, size


class _FakeArtifacts:
    """Stands in for ``mlflow.artifacts`` reading a store we cannot reach ourselves (writes like the client)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()

    def list_artifacts(self, artifact_uri: str) -> list[_Info]:
        if self.behaviour == "hang-list":
            self.stop.wait(60)
        return [_Info("weights.pkl", len(EVIL))]

    def download_artifacts(self, artifact_uri: str, dst_path: str) -> str:
        out = Path(dst_path) / "weights.pkl"
        with open(out, "wb") as f:
            if self.behaviour == "oversize":
                while not self.stop.is_set():  # a store that never stops sending
                    f.write(b"x" * (1 << 16))
                    f.flush()
                    time.sleep(0.01)
            elif self.behaviour == "hang-download":
                self.stop.wait(60)
            else:
                f.write(EVIL)
        return str(out)


@pytest.mark.parametrize("behaviour", ["oversize", "hang-download", "hang-list"])
def test_mlflow_client_reads_are_bounded_in_time_and_size(
    behaviour: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from scanner.sources import mlflow_source

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's download folders only (xdist)

    fake = _FakeArtifacts(behaviour)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "2")
    monkeypatch.setenv("MODELWARD_NETWORK_BUDGET_RATE", "1000000")
    monkeypatch.setattr(mlflow_source, "_mlflow", lambda: (fake, None))
    source = mlflow_source.MLflowSource()
    t0 = time.monotonic()
    try:
        if behaviour == "hang-list":
            with pytest.raises(mlflow_source.SourceError, match="no complete answer"):
                source._resolve_client("runs:/abc/model", "s3://bucket/abc/model", "runs:/abc/model")
            return
        snap = source._resolve_client("runs:/abc/model", "s3://bucket/abc/model", "runs:/abc/model")
        with pytest.raises(mlflow_source.ReaderError, match="size mismatch|within"):
            snap.artifacts[0].open()
        assert not list(Path(tempfile.gettempdir()).glob("modelward-mlflow-*"))
    finally:
        fake.stop.set()
        assert time.monotonic() - t0 < 8
