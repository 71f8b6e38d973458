"""A loopback reverse proxy in front of the registry that can tamper with what it forwards.

The registry itself refuses content whose digest does not match, so tampering
has to happen on the wire: this proxy serves altered manifest bytes (keeping the
registry's Docker-Content-Digest header) or flips a byte in blob bodies,
the way a compromised mirror or a man-in-the-middle would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class _QuietServer(ThreadingHTTPServer):
    """Clients hanging up early are normal in these tests, not errors to print."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver signature
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class TamperProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # http://127.0.0.1:PORT
        self.tamper_manifests = False
        self.tamper_blobs: set[str] = set()  # digests whose bodies get one byte flipped
        self.overrides: dict[
            str, bytes
        ] = {}  # request path -> manifest bytes served instead (a hostile registry)
        self.bearer: tuple[str, str, str] | None = None  # (user, password, token): demand the token flow
        self.token_requests: list[str] = []
        # "manifest" | "blob" | "token" | "other" -> statuses answered to the next requests of that kind
        self.statuses: dict[str, list[int]] = {}
        self.status_headers: dict[str, str] = {}
        self.redirect_blobs_to: str | None = None  # another origin ("http://127.0.0.1:PORT") serving blobs
        self.log: list[dict] = []  # every request: kind, method, path, status, time, headers
        self.trickle: dict[str, float] = {}  # kind -> body bytes per second (a registry that crawls)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _override(self, method: str) -> bool:
                body = proxy.overrides.get(self.path)
                if body is None:
                    return False
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)
                return True

            def _kind(self) -> str:
                if self.path.startswith("/token"):
                    return "token"
                if "/manifests/" in self.path:
                    return "manifest"
                return "blob" if "/blobs/" in self.path else "other"

            def _log(self, status: int) -> None:
                with proxy._lock:
                    proxy.log.append(
                        {
                            "kind": self._kind(),
                            "method": self.command,
                            "path": self.path,
                            "status": status,
                            "t": time.monotonic(),
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )

            def _fault(self) -> bool:
                with proxy._lock:
                    queue = proxy.statuses.get(self._kind())
                    status = queue.pop(0) if queue else None
                if status is None:
                    return False
                self._reply(
                    status,
                    b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}',
                    {"Content-Type": "application/json", **proxy.status_headers},
                )
                return True

            def _redirect_blob(self) -> bool:
                if proxy.redirect_blobs_to is None or self._kind() != "blob":
                    return False
                self._reply(307, b"", {"Location": proxy.redirect_blobs_to + self.path})
                return True

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self._log(status)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _bearer_gate(self) -> bool:
                """Token auth as Docker Hub does it: 401 + challenge, a token endpoint taking Basic credentials."""
                if proxy.bearer is None:
                    return False
                user, password, token = proxy.bearer
                if self.path.startswith("/token"):
                    proxy.token_requests.append(self.path)
                    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                    if self.headers.get("Authorization") != want:
                        self._reply(
                            401, b'{"details":"bad credentials"}', {"Content-Type": "application/json"}
                        )
                    else:
                        body = json.dumps({"token": token, "expires_in": 300}).encode()
                        self._reply(200, body, {"Content-Type": "application/json"})
                    return True
                if self.headers.get("Authorization") != f"Bearer {token}":
                    realm = f"http://{proxy.host}/token"
                    challenge = f'Bearer realm="{realm}",service="test-registry",scope="repository:x:pull"'
                    self._reply(
                        401,
                        b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                        {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                    )
                    return True
                return False

            def _forward(self, method: str) -> None:
                if self._fault() or self._bearer_gate() or self._redirect_blob() or self._override(method):
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "authorization")
                }
                r = requests.request(
                    method, proxy.upstream + self.path, headers=headers, allow_redirects=False, timeout=30
                )
                body = r.content if method != "HEAD" else b""
                if r.status_code == 200 and "/manifests/" in self.path and proxy.tamper_manifests:
                    body = body.rstrip(b"}") + b',"x-injected":1}' if body else body
                if r.status_code in (200, 206) and any(d in self.path for d in proxy.tamper_blobs) and body:
                    body = bytes([body[0] ^ 0x01]) + body[1:]
                self._log(r.status_code)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                length = r.headers.get("Content-Length", "0") if method == "HEAD" else str(len(body))
                self.send_header("Content-Length", length)
                self.end_headers()
                if method == "HEAD":
                    return
                rate = proxy.trickle.get(self._kind())
                if rate is None:
                    self.wfile.write(body)
                    return
                for i in range(len(body)):
                    if proxy.stopping.wait(1.0 / rate):
                        break
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._forward("HEAD")

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TamperProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
