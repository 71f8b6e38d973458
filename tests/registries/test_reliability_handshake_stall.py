"""A server that accepts the connection and then says nothing during the TLS handshake or a proxy's CONNECT
ends at the network deadline (exit 2), not after the socket timeout of every attempt.

The watchdog used to get the socket only once the request was sent; TLS then wraps a new socket object around
the descriptor and detaches the old one, so shutting that down did nothing. A 3 s budget took 10+ s.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

pytestmark = pytest.mark.slow

BUDGET = 2.0
SLACK = 3.0  # start-up and the watchdog's own tick; the socket timeout alone is 10 s


class Silent:
    """Accepts every connection and never sends a byte (a stalled TLS handshake, a proxy that never answers)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Silent]:
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", str(BUDGET))
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    srv = Silent()
    yield srv
    srv.close()


def _timed(args: list[str]) -> tuple[int, str, float]:
    t0 = time.monotonic()
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stderr, time.monotonic() - t0


@pytest.mark.parametrize("cmd", ["scan", "pull"])
def test_tls_handshake_stall_ends_at_the_deadline(silent: Silent, tmp_path: Path, cmd: str) -> None:
    url = f"https://127.0.0.1:{silent.port}/model.safetensors"
    args = [cmd, url] + (["--to", str(tmp_path / "dl")] if cmd == "pull" else [])
    code, err, wall = _timed(args)
    assert code == 2 and "error:" in err, err
    assert wall < BUDGET + SLACK, wall
    assert silent.held  # it did connect: the stall was in the handshake
    assert not (tmp_path / "dl").exists()


def test_proxy_that_never_answers_connect_ends_at_the_deadline(
    silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{silent.port}")
    monkeypatch.setenv("NO_PROXY", "")
    code, err, wall = _timed(["scan", "https://models.example.invalid/model.safetensors"])
    assert code == 2 and "error:" in err, err
    assert wall < BUDGET + SLACK, wall
    assert silent.held


def test_hub_endpoint_stalling_in_tls_ends_at_the_deadline(
    silent: Silent, hf_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"https://127.0.0.1:{silent.port}")
    code, err, wall = _timed(["scan", "hf://acme/model"])
    assert code == 2 and "error:" in err, err
    assert wall < BUDGET + SLACK, wall
