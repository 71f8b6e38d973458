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

aiohttp and aiobotocore are imported only when an object store is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from .deadline import NetworkDeadline, run_bounded
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


def no_redirect_session_cls() -> type | None:
    """aiobotocore's HTTP session class with redirects refused; None when this aiobotocore has no such hook."""
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

    class NoRedirectSession(AIOHTTPSession):  # type: ignore[misc]
        async def _get_session(self, proxy_url: Any) -> Any:
            return _NoRedirect(await super()._get_session(proxy_url))

    return NoRedirectSession


__all__ = ["bounded_resolver", "no_redirect_session_cls", "within"]
