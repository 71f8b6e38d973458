"""Connection set-up obeys the network deadline: a resolver that never answers cannot hold a scan.

No DNS server can be made to hang here without the internet, so the process's resolver is replaced inside the
test (``socket.getaddrinfo``, which urllib3 and the OCI host check call): names under ``hang.test`` never
resolve (until the test ends), names under ``slow.test`` resolve to 127.0.0.1 after a pause, names under
``many.test`` resolve to many addresses of a real listening socket whose accept queue is full (the kernel drops
the connection attempts: every connect hangs). The servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io import resolve
from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, HTTPFetchError
from scanner.io.reader import ReaderError
from scanner.sources.base import SourceError
from scanner.sources.oci import OCISource

from .models import safetensors_bytes

pytestmark = pytest.mark.slow
WEIGHTS = safetensors_bytes({"w": 1000})


class Resolver:
    """A stand-in for the system resolver with hanging, slow and many-address names."""

    def __init__(self, real, blackhole: tuple[str, int]) -> None:  # noqa: ANN001 - socket.getaddrinfo
        self.real = real
        self.blackhole = blackhole
        self.release = threading.Event()
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: ANN001, A002
        name = host.decode() if isinstance(host, bytes) else str(host)
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
        if name.endswith("hang.test"):
            self.release.wait(120)
            raise socket.gaierror(socket.EAI_AGAIN, "resolver gave up")
        if name.endswith("slow.test"):
            time.sleep(0.3)
            return self.real("127.0.0.1", port, socket.AF_INET, type, proto, flags)
        if name.endswith("many.test"):
            addr = (socket.AF_INET, socket.SOCK_STREAM, 6, "", self.blackhole)
            return [addr] * 50
        return self.real(host, port, family, type, proto, flags)


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A listening socket that accepts nothing more: further connection attempts hang (SYNs dropped)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    addr = srv.getsockname()
    held = []
    for _ in range(3):  # fill the accept queue
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(addr)
        except BlockingIOError:
            pass
        held.append(s)
    time.sleep(0.1)
    try:
        yield addr
    finally:
        for s in held:
            s.close()
        srv.close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch, blackhole: tuple[str, int]) -> Iterator[Resolver]:
    r = Resolver(socket.getaddrinfo, blackhole)
    monkeypatch.setattr(socket, "getaddrinfo", r)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "2")
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "3")
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.05")
    try:
        yield r
    finally:
        r.release.set()  # let the stuck lookup threads finish


@pytest.fixture
def site(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "model.safetensors").write_bytes(WEIGHTS)
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_hanging_resolution_ends_at_the_deadline(resolver: Resolver, site: int) -> None:
    client = HTTPClient(allow_http=True)
    t0 = time.monotonic()
    with pytest.raises(HTTPFetchError, match="timed out|budget") as ei:
        client.request("GET", f"http://files.hang.test:{site}/model.safetensors", stream=True)
    took = time.monotonic() - t0
    assert took < 4, took
    assert "files.hang.test" in str(ei.value)


def test_retries_share_one_stuck_lookup(
    resolver: Resolver, site: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "1.5")
    client = HTTPClient(allow_http=True, timeout=(0.3, 5))
    with pytest.raises(HTTPFetchError):
        client.request("GET", f"http://shared.hang.test:{site}/x", stream=True)
    assert resolver.calls["shared.hang.test"] == 1  # three attempts, one resolver thread


def test_scan_with_hanging_resolution_is_exit_2_within_budget(resolver: Resolver, site: int) -> None:
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["scan", f"http://cli.hang.test:{site}/model.safetensors", "--allow-http"])
    took = time.monotonic() - t0
    err = " ".join(res.stderr.split())
    assert res.exit_code == 2, res.output
    assert "error:" in err and "Traceback" not in res.output
    assert "cli.hang.test" in err
    assert took < 6, took


def test_range_reader_on_hanging_resolution_is_a_fault(resolver: Resolver, site: int) -> None:
    client = HTTPClient(allow_http=True)
    t0 = time.monotonic()
    with pytest.raises(ReaderError):
        HTTPRangeReader(f"http://reader.hang.test:{site}/model.safetensors", name="m", client=client)
    assert time.monotonic() - t0 < 4


def test_slow_but_timely_resolution_still_works(resolver: Resolver, site: int) -> None:
    client = HTTPClient(allow_http=True)
    r = HTTPRangeReader(f"http://files.slow.test:{site}/model.safetensors", name="m", client=client)
    assert r.size == len(WEIGHTS)
    assert r.read(0, 8) == WEIGHTS[:8]


def test_many_unreachable_addresses_share_one_deadline(resolver: Resolver) -> None:
    client = HTTPClient(allow_http=True, timeout=(1.0, 5))  # 50 addresses x 1 s would be 50 s per attempt
    t0 = time.monotonic()
    with pytest.raises(HTTPFetchError, match="timed out|budget"):
        client.request("GET", "http://files.many.test/x", stream=True)
    assert time.monotonic() - t0 < 4


def test_pending_lookups_are_bounded(resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "MAX_PENDING", 2)
    for i in range(2):
        with pytest.raises(TimeoutError):
            resolve.getaddrinfo_within(f"n{i}.bound.hang.test", 80, 0, socket.SOCK_STREAM, 0.05)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="still hang"):
        resolve.getaddrinfo_within("n9.bound.hang.test", 80, 0, socket.SOCK_STREAM, 5)
    assert time.monotonic() - t0 < 3  # refused at once (the deadline is 5 s), no new thread
    assert "n9.bound.hang.test" not in resolver.calls


def test_oci_host_check_does_not_hang(resolver: Resolver) -> None:
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="no answer"):
        OCISource().resolve("oci://registry.hang.test/acme/model:latest")
    assert time.monotonic() - t0 < 4
