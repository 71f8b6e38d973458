"""A file rewritten on a web server between two reads of one scan is refused, whatever validators it sends.

Before, only an ETag that changed was noticed: a server sending ``Last-Modified`` alone (many plain web servers
and CDNs), or one dropping its ETag on later answers, had its old and new bytes judged as one file; and a
later open of an ``https://`` file (a repository check re-reading it) trusted whatever ETag it got first.
Each case runs against a real HTTP server on loopback (``RawServer``) and through the CLI.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, RetryPolicy
from scanner.io.reader import ReaderError
from scanner.sources.url import URLSource

from .raw_server import RawServer, ranged

OLD = pickle.dumps(bytes(60_000), protocol=4)  # benign either way: only the binding is probed
NEW = pickle.dumps(b"\x01" * 60_000, protocol=4)
assert len(OLD) == len(NEW)
MON = "Mon, 01 Jan 2024 00:00:00 GMT"
TUE = "Tue, 02 Jan 2024 00:00:00 GMT"

# (headers of the first answer, headers of later answers)
Validators = tuple[list[tuple[str, str]], list[tuple[str, str]]]


def _server(validators: Validators, rewrite: bool = True) -> RawServer:
    """Serves OLD to the first GET, then NEW (when ``rewrite``), with the given validators."""
    seen = []

    def handle(conn, method, path, headers):  # type: ignore[no-untyped-def]
        first = not seen
        seen.append(path)
        data = OLD if first or not rewrite else NEW
        ranged(conn, headers, data, validators[0] if first else validators[1])

    return RawServer(handle)


def _client() -> HTTPClient:
    return HTTPClient(allow_http=True, retry=RetryPolicy(attempts=2, backoff=0.001), sleep=lambda s: None)


def _read_twice(srv: RawServer) -> HTTPRangeReader:
    r = HTTPRangeReader(f"{srv.url}/model.pkl", name="model.pkl", client=_client(), size=len(OLD))
    r.read(0, 100)  # one block
    r.read(50_000, 100)  # another, far enough not to be read ahead
    return r


CHANGED: dict[str, Validators] = {
    "last-modified-only": ([("Last-Modified", MON)], [("Last-Modified", TUE)]),
    "etag-dropped": ([("ETag", '"v1"'), ("Last-Modified", MON)], [("Last-Modified", MON)]),
    "etag-dropped-no-date": ([("ETag", '"v1"')], []),
    "etag-changed": ([("ETag", '"v1"')], [("ETag", '"v2"')]),
}


@pytest.mark.parametrize("validators", CHANGED.values(), ids=CHANGED.keys())
def test_rewritten_file_is_refused_not_mixed(validators: Validators) -> None:
    srv = _server(validators)
    try:
        with pytest.raises(ReaderError, match="changed on the server"):
            _read_twice(srv)
    finally:
        srv.close()


SAME: dict[str, Validators] = {
    "same-last-modified": ([("Last-Modified", MON)], [("Last-Modified", MON)]),
    "weakened-etag-other-edge-date": (
        [("ETag", '"v1"'), ("Last-Modified", MON)],
        [("ETag", 'W/"v1"'), ("Last-Modified", TUE)],
    ),
    "no-validators": ([], []),
}


@pytest.mark.parametrize("validators", SAME.values(), ids=SAME.keys())
def test_unchanged_file_reads_normally(validators: Validators) -> None:
    srv = _server(validators, rewrite=False)
    try:
        r = _read_twice(srv)
        assert r.read(59_000, 100) == OLD[59_000:59_100]
        assert not r.integrity_problems
    finally:
        srv.close()


def _reopened(make: Callable[[], RawServer]) -> list[str]:
    srv = make()
    try:
        snap = URLSource(allow_http=True, client=_client()).resolve(f"{srv.url}/model.pkl")
        art = snap.artifacts[0]
        with art.open() as first:  # the probe: OLD's first block and validators
            first.read(0, 100)
        with pytest.raises(ReaderError, match="changed on the server") as exc:
            with art.open() as again:  # a repository check opening the file again: NEW, consistently labelled
                again.read(30_000, 100)
        return [str(exc.value)]
    finally:
        srv.close()


@pytest.mark.parametrize(
    "validators",
    [([("ETag", '"v1"')], [("ETag", '"v2"')]), ([("Last-Modified", MON)], [("Last-Modified", TUE)])],
    ids=["etag", "last-modified"],
)
def test_a_later_open_must_see_what_the_probe_saw(validators: Validators) -> None:
    assert _reopened(lambda: _server(validators))


@pytest.mark.slow
@pytest.mark.parametrize(
    "validators", [CHANGED["last-modified-only"], CHANGED["etag-dropped"]], ids=["lm", "etag-dropped"]
)
def test_cli_scan_of_a_rewritten_url_is_not_allowed(
    monkeypatch: pytest.MonkeyPatch, validators: Validators
) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    srv = _server(validators)
    try:
        res = CliRunner().invoke(app, ["scan", f"{srv.url}/model.pkl", "--allow-http", "-f", "json"])
    finally:
        srv.close()
    assert res.exit_code in (1, 2), res.output  # before: exit 0, ALLOW of two contents mixed
    assert "REGISTRY-CONTENT-CHANGED" in res.stdout or "changed on the server" in res.output
