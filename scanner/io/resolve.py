"""Connection set-up under the network deadline: name resolution in a worker thread, connects bounded in total.

``socket.getaddrinfo`` takes no timeout and cannot be interrupted: a resolver that never answers would hold a
scan far past ``network_seconds`` (the watchdog in ``deadline`` can only shut sockets that exist). Names are
therefore resolved in a daemon thread and waited for with a timeout; a lookup still pending is shared by
every later request for the same name (one stuck thread per name, never one per retry), and at most
``MAX_PENDING`` lookups may hang at once. A resolver answering with many unreachable addresses cannot
multiply the connect timeout either: all addresses share one deadline.

A timeout raises ``socket.timeout`` (``TimeoutError``), which urllib3 turns into its connect-timeout error:
the request fails closed through the ordinary retry and deadline path.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

MAX_PENDING = 16  # distinct names whose lookup may hang at once before new lookups fail at once
MAX_ADDRESSES = 16  # addresses of one name tried in turn (all within the same deadline)

AddrInfo = list[tuple[Any, ...]]
_pending: dict[tuple[object, ...], Future[AddrInfo]] = {}
_lock = threading.Lock()


def _lookup(key: tuple[object, ...], fut: Future[AddrInfo]) -> None:
    host, port, family, type_ = key
    try:
        result = socket.getaddrinfo(host, port, family, type_)  # type: ignore[arg-type]
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
        fut.set_exception(exc)
    else:
        fut.set_result(result)
    finally:
        with _lock:
            if _pending.get(key) is fut:
                del _pending[key]


def lookup(host: str, port: int | None, family: int, type_: int) -> Future[AddrInfo]:
    """The pending lookup of ``host`` (shared with every other waiter for it), started in a daemon thread.

    Never cancel the returned future (other requests wait on it too); wait on it with a timeout.
    """
    key: tuple[object, ...] = (host, port, family, type_)
    with _lock:
        fut = _pending.get(key)
        if fut is None:
            if len(_pending) >= MAX_PENDING:
                raise TimeoutError(f"name resolution of {host!r}: {len(_pending)} earlier lookups still hang")
            fut = Future()
            _pending[key] = fut
            worker = threading.Thread(target=_lookup, args=(key, fut), name="modelward-resolve", daemon=True)
            worker.start()
    return fut


def getaddrinfo_within(
    host: str, port: int | None, family: int, type_: int, timeout: float | None
) -> AddrInfo:
    """``socket.getaddrinfo`` that gives up after ``timeout`` seconds (``socket.timeout``); None waits forever."""
    fut = lookup(host, port, family, type_)
    try:
        return fut.result(timeout=None if timeout is None else max(0.0, timeout))
    except FutureTimeout:
        raise TimeoutError(f"name resolution of {host!r} took longer than {timeout or 0:.1f} s") from None


def connect_within(
    address: tuple[str, int],
    timeout: float | None,
    deadline: float | None,
    *,
    family: int = socket.AF_UNSPEC,
    source_address: tuple[str, int] | None = None,
    socket_options: Any = None,
) -> socket.socket:
    """urllib3's ``create_connection`` with resolution and every connect attempt inside ``timeout``/``deadline``.

    ``timeout`` bounds the whole set-up (resolution plus connects, as one connect timeout); ``deadline`` is an
    absolute ``time.monotonic()`` value (the request's network budget), whichever comes first.
    """
    host, port = address
    host = host.strip("[]")
    end = time.monotonic() + timeout if timeout is not None else None
    if deadline is not None:
        end = deadline if end is None else min(end, deadline)

    def left() -> float | None:
        return None if end is None else end - time.monotonic()

    infos = getaddrinfo_within(host, port, family, socket.SOCK_STREAM, left())
    err: OSError | None = None
    for af, socktype, proto, _canon, sa in infos[:MAX_ADDRESSES]:
        remaining = left()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"connecting to {host!r}: out of time after trying some of its addresses")
        sock = socket.socket(af, socktype, proto)
        try:
            for opt in socket_options or ():
                sock.setsockopt(*opt)
            if remaining is not None:
                sock.settimeout(remaining)
            if source_address:
                sock.bind(source_address)
            sock.connect(sa)
        except OSError as exc:
            sock.close()
            err = exc
            continue
        sock.settimeout(timeout)
        return sock
    if err is not None:
        raise err
    raise OSError("getaddrinfo returned no address")


__all__ = ["MAX_PENDING", "connect_within", "getaddrinfo_within", "lookup"]
