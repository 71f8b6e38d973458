"""A tiny programmable HTTP/1.1 server on 127.0.0.1 for reliability probes: every request's headers are logged.

``handler(conn, method, path, headers)`` writes the whole answer itself (``answer``/``ranged`` help), so a test
can send any status, header or broken body a real server might.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable

Handler = Callable[[socket.socket, str, str, dict[str, str]], object]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def headers_seen(self, name: str) -> list[str]:
        return [h[name] for _m, _p, h in self.log if name in h]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.log.append((method, path, headers))
                if self.handler(conn, method, path, headers) is False:
                    return
        except (OSError, ValueError):
            return
        finally:
            conn.close()


def answer(
    conn: socket.socket, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> None:
    hs = list(headers)
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    conn.sendall(head.encode("latin-1") + body)


def ranged(
    conn: socket.socket, headers: dict[str, str], data: bytes, extra: Iterable[tuple[str, str]] = ()
) -> None:
    """Answer a GET for ``data`` honouring a single ``Range: bytes=a-b``."""
    r = headers.get("range", "")
    if r.startswith("bytes="):
        a_s, _, b_s = r[6:].partition("-")
        a, b = int(a_s), min(int(b_s or len(data) - 1), len(data) - 1)
        answer(conn, 206, [("Content-Range", f"bytes {a}-{b}/{len(data)}"), *extra], data[a : b + 1])
    else:
        answer(conn, 200, list(extra), data)
