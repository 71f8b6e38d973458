"""A server answering different bytes to different requests for one file (same ETag, same size) is caught.

A scan of an ``https://`` file opens it once per inspector and check, and each reader fetches ranges or whole
passes of its own: a server can keep its ETag and answer one request with other bytes. Before, the report's
sha256 was that of whichever whole pass came last, so an ALLOW could name the digest of bytes no inspector
judged. Now every reader of the file shares what was seen (whole-pass sha256, block digests) and any
disagreement is ``REGISTRY-CONTENT-CHANGED``. Real HTTP server on loopback.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_reader import ContentWitness, HTTPRangeReader
from scanner.io.http_session import HTTPClient, RetryPolicy
from scanner.io.reader import ReaderError

from .raw_server import RawServer, ranged

GOOD = json.dumps({"a": ["x" * 100] * 400}).encode()
OTHER = json.dumps({"b": ["y" * 100] * 400}).encode()
assert len(GOOD) == len(OTHER)


def _server(odd_one: int) -> RawServer:
    """Answers request number ``odd_one`` (from 0) with OTHER, every other one with GOOD; one ETag for all."""
    count = [0]

    def handle(conn, method, path, headers):  # type: ignore[no-untyped-def]
        n = count[0]
        count[0] += 1
        ranged(conn, headers, OTHER if n == odd_one else GOOD, [("ETag", '"same"')])

    return RawServer(handle)


@pytest.mark.parametrize("odd_one", range(7))
def test_one_different_answer_never_binds_an_allow_to_other_bytes(
    monkeypatch: pytest.MonkeyPatch, odd_one: int
) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    srv = _server(odd_one)
    try:
        res = CliRunner().invoke(app, ["scan", f"{srv.url}/config.json", "--allow-http", "-f", "json"])
        requests = len(srv.log)
    finally:
        srv.close()
    if odd_one >= requests:
        pytest.skip(f"the scan made {requests} requests")
    # before: exit 0 (ALLOW) for every odd_one, with the sha256 of OTHER when it was the last whole pass
    assert res.exit_code != 0, res.stdout[:3000]
    assert "REGISTRY-CONTENT-CHANGED" in res.stdout or "changed on the server" in res.output
    assert hashlib.sha256(OTHER).hexdigest() not in res.stdout


def _reader(srv: RawServer, witness: ContentWitness) -> HTTPRangeReader:
    client = HTTPClient(allow_http=True, retry=RetryPolicy(attempts=2, backoff=0.001), sleep=lambda s: None)
    return HTTPRangeReader(f"{srv.url}/c.json", name="c.json", client=client, size=len(GOOD), witness=witness)


def test_a_block_differs_between_two_readers_of_one_file() -> None:
    srv = _server(1)
    try:
        w = ContentWitness()
        assert _reader(srv, w).read(0, 10) == GOOD[:10]  # request 0: GOOD, block 0 recorded
        with pytest.raises(ReaderError, match="differ between two requests"):
            _reader(srv, w).read(0, 10)  # request 1: OTHER
    finally:
        srv.close()


def test_a_stream_must_agree_with_blocks_already_read() -> None:
    srv = _server(1)
    try:
        r = _reader(srv, ContentWitness())
        r.read(0, 10)
        with pytest.raises(ReaderError, match="changed on the server"):
            b"".join(r.stream())  # request 1: OTHER, a whole pass over the cached block 0
    finally:
        srv.close()


def test_a_consistent_server_is_read_once_per_small_file() -> None:
    srv = _server(-1)
    try:
        r = _reader(srv, ContentWitness())
        assert r.read(0, 10) == GOOD[:10]
        assert b"".join(r.stream()) == GOOD
        assert b"".join(r.stream()) == GOOD  # kept from the first stream: no third request
        assert r.read(20_000, 10) == GOOD[20_000:20_010]
        assert len(srv.log) == 2 and not r.integrity_problems
    finally:
        srv.close()
