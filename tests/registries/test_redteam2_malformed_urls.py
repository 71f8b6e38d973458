"""Server-written URLs that cannot be parsed end in one clear error (exit 2), never a traceback or a leak.

A redirect ``Location`` with a port out of range, a port that is not a number or bytes that are not
UTF-8 made ``requests`` raise a bare ``ValueError`` while it prepared the next hop (even with redirects
off), which escaped as a traceback with exit 1. A registry's token realm with such a port or a broken
IPv6 literal did the same in the OCI token dance, and so did an ``HF_ENDPOINT`` with a bad port (inside
huggingface_hub's import). A header block cut by the watchdog was judged as the server's answer.

The servers here are real sockets on 127.0.0.1 that answer exactly the bytes each test scripts.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.deadline import NetLimits
from scanner.io.http_session import HTTPClient, HTTPFetchError
from scanner.io.retry import RetryPolicy

USER, PASSWORD = "alice", "redteam2-userinfo-pw"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DOCKER_PASSWORD = "redteam2-docker-pw"

Handler = Callable[[socket.socket, str, str, dict[str, str]], None]


class RawServer:
    """One scripted HTTP/1.1 server: ``handler(conn, method, path, headers)`` writes the raw answer."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        fh = conn.makefile("rb")
        try:
            line = fh.readline().decode("latin-1")
            if not line:
                return
            method, path, _ = line.split(" ", 2)
            headers: dict[str, str] = {}
            while True:
                h = fh.readline().decode("latin-1")
                if h in ("\r\n", "\n", ""):
                    break
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.log.append((method, path, headers))
            self.handler(conn, method, path, headers)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()


def _redirect(location: bytes) -> Handler:
    def handler(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n")

    return handler


@pytest.fixture
def quick_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "2")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "8")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    started: list[RawServer] = []
    yield started
    for s in started:
        s.stop()


BAD_LOCATIONS = {
    "port-out-of-range": b"http://127.0.0.1:99999/x.pkl",
    "port-not-a-number": b"http://127.0.0.1:80:80/x.pkl",
    "not-utf8": b"http://127.0.0.1:1/\xff\xfe.pkl",
    "broken-ipv6": b"http://[::1/x.pkl",
}


@pytest.mark.parametrize("location", list(BAD_LOCATIONS.values()), ids=list(BAD_LOCATIONS))
def test_client_refuses_a_malformed_redirect_location(location: bytes, servers: list[RawServer], quick_env):
    srv = RawServer(_redirect(location))
    servers.append(srv)
    client = HTTPClient(allow_http=True, retry=RetryPolicy(attempts=2, backoff=0.01))
    with pytest.raises(HTTPFetchError) as exc:
        client.request(
            "GET", f"{srv.url}/x.pkl", auth_headers={"Authorization": f"Basic {BASIC}"}, stream=True
        )
    assert "redirect" in str(exc.value)
    assert BASIC not in str(exc.value)


@pytest.mark.parametrize("command", ["scan", "pull"])
@pytest.mark.parametrize("location", list(BAD_LOCATIONS.values()), ids=list(BAD_LOCATIONS))
def test_cli_malformed_redirect_is_one_error_line_exit_2(
    location: bytes, command: str, servers: list[RawServer], quick_env: Path
):
    srv = RawServer(_redirect(location))
    servers.append(srv)
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{srv.port}/x.pkl"
    dest = quick_env / "dest"
    args = [command, url, "--allow-http"] + (["--to", str(dest)] if command == "pull" else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "redirect" in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    for secret in (PASSWORD, BASIC):
        assert secret not in res.output + res.stderr
    assert not dest.exists()


def test_truncated_headers_cut_by_the_watchdog_are_not_judged(servers: list[RawServer]):
    """Status line and a header arrive, then one byte a second: the deadline fires, not "ignores Range"."""
    stop = threading.Event()

    def slow(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 200
        for i in range(len(head)):
            if stop.wait(0.3 if i > 20 else 0):
                return
            conn.sendall(head[i : i + 1])

    srv = RawServer(slow)
    servers.append(srv)
    net = NetLimits(seconds=2.0, budget_rate=1 << 20, stall_seconds=30.0, min_rate=0.0)
    client = HTTPClient(allow_http=True, net=net, retry=RetryPolicy(attempts=1))
    t0 = time.monotonic()
    try:
        with pytest.raises(HTTPFetchError) as exc:
            client.request("GET", f"{srv.url}/m.pkl", headers={"Range": "bytes=0-99"}, stream=True)
    finally:
        stop.set()
    assert time.monotonic() - t0 < 15
    assert "no complete response" in str(exc.value)


def _registry_with_realm(realm: str) -> Handler:
    def handler(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        challenge = f'Bearer realm="{realm}",service="registry"'
        conn.sendall(
            f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        )

    return handler


@pytest.mark.parametrize(
    "realm",
    ["http://127.0.0.1:99999/token", "http://127.0.0.1:1:2/token", "http://[::1/token", "https:///token"],
)
def test_oci_malformed_token_realm_is_a_clear_error(realm: str, servers: list[RawServer], quick_env: Path):
    srv = RawServer(_registry_with_realm(realm))
    servers.append(srv)
    cfg = quick_env / "docker"
    cfg.mkdir()
    auth = base64.b64encode(f"bob:{DOCKER_PASSWORD}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {f"127.0.0.1:{srv.port}": {"auth": auth}}}))
    os.environ["DOCKER_CONFIG"] = str(cfg)
    try:
        for command in (["scan"], ["pull", "--to", str(quick_env / "dest")]):
            res = CliRunner().invoke(
                app, [command[0], f"oci://127.0.0.1:{srv.port}/acme/model:v1", "--insecure", *command[1:]]
            )
            assert res.exit_code == 2, res.output + res.stderr
            assert "Traceback" not in res.stderr and "token realm" in res.stderr, res.stderr
            assert DOCKER_PASSWORD not in res.output + res.stderr and auth not in res.output + res.stderr
    finally:
        del os.environ["DOCKER_CONFIG"]
    assert not (quick_env / "dest").exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:99999",
        "http://[::1",
        "http://u:hf_endpointsecret0123456789@127.0.0.1:99999",
        "http:///x",
    ],
)
def test_malformed_hf_endpoint_is_a_clear_error(endpoint: str, tmp_path: Path):
    """In a fresh process: huggingface_hub parses HF_ENDPOINT when imported and used to crash there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "MODELWARD_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), HOME=str(tmp_path / "home"))
    cli = Path(sys.executable).with_name("modelward")
    for args in (["scan", "hf://acme/model"], ["pull", "hf://acme/model", "--to", str(tmp_path / "d")]):
        res = subprocess.run([str(cli), *args], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr and "HF_ENDPOINT" in res.stderr, res.stderr
        assert "hf_endpointsecret" not in res.stdout + res.stderr
    assert not (tmp_path / "d").exists()


QUERY_SECRETS = {
    "private_token": "glpat-redteam2privatetoken",
    "client_secret": "redteam2-client-secret-value",
    "X-Amz-Security-Token": "redteam2sessiontokenvalue",
    "hf_token": "redteam2hftokenvalue00",
}


@pytest.mark.parametrize("name", list(QUERY_SECRETS))
def test_credential_named_query_parameters_never_shown(name: str, servers: list[RawServer], quick_env: Path):
    """``?private_token=`` (GitLab), ``client_secret``, ``X-Amz-Security-Token``, ``hf_token`` ... were printed."""

    def fail(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    srv = RawServer(fail)
    servers.append(srv)
    value = QUERY_SECRETS[name]
    url = f"{srv.url}/m.pkl?download=1&{name}={value}"
    for args in (
        ["scan", url, "--allow-http", "-f", "json"],
        ["pull", url, "--allow-http", "--to", str(quick_env / "d")],
    ):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output + res.stderr
        assert value not in res.output + res.stderr
        assert "download=1" in res.stderr  # ordinary parameters stay readable
    assert srv.log and all(value in path for _, path, _ in srv.log)  # the server itself did get it


@pytest.mark.parametrize("sep", ["\\", "\\\\"])
def test_parser_differential_redirect_never_carries_credentials_elsewhere(
    sep: str, servers: list[RawServer], quick_env: Path
):
    """``Location: http://localhost:<cdn>\\@127.0.0.1:<origin>/x``: urllib.parse reads host 127.0.0.1 (the
    credentials' origin, so they were attached) while urllib3 connects to localhost:<cdn>. Before the fix the
    Basic credentials of the origin reached the other port."""

    def cdn_handler(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")

    cdn = RawServer(cdn_handler)
    servers.append(cdn)
    holder: dict[str, int] = {}

    def origin_handler(conn: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
        loc = f"http://localhost:{cdn.port}{sep}@127.0.0.1:{holder['port']}/x.bin"
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n".encode())

    origin_srv = RawServer(origin_handler)
    servers.append(origin_srv)
    holder["port"] = origin_srv.port
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{origin_srv.port}/x.bin"
    for args in (["scan", url, "--allow-http"], ["pull", url, "--allow-http", "--to", str(quick_env / "d")]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output + res.stderr
        assert "ambiguous URL" in res.stderr and "Traceback" not in res.stderr
        assert PASSWORD not in res.output + res.stderr
    assert origin_srv.log and all(h.get("authorization") == f"Basic {BASIC}" for _, _, h in origin_srv.log)
    assert [h for _, _, h in cdn.log if "authorization" in h] == []


def test_ambiguous_url_given_by_the_user_is_refused(servers: list[RawServer]):
    client = HTTPClient(allow_http=True, retry=RetryPolicy(attempts=1))
    with pytest.raises(HTTPFetchError, match="ambiguous URL"):
        client.request(
            "GET", "http://localhost:1\\@127.0.0.1:2/x", auth_headers={"Authorization": f"Basic {BASIC}"}
        )


def test_internationalised_host_is_not_mistaken_for_ambiguous():
    from scanner.io.http_session import HTTPClient as Client

    Client(allow_http=True)._check_unambiguous("https://bücher.example/x", "https://bücher.example/x")
