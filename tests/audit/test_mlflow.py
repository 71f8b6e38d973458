"""models:/ and runs:/ targets against a real `mlflow server` (SQLite backend, local artifact store) on 127.0.0.1."""

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
