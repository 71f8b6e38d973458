"""A declared source that carries credentials (URL userinfo, token query values) never reaches the lockfile,
which is committed; `check` still matches the declaration to its pin."""

from __future__ import annotations

import functools
import http.server
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.gate.lockfile import locked_source

SECRET = "s3cret-pw"
TOKEN = "tok-123456"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the server's access log is not our output
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "m.json").write_text('{"labels": 2}')
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_lock_records_no_credentials_and_check_still_matches(
    cli, server: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    proj = tmp_path / "proj"
    proj.mkdir()
    source = f"http://ci:{SECRET}@{server}/m.json?token={TOKEN}&v=1"
    (proj / "modelward.toml").write_text(textwrap.dedent(f'[models]\nm = "{source}"\n'))
    res = cli("lock", "--project", str(proj), "--allow-http")
    assert res.exit_code == 0, res.output
    text = (proj / "modelward.lock").read_text()
    assert SECRET not in text and TOKEN not in text
    assert "http://***@" in text and "v=1" in text
    res = cli("check", "--project", str(proj), "--allow-http")
    assert res.exit_code == 0, res.output  # the declaration still matches its (redacted) pin
    assert SECRET not in res.output and TOKEN not in res.output
    res = cli("lock", "--project", str(proj), "--allow-http")  # unchanged declaration: the pin is kept
    assert res.exit_code == 0 and (proj / "modelward.lock").read_text() == text


@pytest.mark.parametrize(
    "source",
    [
        "hf://org/model@main",
        "oci://registry.example/repo:tag",
        "models/clf",
        "file://models/tok",
        "https://h/x.bin",
    ],
)
def test_sources_without_credentials_are_locked_byte_for_byte(source: str) -> None:
    assert locked_source(source) == source
