"""Bounded network time: a per-file budget, a stall detector and a watchdog for trickling servers.

A per-read timeout never fires against a server that sends one byte a second,
so every remote file (and every API call) gets a ``Budget``: ``network_seconds``
of wall-clock, extended by one second per ``network_budget_rate`` bytes received
(a 50 GB pull on a good link is not cut short). Body reads return as soon as any
bytes arrive (``read1``) and feed a stall detector: less than
``network_min_rate`` bytes/s over ``network_stall_seconds`` of waiting ends the
transfer. The socket read timeout is capped at the stall window, so silence is
caught too. Headers are read inside the HTTP library, where none of this can
look, so a watchdog shuts the socket down when a response outlives its budget
(or its headers take longer than the read timeout). Connection set-up, where no socket exists yet to shut
(name resolution, connecting to each address), is bounded by the same deadline in ``resolve``.

Defaults live in ``scanner.limits.Limits``; ``MODELWARD_NETWORK_SECONDS``,
``MODELWARD_NETWORK_STALL_SECONDS``, ``MODELWARD_NETWORK_MIN_RATE`` and
``MODELWARD_NETWORK_BUDGET_RATE`` override them (tests use a few seconds).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.connection import allowed_gai_family

from ..limits import DEFAULT_LIMITS, Limits
from .resolve import connect_within
from .retry import env_number


class NetworkDeadline(Exception):
    """A transfer stalled or ran out of its wall-clock budget; the message says which and names what."""


@dataclass(frozen=True)
class NetLimits:
    seconds: float
    budget_rate: float
    stall_seconds: float
    min_rate: float

    @classmethod
    def from_env(cls, limits: Limits = DEFAULT_LIMITS) -> NetLimits:
        return cls(
            seconds=max(0.1, env_number("MODELWARD_NETWORK_SECONDS", limits.network_seconds)),
            budget_rate=max(1.0, env_number("MODELWARD_NETWORK_BUDGET_RATE", limits.network_budget_rate)),
            stall_seconds=max(
                0.1, env_number("MODELWARD_NETWORK_STALL_SECONDS", limits.network_stall_seconds)
            ),
            min_rate=max(0.0, env_number("MODELWARD_NETWORK_MIN_RATE", limits.network_min_rate)),
        )


class Budget:
    """Network time one file (or one API call) may use, across requests, retries and pauses."""

    def __init__(self, what: str, net: NetLimits) -> None:
        self.what = what  # already redacted: it goes into messages
        self.net = net
        self.start = time.monotonic()
        self.received = 0

    def deadline(self) -> float:
        return self.start + self.net.seconds + self.received / self.net.budget_rate

    def remaining(self) -> float:
        return self.deadline() - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.deadline():
            raise NetworkDeadline(
                f"{self.what}: network time budget exhausted after "
                f"{time.monotonic() - self.start:.1f} s ({self.received} bytes received; "
                f"limit network_seconds={self.net.seconds:g})"
            )

    def body(self, resp: object, chunk: int) -> Iterator[bytes]:
        """The response body as it arrives, ending the transfer when it stalls or runs out of budget."""
        raw = resp.raw  # type: ignore[attr-defined]
        read1 = getattr(raw, "read1", None)
        if read1 is not None and isinstance(raw, BaseHTTPResponse):

            def read(n: int) -> bytes:  # the bytes as sent: never decoded (a gzip bomb must not inflate)
                return read1(n, decode_content=False)  # type: ignore[no-any-return]

        else:
            read = read1 or raw.read
        waited = 0.0
        got = 0
        while True:
            self.check()
            t0 = time.monotonic()
            piece = read(chunk)
            waited += time.monotonic() - t0
            if not piece:
                return
            got += len(piece)
            self.received += len(piece)
            if waited >= self.net.stall_seconds:
                if got < self.net.min_rate * waited:
                    raise NetworkDeadline(
                        f"{self.what}: transfer stalled ({got} bytes in {waited:.1f} s, "
                        f"below the minimum of {self.net.min_rate:g} bytes/s)"
                    )
                waited, got = 0.0, 0
            yield piece


# ---- watchdog -----------------------------------------------------------------------------------------

_armed = threading.local()


class Watch:
    """Shuts down the sockets of one request once ``deadline_fn()`` has passed; re-checks before firing."""

    def __init__(self, deadline_fn: Callable[[], float]) -> None:
        self.deadline_fn = deadline_fn
        self.fired = False
        self._socks: list[socket.socket] = []
        self._owned: list[socket.socket] = []  # duplicates made by attach_dup, closed on disarm
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._done = False
        self._schedule()

    def _schedule(self) -> None:
        delay = max(0.0, self.deadline_fn() - time.monotonic())
        t = threading.Timer(delay + 0.05, self._fire)
        t.daemon = True
        with self._lock:
            if self._done:
                return
            self._timer = t
        t.start()

    def _fire(self) -> None:
        if self._done:
            return
        if time.monotonic() < self.deadline_fn():  # the budget grew with the bytes received: wait on
            self._schedule()
            return
        with self._lock:
            if self._done:
                return
            self.fired = True
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def attach(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._socks.append(sock)

    def attach_dup(self, sock: socket.socket) -> None:
        """Watch ``sock`` through a duplicate descriptor this watch owns (closed when it is disarmed)."""
        try:
            dup = sock.dup()
        except OSError:
            return
        with self._lock:
            if not self._done:
                self._socks.append(dup)
                self._owned.append(dup)
                return
        dup.close()

    def reset(self, deadline_fn: Callable[[], float]) -> None:
        """A new deadline (e.g. headers arrived: from now on the whole budget applies)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self.deadline_fn = deadline_fn
        self._schedule()

    def disarm(self) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            self._socks.clear()
            owned, self._owned = self._owned, []
        for s in owned:
            s.close()

    def __enter__(self) -> Watch:
        _armed.watch = self
        return self

    def __exit__(self, *exc: object) -> None:
        _armed.watch = None


def _bounded_new_conn(conn: Any) -> socket.socket:
    """urllib3's ``HTTPConnection._new_conn`` with resolution and connects bounded (see ``_Watched``)."""
    watch = getattr(_armed, "watch", None)
    deadline = watch.deadline_fn() if watch is not None else None
    timeout = float(conn.timeout) if isinstance(conn.timeout, (int, float)) else None
    try:
        conn._dns_host.strip("[]").encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{conn._dns_host}', label empty or too long") from None
    try:
        sock = connect_within(
            (conn._dns_host, conn.port),
            timeout,
            deadline,
            family=allowed_gai_family(),
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out: {exc}") from exc
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc
    if watch is not None:
        # The TLS handshake (and a proxy's CONNECT) comes next, before any request is sent: a server that
        # accepts and then says nothing must be cut at the deadline too, not after the socket timeout.
        # TLS wraps a *new* socket object around the descriptor and detaches this one, so the watch keeps
        # its own duplicate: shutting that down ends the connection whichever object reads from it.
        watch.attach_dup(sock)
    return sock


class _Watched:
    """Connection mixin: set-up within the armed watch's deadline; after sending, hand the socket to the watch.

    Name resolution and connecting happen before any socket exists for the watch to shut, so ``_new_conn``
    bounds them itself (``resolve.connect_within``): a resolver or an address that never answers ends the
    attempt at the connect timeout or the request's deadline, whichever is first, as a connect timeout.
    The new socket goes to the watch at once, so a stalled TLS handshake or proxy tunnel ends at the deadline.
    """

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        return _bounded_new_conn(self)

    def request(self, *args: object, **kwargs: object) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]
        watch = getattr(_armed, "watch", None)
        if watch is not None:
            watch.attach(self.sock)


class WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """A requests adapter whose connections report their sockets to the armed watch."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: object):  # type: ignore[no-untyped-def]
        pm = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            pm.pool_classes_by_scheme = dict(_POOLS)
        return pm


def run_bounded(fn: Callable[[], object], seconds: float, what: str) -> object:
    """Run ``fn`` in a daemon thread and give up after ``seconds`` (for clients whose sockets we cannot reach)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="modelward-bounded-call", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise NetworkDeadline(f"{what}: no complete answer within {seconds:g} s (limit network_seconds)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


__all__ = ["Budget", "NetLimits", "NetworkDeadline", "Watch", "WatchedAdapter", "run_bounded"]
