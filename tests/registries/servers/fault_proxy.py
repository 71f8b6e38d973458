"""A reverse proxy on 127.0.0.1 in front of a real server (mlflow server, moto_server) that misbehaves on cue.

Every request is forwarded to ``upstream`` unchanged unless a fault matches its method and path (a regular
expression on the path with its query). Faults:

``trickle``   status and headers at once (no length), then the body one byte every ``interval`` seconds
``silent``    the request is read and never answered (until the proxy stops)
``gzip``      the upstream's bytes, gzip-compressed, sent with ``Content-Encoding: gzip`` (Range ignored)
``oversize``  ``size`` bytes of ``x`` sent as the whole file (200, Range ignored, close-delimited, no length)
``redirect``  302 to the same path on ``location`` (another origin)

Each request is logged (method, path, headers) so tests can see which origin received which credentials and
what encodings were asked for. Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import gzip
import http.client
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    kind: str
    path: str  # regular expression searched in the request path (with query)
    method: str | None = None
    interval: float = 1.0
    size: int = 0
    location: str = ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - a client hanging up is normal
        pass


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        up = urlsplit(upstream)
        self.up_host, self.up_port = up.hostname or "127.0.0.1", up.port or 80
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                proxy.log.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                fault = next(
                    (
                        f
                        for f in proxy.faults
                        if re.search(f.path, self.path) and f.method in (None, self.command)
                    ),
                    None,
                )
                try:
                    if fault is None:
                        self._forward(body)
                    else:
                        getattr(self, "_" + fault.kind)(fault, body)
                except OSError:
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

            def _upstream(self, body: bytes, drop: tuple[str, ...] = ()) -> http.client.HTTPResponse:
                conn = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() not in drop
                }
                headers["Host"] = f"{proxy.up_host}:{proxy.up_port}"
                conn.request(self.command, self.path, body=body or None, headers=headers)
                return conn.getresponse()

            def _forward(self, body: bytes) -> None:
                resp = self._upstream(body)
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _trickle(self, fault: Fault, body: bytes) -> None:
                self.send_response(200)  # no length: the body ends when the connection does
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.flush()
                for _ in range(1 << 20):
                    if proxy.release.wait(fault.interval):
                        break
                    self.wfile.write(b"x")
                    self.wfile.flush()
                self.close_connection = True

            def _silent(self, fault: Fault, body: bytes) -> None:
                proxy.release.wait(120)
                self.close_connection = True

            def _gzip(self, fault: Fault, body: bytes) -> None:
                resp = self._upstream(body, drop=("range", "accept-encoding"))
                data = gzip.compress(resp.read())
                self.send_response(resp.status)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _oversize(self, fault: Fault, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if self.command != "HEAD":
                    block = b"x" * (1 << 20)
                    left = fault.size
                    while left > 0 and not proxy.release.is_set():
                        self.wfile.write(block[: min(left, len(block))])
                        left -= len(block)
                self.close_connection = True

            def _redirect(self, fault: Fault, body: bytes) -> None:
                self.send_response(302)
                self.send_header("Location", fault.location.rstrip("/") + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, kind: str, path: str, **kw: object) -> FaultProxy:
        self.faults.append(Fault(kind, path, **kw))  # type: ignore[arg-type]
        return self

    def headers_seen(self, name: str) -> list[str]:
        return [h[name.lower()] for _m, _p, h in self.log if name.lower() in h]

    def stop(self) -> None:
        self.release.set()
        time.sleep(0.05)
        self.server.shutdown()
        self.server.server_close()
