"""Cookies are credentials too: one origin's cookie never reaches another origin (another port is another origin).

A cookie jar matches on host name only (RFC 6265 ignores ports and, without ``Secure``, schemes), so a session
cookie a registry sets would ride along to the CDN or attacker port it redirects to. modelward keeps no cookie
state at all: credentials are explicit and scoped to one origin (``auth_headers``).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_session import HTTPClient
from scanner.pipeline import ScanOptions, scan_targets

from .models import safetensors_bytes
from .raw_server import RawServer, answer, ranged

DATA = safetensors_bytes({"w": 1000})
COOKIE = "session=c00kie-secret-4711"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "4")


def _cdn() -> RawServer:
    return RawServer(lambda c, m, p, h: ranged(c, h, DATA))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_cookie_set_with_a_redirect_never_reaches_the_other_port(quick: None, status: int) -> None:
    cdn = _cdn()
    origin = RawServer(
        lambda c, m, p, h: answer(
            c, status, [("Location", f"{cdn.url}/m.safetensors"), ("Set-Cookie", COOKIE)]
        )
    )
    report = scan_targets([f"{origin.url}/m.safetensors"], ScanOptions(source_options={"allow_http": True}))
    assert not report.errors and report.files[0].format == "safetensors"
    assert cdn.log and cdn.headers_seen("cookie") == []


def test_cookie_from_the_cdn_never_reaches_the_origin_when_the_chain_returns(quick: None) -> None:
    """A -> B (sets a cookie) -> A: the cookie B gave must not come back to A, nor A's to B."""
    box: dict[str, RawServer] = {}

    def a(c, m, p, h):  # type: ignore[no-untyped-def]
        if p == "/start":
            answer(c, 302, [("Location", f"{box['b'].url}/hop"), ("Set-Cookie", "a=" + COOKIE)])
        else:
            ranged(c, h, DATA)

    box["a"] = RawServer(a)
    box["b"] = RawServer(
        lambda c, m, p, h: answer(
            c, 307, [("Location", f"{box['a'].url}/m.safetensors"), ("Set-Cookie", "b=" + COOKIE)]
        )
    )
    report = scan_targets([f"{box['a'].url}/start"], ScanOptions(source_options={"allow_http": True}))
    assert not report.errors
    assert box["a"].headers_seen("cookie") == [] and box["b"].headers_seen("cookie") == []


def test_cookie_set_on_a_range_answer_is_not_replayed_anywhere(quick: None) -> None:
    """Set-Cookie on ordinary 206 answers: later reads (same or other origin) carry no cookie."""
    cdn = _cdn()
    origin = RawServer(
        lambda c, m, p, h: answer(
            c, 302, [("Location", f"{cdn.url}/m.safetensors"), ("Set-Cookie", COOKIE + "; Domain=127.0.0.1")]
        )
    )
    client = HTTPClient(allow_http=True)
    for _ in range(3):
        client.request("GET", f"{origin.url}/m.safetensors", headers={"Range": "bytes=0-9"}).close()
        client.request("GET", f"{cdn.url}/m.safetensors", headers={"Range": "bytes=0-9"}).close()
    assert len(cdn.log) == 6 and len(origin.log) == 3
    assert cdn.headers_seen("cookie") == [] and origin.headers_seen("cookie") == []
    assert len(client.session.cookies) == 0


def test_cli_scan_and_pull_keep_a_cookie_on_no_other_origin(quick: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cdn = _cdn()
    origin = RawServer(
        lambda c, m, p, h: answer(c, 302, [("Location", f"{cdn.url}/m.safetensors"), ("Set-Cookie", COOKIE)])
    )
    url = f"http://alice:pw-1234@127.0.0.1:{origin.port}/m.safetensors"
    res = CliRunner().invoke(app, ["scan", "--allow-http", url, "-f", "json"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["pull", "--allow-http", url, "--to", str(tmp_path / "dl")])
    assert cdn.log and cdn.headers_seen("cookie") == [] and cdn.headers_seen("authorization") == []
    assert COOKIE.split("=")[1] not in res.output
