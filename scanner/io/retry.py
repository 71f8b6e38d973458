"""The one retry policy for every request modelward makes (Hub API, resolve/CDN, OCI, plain HTTPS).

Modelled on urllib3's ``Retry`` and huggingface_hub's ``http_backoff``: transient
failures (connection errors, timeouts, 429, 500, 502, 503, 504) are retried with
bounded exponential backoff and jitter; a server-requested wait (``Retry-After``
in seconds or as an HTTP-date, ``RateLimit-Reset``, ``RateLimit: ...;t=N``) is
honoured up to a cap; nothing is retried that cannot succeed (401/403/404, a
digest mismatch) and no pause runs past the caller's deadline. Tests shrink the
pauses with ``MODELWARD_HTTP_BACKOFF`` / ``MODELWARD_HTTP_MAX_WAIT``.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_RATELIMIT_T = re.compile(r"(?:^|;)\s*t\s*=\s*(\d{1,9})\b")
_RATELIMIT_R = re.compile(r"(?:^|;)\s*r\s*=\s*(\d{1,12})\b")
T = TypeVar("T")


def env_number(name: str, default: float) -> float:
    """A float from the environment, the default when unset or malformed."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    val = headers.get(name)
    if val is None:
        low = name.lower()
        val = next((v for k, v in headers.items() if k.lower() == low), None)
    return val.strip() if isinstance(val, str) else None


def server_wait(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: Retry-After, else RateLimit (t= when r=0), else RateLimit-Reset."""
    now = time.time() if now is None else now
    ra = _header(headers, "Retry-After")
    if ra:
        if ra.isdigit():
            return float(int(ra[:9]))
        try:
            when = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    rl = _header(headers, "RateLimit")
    if rl:
        t, r = _RATELIMIT_T.search(rl), _RATELIMIT_R.search(rl)
        if t and (r is None or int(r.group(1)) == 0):
            return float(int(t.group(1)))
    reset = _header(headers, "RateLimit-Reset") or _header(headers, "X-RateLimit-Reset")
    if reset and reset.isdigit():
        n = int(reset[:12])
        return float(max(0.0, n - now) if n > 1_000_000_000 else n)  # some send an epoch timestamp
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Total tries per request, the first pause (doubled each time, jittered) and the caps on waiting."""

    attempts: int = field(default_factory=lambda: max(1, int(env_number("MODELWARD_HTTP_ATTEMPTS", 5))))
    backoff: float = field(default_factory=lambda: max(0.0, env_number("MODELWARD_HTTP_BACKOFF", 0.5)))
    max_backoff: float = 8.0
    max_wait: float = field(default_factory=lambda: max(0.0, env_number("MODELWARD_HTTP_MAX_WAIT", 60.0)))

    def delay(self, retry: int, headers: Mapping[str, str] | None = None) -> float:
        """The pause before retry number ``retry`` (0-based): the server's wish, capped, else jittered backoff."""
        base = min(self.max_backoff, self.backoff * (2**retry))
        backoff = base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
        asked = server_wait(headers)
        if asked is None:
            return backoff
        asked = min(asked, self.max_wait)
        # Never earlier than asked; "Retry-After: 0" still backs off, so many clients do not retry in lockstep.
        return max(backoff, asked + random.uniform(0, min(0.5, asked * 0.1)))  # noqa: S311


class RetriesExhausted(Exception):
    """Every attempt failed transiently; the message names the (redacted) URL, last status and attempt count."""

    def __init__(self, message: str, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    transient: Callable[[Exception], tuple[bool, int | None, Mapping[str, str] | None]],
    describe: Callable[[Exception, int], str],
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn`` under the policy; ``transient(exc)`` says whether to retry (and the status and headers seen).

    Non-transient exceptions propagate unchanged; when attempts or the deadline run
    out, ``RetriesExhausted(describe(last_exc, attempts))`` is raised.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            retry, status, headers = transient(exc)
            if not retry:
                raise
            if attempt >= policy.attempts:
                raise RetriesExhausted(describe(exc, attempt), status, attempt) from None
            pause = policy.delay(attempt - 1, headers)
            if deadline is not None and time.monotonic() + pause > deadline:
                raise RetriesExhausted(
                    describe(exc, attempt) + " (deadline reached)", status, attempt
                ) from None
            sleep(pause)


__all__ = [
    "RETRY_STATUS",
    "RetryPolicy",
    "RetriesExhausted",
    "call_with_retries",
    "server_wait",
    "env_number",
]
