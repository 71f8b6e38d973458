"""A server that trickles, stalls or never finishes its headers cannot hang scan or pull: exit 2, a clear line.

Limits are shrunk through the environment (stall window 1 s, budget 3 s) so each case
ends in a few seconds; the local Hub trickles one byte at a time for real.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.deadline import Budget, NetLimits, NetworkDeadline
from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, HTTPFetchError
from scanner.io.reader import ReaderError
from scanner.limits import DEFAULT_LIMITS
from scanner.pipeline import ScanOptions, scan_targets
from scanner.sources.hf import HFSource

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer, resolve_url

pytestmark = pytest.mark.slow

CONFIG = b'{"model_type": "tiny", "hidden_size": 8, "padding": "' + b"x" * 3000 + b'"}'
WEIGHTS = safetensors_bytes({"w": 50_000})  # 200 kB, LFS: resolve -> 302 -> CDN


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_NETWORK_STALL_SECONDS", "1")
    monkeypatch.setenv("MODELWARD_NETWORK_MIN_RATE", "100")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "3")
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "2")


@pytest.fixture
def repo(hub: HubServer, quick: None) -> tuple[HubServer, str]:
    commit = hub.add_repo("acme/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    return hub, commit


def _run(args: list[str], limit: float = 15.0) -> tuple[int, str, float]:
    t0 = time.monotonic()
    res = CliRunner().invoke(app, args)
    took = time.monotonic() - t0
    assert took < limit, f"{args} took {took:.1f} s"
    assert "Traceback" not in res.output, res.output
    return res.exit_code, " ".join(res.stderr.split()), took


def test_limits_have_sane_defaults_and_env_overrides(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MODELWARD_NETWORK_SECONDS", raising=False)
    net = NetLimits.from_env()
    assert (
        net.seconds == DEFAULT_LIMITS.network_seconds
        and net.stall_seconds == DEFAULT_LIMITS.network_stall_seconds
    )
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "7")
    assert NetLimits.from_env().seconds == 7
    b = Budget("x", NetLimits(seconds=10, budget_rate=1000, stall_seconds=1, min_rate=1))
    b.received = 5000
    assert 14.5 < b.deadline() - b.start <= 15  # each byte received buys time: big pulls on good links finish


@pytest.mark.parametrize("target_kind", ["hf", "https"])
@pytest.mark.parametrize("cmd", ["scan", "pull"])
def test_trickling_body_is_a_stall_exit_2(repo, tmp_path: Path, target_kind: str, cmd: str):
    hub, commit = repo
    if target_kind == "hf":
        hub.faults.trickle["cdn"] = 5  # 5 bytes/s, below the 100 bytes/s minimum
        target = "hf://acme/tiny"
    else:
        hub.faults.trickle["resolve"] = 5
        target = resolve_url(hub.endpoint, "acme/tiny", commit, "config.json")
    args = [cmd, target, "--allow-http"] + (["--to", str(tmp_path / "dest")] if cmd == "pull" else [])
    code, err, took = _run(args)
    assert code == 2, err
    assert "error:" in err and "stalled" in err and "bytes/s" in err
    assert "127.0.0.1" in err and "cdnsignature" not in err  # names the URL, redacted
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("cmd", ["scan", "pull"])
def test_silent_server_after_some_bytes_ends_within_budget(repo, tmp_path: Path, cmd: str):
    hub, _ = repo
    hub.faults.stall_after["cdn"] = 8  # the safetensors header length, then silence with the connection open
    args = [cmd, "hf://acme/tiny"] + (["--to", str(tmp_path / "dest")] if cmd == "pull" else [])
    code, err, took = _run(args)
    assert code == 2 and "error:" in err, err
    assert "model.safetensors" in err
    assert not (tmp_path / "dest").exists()


def test_steady_but_too_slow_transfer_hits_the_wall_clock_budget(repo, monkeypatch: pytest.MonkeyPatch):
    hub, commit = repo
    monkeypatch.setenv("MODELWARD_NETWORK_MIN_RATE", "1")  # 5 bytes/s is not a stall here...
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "2")  # ...but 200 kB will not arrive in 2 s
    hub.faults.trickle["cdn"] = 50
    client = HTTPClient(allow_http=True)
    r = HTTPRangeReader(
        resolve_url(hub.endpoint, "acme/tiny", commit, "model.safetensors"),
        name="model.safetensors",
        client=client,
        size=len(WEIGHTS),
    )
    t0 = time.monotonic()
    with pytest.raises(Exception, match="budget") as ei:
        b"".join(r.stream())
    assert time.monotonic() - t0 < 10
    assert "model.safetensors" in str(ei.value) and r.faults.errors


@pytest.mark.parametrize("kind", ["api", "resolve", "cdn"])
def test_headers_sent_one_byte_a_second_cannot_hang(repo, kind: str):
    hub, _ = repo
    hub.faults.trickle_headers.add(kind)
    code, err, took = _run(["scan", "hf://acme/tiny"])
    assert code == 2 and "error:" in err, err
    assert took < 10


def test_client_watchdog_cuts_slow_headers_and_stall_detector_cuts_trickle(repo, monkeypatch):
    hub, commit = repo
    monkeypatch.setenv("MODELWARD_NETWORK_STALL_SECONDS", "2")  # a byte a second never trips the read timeout
    client = HTTPClient(allow_http=True)
    url = resolve_url(hub.endpoint, "acme/tiny", commit, "config.json")
    hub.faults.trickle_headers.add("resolve")
    t0 = time.monotonic()
    with pytest.raises(HTTPFetchError, match="headers within"):
        client.request("GET", url)
    assert time.monotonic() - t0 < 8
    hub.faults.trickle_headers.clear()
    hub.faults.trickle["resolve"] = 3
    with pytest.raises(HTTPFetchError, match="not tried"):  # this client already saw the server fail
        client.request("GET", url)
    client = HTTPClient(allow_http=True)
    with client.request("GET", url, stream=True) as resp, pytest.raises(NetworkDeadline, match="stalled"):
        for _ in client.budget("x").body(resp, 1024):
            pass


def test_healthy_transfers_are_untouched_by_the_limits(repo, tmp_path: Path):
    hub, _ = repo
    code, err, _ = _run(["pull", "hf://acme/tiny", "--to", str(tmp_path / "dest")])
    assert code == 0, err
    assert (tmp_path / "dest" / "model.safetensors").read_bytes() == WEIGHTS
    assert HFSource().resolve("hf://acme/tiny").artifacts


@pytest.mark.parametrize("cmd", ["scan", "pull"])
def test_dropped_connection_is_exit_2_for_hf_and_https_alike(repo, tmp_path: Path, cmd: str):
    """The same fault, the same exit code, whatever the target kind (used to be 1 for hf:// and 2 for https://)."""
    hub, commit = repo
    hub.faults.drop_after["*"] = 100
    hub.faults.drop_times = 1000
    codes = {}
    for name, target in (
        ("hf", "hf://acme/tiny"),
        ("https", resolve_url(hub.endpoint, "acme/tiny", commit, "model.safetensors")),
    ):
        args = [cmd, target, "--allow-http"] + (
            ["--to", str(tmp_path / f"d-{name}")] if cmd == "pull" else []
        )
        code, err, _ = _run(args, limit=30)
        codes[name] = code
        assert "error:" in err and "connection dropped" in err, (name, err)
    assert codes == {"hf": 2, "https": 2}


def test_a_server_that_failed_for_good_is_not_tried_again_in_the_same_run(hub: HubServer, quick):
    """Five files behind a trickling CDN cost one stall window, not five (the run fails either way)."""
    hub.add_repo("acme/many", {f"w{i}.safetensors": safetensors_bytes({f"w{i}": 1000 + i}) for i in range(5)})
    hub.faults.trickle["cdn"] = 5
    t0 = time.monotonic()
    report = scan_targets(["hf://acme/many"], ScanOptions())
    assert time.monotonic() - t0 < 10
    assert len(hub.requests_to("cdn")) == 1
    assert len(report.errors) == 5 and sum("not tried" in e for e in report.errors) == 4
    assert all(fr.coverage.value != "full" for fr in report.files if fr.path.endswith(".safetensors"))


class _ChunkTrickler:
    """A raw HTTP server whose chunked body sends its chunk-size line one byte a second (read1 cannot help)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/model.safetensors"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-16383/100000\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n8\r\n\x00\x00\x00\x00\x00\x00\x00\x00\r\n"
                )
                for _ in range(600):  # a chunk-size line with an endless extension, a byte a second
                    if self.stop.wait(0.5):
                        return
                    conn.sendall(b"1" if _ == 0 else b"a")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def test_watchdog_ends_a_body_that_trickles_inside_the_http_library(hf_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELWARD_NETWORK_STALL_SECONDS", "5")  # two bytes a second is not silence...
    monkeypatch.setenv("MODELWARD_NETWORK_MIN_RATE", "1")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "2")  # ...but the budget ends it
    srv = _ChunkTrickler()
    try:
        reader = HTTPRangeReader(
            srv.url, name="model.safetensors", client=HTTPClient(allow_http=True), size=100000
        )
        t0 = time.monotonic()
        with pytest.raises(ReaderError, match="budget"):
            reader.read(0, 100)
        assert time.monotonic() - t0 < 8
        assert reader.faults.errors and "127.0.0.1" in reader.faults.errors[0]
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["scan", srv.url, "--allow-http"])
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert res.exit_code == 2, res.output
    assert took < 10, took
    err = " ".join(res.stderr.split())
    assert "error:" in err and "127.0.0.1" in err and "budget" in err, err
