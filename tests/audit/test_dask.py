"""--dask: per-file inspection on a real Dask cluster (scheduler and worker processes on 127.0.0.1)."""

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

# one dask server per module: keep the module on one xdist worker (--dist loadgroup) so it starts once
pytestmark = [pytest.mark.xdist_group("dask"), pytest.mark.slow]

pytest.importorskip("distributed", reason="dask.distributed (modelward[dask]) not installed")
DASK = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))
EVIL = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _port()
    log = tmp_path_factory.mktemp("dask")
    procs = [
        subprocess.Popen(
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
                "--no-show",
            ],
            stdout=open(log / "s.log", "w"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        _wait(port)
        address = f"tcp://127.0.0.1:{port}"
        procs.append(
            subprocess.Popen(
                [
                    DASK,
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(log),
                ],
                stdout=open(log / "w.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _zoo(tmp_path: Path) -> Path:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    for i in range(10):
        (zoo / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [i]}, protocol=4))
    (zoo / "evil.pkl").write_bytes(EVIL)
    return zoo


def test_dask_gives_the_same_verdicts_as_a_local_run(cluster: str, tmp_path: Path) -> None:
    zoo = _zoo(tmp_path)
    runner = CliRunner()
    local = runner.invoke(
        app, ["audit", str(zoo), "--db", str(tmp_path / "a.sqlite"), "-p", "default", "-f", "json"]
    )
    remote = runner.invoke(
        app,
        [
            "audit",
            str(zoo),
            "--db",
            str(tmp_path / "b.sqlite"),
            "-p",
            "default",
            "-f",
            "json",
            "--dask",
            cluster,
        ],
    )
    assert local.exit_code == remote.exit_code == 1, remote.output
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert a["verdict"]["file_decisions"] == b["verdict"]["file_decisions"]
    assert [f["sha256"] for f in a["files"]] == [f["sha256"] for f in b["files"]]
    assert b["audit"]["inspected_files"] == 11  # recorded by the coordinator as results arrived


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    zoo = _zoo(tmp_path)
    res = CliRunner().invoke(
        app, ["audit", str(zoo), "--db", str(tmp_path / "c.sqlite"), "--dask", f"tcp://127.0.0.1:{_port()}"]
    )
    assert res.exit_code == 2 and "Dask scheduler" in res.output
