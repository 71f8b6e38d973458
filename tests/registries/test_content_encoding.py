"""A server that content-encodes a body anyway is refused, never decoded: digests bind to the stored bytes.

Every request asks for ``Accept-Encoding: identity``. A gzip/deflate/br body would be the wrong bytes twice
over: a byte range of the encoded form is not a range of the file, and a scanner that judged the encoded bytes
would pass a file a decoding client then loads differently; decoding instead lets a few KB inflate to
gigabytes. The servers here are real (``http.server`` on 127.0.0.1, and the suite's Hub server).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli
import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, HTTPFetchError, body_chunks
from scanner.io.reader import ReaderError
from scanner.sources.docker_auth import read_bounded

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer

pytestmark = pytest.mark.slow
WEIGHTS = safetensors_bytes({"w": 5000})
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def _bomb() -> bytes:
    """1 GiB of zeros as ~1 MB of gzip: 64 concatenated members (a valid gzip stream) of 16 MiB each."""
    member = gzip.compress(b"\0" * (16 << 20), compresslevel=9)
    return member * 64


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - a client hanging up is normal
        pass


class EncodingSite:
    """Serves WEIGHTS at /<mode>/model.safetensors with Range; ``mode`` picks how the body is encoded."""

    def __init__(self) -> None:
        self.accept_encodings: list[str | None] = []
        self.bomb = _bomb()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                site.accept_encodings.append(self.headers.get("Accept-Encoding"))
                mode = self.path.strip("/").split("/")[0]
                data, status, hdrs = WEIGHTS, 200, {"Accept-Ranges": "bytes", "ETag": '"w1"'}
                m = _RANGE.match(self.headers.get("Range", ""))
                if m:
                    a = int(m.group(1))
                    b = min(len(WEIGHTS) - 1, int(m.group(2))) if m.group(2) else len(WEIGHTS) - 1
                    data, status = WEIGHTS[a : b + 1], 206
                    hdrs["Content-Range"] = f"bytes {a}-{b}/{len(WEIGHTS)}"
                if mode == "missing":
                    status, data = 404, gzip.compress(b"not here " * 100)
                    hdrs = {"Content-Encoding": "gzip"}
                elif mode == "bomb":
                    data, hdrs["Content-Encoding"] = site.bomb, "gzip"
                elif mode in ("gzip", "x-gzip"):
                    data, hdrs["Content-Encoding"] = gzip.compress(data), mode
                elif mode == "deflate":
                    data, hdrs["Content-Encoding"] = zlib.compress(data), "deflate"
                elif mode == "br":
                    data, hdrs["Content-Encoding"] = brotli.compress(data), "br"
                elif mode == "stacked":
                    data, hdrs["Content-Encoding"] = gzip.compress(data), "identity, gzip"
                elif mode == "identity":
                    hdrs["Content-Encoding"] = "identity"
                elif mode == "te-gzip":
                    data, hdrs["Transfer-Encoding"] = gzip.compress(data), "gzip"
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                if "Transfer-Encoding" not in hdrs:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(data)
                    except OSError:
                        pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def enc_site() -> Iterator[EncodingSite]:
    s = EncodingSite()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "10")


def _reader(url: str, **kw: object) -> HTTPRangeReader:
    return HTTPRangeReader(url, name="model.safetensors", client=HTTPClient(allow_http=True), **kw)  # type: ignore[arg-type]


def test_every_request_asks_for_identity(enc_site: EncodingSite, quick: None) -> None:
    enc_site.accept_encodings.clear()
    r = _reader(f"{enc_site.url}/plain/model.safetensors")
    assert r.read(0, 8) == WEIGHTS[:8]
    assert enc_site.accept_encodings and set(enc_site.accept_encodings) == {"identity"}


@pytest.mark.parametrize("mode", ["gzip", "x-gzip", "deflate", "br", "stacked", "te-gzip"])
def test_encoded_range_answer_is_refused(enc_site: EncodingSite, quick: None, mode: str) -> None:
    with pytest.raises(ReaderError, match="encoded body") as ei:
        _reader(f"{enc_site.url}/{mode}/model.safetensors")
    assert "Encoding:" in str(ei.value) and "refused" in str(ei.value)


@pytest.mark.parametrize("mode", ["gzip", "br"])
def test_encoded_body_of_a_known_size_file_is_a_fault(enc_site: EncodingSite, quick: None, mode: str) -> None:
    r = _reader(f"{enc_site.url}/{mode}/model.safetensors", size=len(WEIGHTS))
    with pytest.raises(ReaderError, match="encoded body"):
        b"".join(r.stream())
    assert r.faults.errors and r.sha256() is None and not r.verified


def test_gzip_bomb_never_inflates(enc_site: EncodingSite, quick: None) -> None:
    tracemalloc.start()
    try:
        r = _reader(f"{enc_site.url}/bomb/model.safetensors", size=len(WEIGHTS))
        t0 = time.monotonic()
        with pytest.raises(ReaderError, match="Content-Encoding: gzip"):
            r.read(0, 4096)
        with pytest.raises(ReaderError):
            b"".join(r.stream())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # 1 GiB if inflated; the refused body is not even read
    assert r.bytes_read == 0
    assert time.monotonic() - t0 < 5


def test_identity_named_explicitly_is_plain_bytes_and_digest_binds_to_them(
    enc_site: EncodingSite, quick: None
) -> None:
    digest = hashlib.sha256(WEIGHTS).hexdigest()
    r = _reader(f"{enc_site.url}/identity/model.safetensors", expected_sha256=digest)
    assert b"".join(r.stream()) == WEIGHTS
    assert r.verified == {"sha256": digest} and not r.integrity_problems


@pytest.mark.parametrize("cmd", ["scan", "pull"])
@pytest.mark.parametrize("mode", ["gzip", "deflate", "br"])
def test_cli_on_an_encoding_server_is_exit_2(
    enc_site: EncodingSite, quick: None, tmp_path: Path, cmd: str, mode: str
) -> None:
    url = f"{enc_site.url}/{mode}/model.safetensors"
    args = [cmd, url, "--allow-http"] + (["--to", str(tmp_path / "dest")] if cmd == "pull" else [])
    res = CliRunner().invoke(app, args)
    err = " ".join(res.stderr.split())
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "error:" in err and f"Content-Encoding: {mode}" in err
    assert not (tmp_path / "dest").exists()


def test_shared_client_refuses_encoded_success_but_reads_error_bodies_raw(
    enc_site: EncodingSite, quick: None
) -> None:
    client = HTTPClient(allow_http=True)
    # the OCI manifest/token readers go through client.request + read_bounded
    with pytest.raises(HTTPFetchError, match="Content-Encoding: gzip") as ei:
        client.request("GET", f"{enc_site.url}/gzip/manifest", stream=True)
    assert ei.value.status == 200
    resp = client.request("GET", f"{enc_site.url}/missing/x", stream=True)
    with resp:
        assert resp.status_code == 404
        body = read_bounded(resp, 1 << 20, "error body")
    assert body[:2] == b"\x1f\x8b"  # the gzip bytes as sent: not inflated
    raw = client.session.get(f"{enc_site.url}/gzip/x", stream=True)  # no budget: the fallback path
    with raw:
        got = b"".join(body_chunks(raw))
    assert got[:2] == b"\x1f\x8b" and gzip.decompress(got) == WEIGHTS


@pytest.mark.parametrize("kind", ["resolve", "cdn"])
def test_hub_file_served_encoded_is_exit_2(hub: HubServer, quick: None, kind: str) -> None:
    hub.add_repo(
        "acme/enc",
        {
            "config.json": b'{"model_type": "tiny", "pad": "' + b"x" * 3000 + b'"}',
            "model.safetensors": WEIGHTS,
        },
    )
    hub.faults.content_encoding[kind] = "gzip"
    res = CliRunner().invoke(app, ["scan", "hf://acme/enc"])
    err = " ".join(res.stderr.split())
    assert res.exit_code == 2, res.output
    assert "error:" in err and "Content-Encoding: gzip" in err
    assert "Traceback" not in res.output
