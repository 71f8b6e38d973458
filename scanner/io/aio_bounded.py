"""Our network guarantees for the asyncio clients behind fsspec (s3fs/aiobotocore, gcsfs, adlfs on aiohttp).

Their timeouts are per socket read, so a server trickling one byte a second never trips them; their name
resolution runs ``getaddrinfo`` in the event loop's executor, whose threads the interpreter joins at exit (a
resolver that never answers would hold the process after the scan); aiobotocore lets aiohttp follow redirects,
which carries the request's ``X-Amz-Security-Token`` (a credential) to whatever origin a 3xx names. So:

* ``within`` runs one call of an async filesystem on its loop under ``asyncio.wait_for``: at the deadline the
  call is cancelled (its connection closed), not merely abandoned; a sync filesystem runs under ``run_bounded``.
* ``BoundedResolver`` resolves in our daemon threads (``resolve.lookup``), bounded by the connect timeout.
* ``NoRedirectSession`` is aiobotocore's HTTP session with redirects never followed: a 3xx reaches botocore,
  which fails the call (S3 answers a wrong region with 301 and botocore handles that itself, re-signing).
* ``capped_response_class`` bounds what a client reading whole bodies (gcsfs reads every answer with
  ``await r.read()``) may take: no more than the ``Range`` it asked for, at most ``limit`` bytes without one
  (decoded bytes counted: a gzip answer is inflated by aiohttp), and a JSON answer no costlier to parse than
  ``json_budget`` allows. A server ignoring Range sent a 300 MB body into memory for a 1000-byte read.

aiohttp and aiobotocore are imported only when an object store is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from .deadline import NetworkDeadline, run_bounded
from .json_budget import JsonCost
from .resolve import MAX_ADDRESSES, lookup


def within(
    fs: Any, make: Callable[[], Awaitable[Any]], sync_call: Callable[[], Any], seconds: float, what: str
) -> Any:
    """``make()`` on ``fs``'s event loop, cancelled after ``seconds``; ``sync_call()`` when ``fs`` is not async."""
    loop = getattr(fs, "loop", None) if getattr(fs, "async_impl", False) else None
    if loop is None or not loop.is_running():
        return run_bounded(sync_call, seconds, what)

    async def bounded() -> Any:
        return await asyncio.wait_for(make(), seconds)

    fut = asyncio.run_coroutine_threadsafe(bounded(), loop)
    try:
        return fut.result(seconds + 5)
    except (TimeoutError, asyncio.TimeoutError, concurrent.futures.TimeoutError):
        fut.cancel()
        raise NetworkDeadline(
            f"{what}: no complete answer within {seconds:.1f} s (limit network_seconds)"
        ) from None


def bounded_resolver(timeout: float) -> Any:
    """An aiohttp resolver whose lookups run in our daemon threads and give up after ``timeout`` seconds."""
    from aiohttp.abc import AbstractResolver, ResolveResult

    class BoundedResolver(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            try:
                pending = lookup(host, port, family, socket.SOCK_STREAM)
                # shield: the lookup is shared with other waiters and must never be cancelled by one of them
                infos = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                raise OSError(f"name resolution of {host!r} took longer than {timeout:g} s") from None
            hosts: list[ResolveResult] = []
            for fam, _type, proto, _canon, address in infos[:MAX_ADDRESSES]:
                if fam not in (socket.AF_INET, socket.AF_INET6):
                    continue
                hosts.append(
                    ResolveResult(
                        hostname=host,
                        host=address[0],
                        port=address[1],
                        family=fam,
                        proto=proto,
                        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                    )
                )
            if not hosts:
                raise OSError(f"name resolution of {host!r} returned no address")
            return hosts

        async def close(self) -> None:
            return None

    return BoundedResolver()


def no_redirect_session_cls(body_limit: int | None = None) -> type | None:
    """aiobotocore's HTTP session class with redirects refused, and with ``body_limit``, every body capped
    (``capped_response_class``: botocore reads a listing page whole and parses it; a 60 MB page peaked at
    645 MB); None when this aiobotocore has no such hook."""
    try:
        from aiobotocore.httpsession import AIOHTTPSession
    except ImportError:
        return None

    class _NoRedirect:
        def __init__(self, session: Any) -> None:
            self._session = session

        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["allow_redirects"] = False
            return self._session.request(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._session, name)

    capped = capped_response_class(body_limit) if body_limit is not None else None

    class NoRedirectSession(AIOHTTPSession):  # type: ignore[misc]
        async def _get_session(self, proxy_url: Any) -> Any:
            session = await super()._get_session(proxy_url)
            if capped is not None and hasattr(session, "_response_class"):
                session._response_class = capped
            return _NoRedirect(session)

    return NoRedirectSession


class BodyRefused(Exception):
    """A body larger than asked for (or costlier to parse than allowed): refused while it is read."""


def _asked(headers: Any) -> int | None:
    """Bytes a ``Range: bytes=a-b`` header asks for; None without one (or an open range)."""
    value = str(headers.get("Range") or headers.get("x-ms-range") or "")  # aiohttp headers: case-insensitive
    first, _, last = value.removeprefix("bytes=").partition("-")
    if not value.startswith("bytes=") or "," in value or not first.isdigit() or not last.isdigit():
        return None
    return max(0, int(last) - int(first) + 1)


class _CappedStream:
    """An aiohttp ``StreamReader`` seen through a byte cap (and a JSON parse budget)."""

    def __init__(self, inner: Any, cap: int, what: str, is_json: bool, ranged: bool) -> None:
        self._inner, self._cap, self._what = inner, cap, what
        self._why = "asked for" if ranged else "allowed for an answer"
        self._got = 0
        self._cost = JsonCost() if is_json else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _count(self, piece: bytes) -> bytes:
        self._got += len(piece)
        if self._got > self._cap:
            raise BodyRefused(
                f"{self._what}: the store sent more than the {self._cap} bytes {self._why}; refused"
            )
        if self._cost is not None and not self._cost.add(piece):
            raise BodyRefused(
                f"{self._what}: the JSON answer would cost over {self._cost.budget >> 20} MB once parsed; "
                f"refused, not parsed"
            )
        return piece

    async def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            return self._count(await self._inner.read(min(n, self._cap + 1 - self._got)))
        chunks: list[bytes] = []
        while piece := self._count(await self._inner.read(min(1 << 20, self._cap + 1 - self._got))):
            chunks.append(piece)
        return b"".join(chunks)

    async def readany(self) -> bytes:
        return self._count(await self._inner.readany())


def capped_response_class(limit: int) -> type:
    """An aiohttp ``ClientResponse`` whose body stops past what was asked (see the module docstring).

    The cap sits on ``content`` (the body stream), so it holds for ``read()`` (gcsfs) and for clients that
    read the stream in blocks themselves (the Azure SDK's downloads).
    """
    import aiohttp

    class CappedResponse(aiohttp.ClientResponse):
        @property  # type: ignore[override]
        def content(self) -> Any:
            return self.__dict__.get("_modelward_content")

        @content.setter
        def content(self, stream: Any) -> None:
            if stream is not None and not isinstance(stream, _CappedStream):
                # an error answer (412 on If-Match, 416) is not the range: its body is capped at ``limit``
                asked = _asked(self.request_info.headers) if 200 <= self.status < 300 else None
                cap = limit if asked is None else min(asked, limit)
                # the client parses an answer it did not ask a range of (a listing page, metadata); a ranged
                # read is object bytes our inspectors judge (a tokenizer.json stored as application/json)
                is_json = asked is None and "json" in self.headers.get("Content-Type", "").lower()
                stream = _CappedStream(stream, cap, str(self.url.host), is_json, asked is not None)
            self.__dict__["_modelward_content"] = stream

    return CappedResponse


__all__ = ["BodyRefused", "bounded_resolver", "capped_response_class", "no_redirect_session_cls", "within"]
