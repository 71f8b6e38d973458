"""Fixtures that start real servers on 127.0.0.1 (free ports) and point every client at them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers.hf_hub_server import HubServer

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
HF_ENV_TO_CLEAR = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_TOKEN_PATH",
    "CI",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private HF_HOME, no token, no offline mode, quick retries: nothing can reach a public host."""
    for var in HF_ENV_TO_CLEAR:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    return home


@pytest.fixture
def hub(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    srv = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", srv.endpoint)
    try:
        yield srv
    finally:
        srv.stop()


class Nginx:
    def __init__(self, root: Path, www: Path) -> None:
        self.root, self.www = root, www
        self.port = free_port()
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "htpasswd").write_text("alice:{PLAIN}s3cretpass\n")
        # As root, nginx workers switch to 'nobody', who cannot read pytest's private temp dirs.
        user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        conf = f"""{user}
daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{ access_log {root}/access.log;
  client_body_temp_path {root}/tmp/body; proxy_temp_path {root}/tmp/proxy; fastcgi_temp_path {root}/tmp/fastcgi;
  uwsgi_temp_path {root}/tmp/uwsgi; scgi_temp_path {root}/tmp/scgi;
  types {{ application/octet-stream bin; }}
  server {{ listen 127.0.0.1:{self.port}; root {www};
    location /redirect/ {{ rewrite ^/redirect/(.*)$ /$1 redirect; }}
    location /private/ {{ auth_basic "test"; auth_basic_user_file {root}/htpasswd; }}
  }} }}
"""
        (root / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (www / "ready.txt").write_text("ok")
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/ready.txt", timeout=1).read()  # noqa: S310 - loopback
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.skip("nginx did not start: " + (root / "error.log").read_text()[-300:])
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx); CI installs it")
    root = tmp_path_factory.mktemp("nginx")
    www = root / "www"
    (www / "private").mkdir(parents=True)
    srv = Nginx(root, www)
    try:
        yield srv
    finally:
        srv.stop()
