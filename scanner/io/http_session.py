"""One HTTP client for every remote source: retries, redirects, credentials, redaction.

Redirects are followed by hand rather than by ``requests`` so that the
credentials meant for a registry never travel to the CDN it redirects to (they
are sent only to the origin they were given for), an https URL never silently
downgrades to http, and every error message can be scrubbed of secrets before
anyone sees it. Sources register each secret they use with ``register_secret``;
``redact`` removes registered secrets, URL userinfo, bearer tokens and signed
query parameters from any text.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from .. import __version__

USER_AGENT = f"modelward/{__version__}"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read (between bytes)
MAX_RETRY_AFTER = 60.0

# Query parameters that carry credentials or signatures (S3/CloudFront/Azure/GCS presigning, ad-hoc tokens).
SECRET_PARAMS = re.compile(
    r"^(x-amz-(signature|credential|security-token)|x-goog-(signature|credential)|signature|sig|token|"
    r"access_token|api[_-]?key|key|password|passwd|secret|auth|authorization|policy|key-pair-id|se|sp|skoid|sktid)$",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
# After "token" a credential has a digit or is long; plain words ("token service requires …") are prose.
_BEARER = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(token)\s+(?:(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{6,}|[A-Za-z0-9._~+/=-]{20,})"
)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a credential so that ``redact`` scrubs it from any text (messages, reports, logs)."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def redact_url(url: str) -> str:
    """The URL without userinfo and with secret-bearing query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if SECRET_PARAMS.match(k) else v) for k, v in pairs], safe="*/:")
    fragment = parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact(text: object) -> str:
    """``text`` with every known secret, URL credential, bearer token and URL signature removed."""
    s = str(text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for sec in secrets:
        s = s.replace(sec, "***")
    s = _URL.sub(lambda m: redact_url(m.group(0)), s)
    s = _USERINFO.sub(r"\g<scheme>***@", s)
    s = _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} ***", s)
    return _HF_TOKEN.sub("***", s)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit: what credentials are scoped to."""
    p = urlsplit(url)
    port = p.port or {"http": 80, "https": 443}.get(p.scheme.lower())
    return p.scheme.lower(), (p.hostname or "").lower(), port


class HTTPFetchError(Exception):
    """A request failed for good (after retries); the message is already redacted."""

    def __init__(self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.headers = dict(headers or {})


@dataclass
class Stats:
    """What one reader or source cost: every attempt counts, including retries and redirect hops."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class RetryPolicy:
    """Total tries per request and the first pause (doubled each time, with jitter)."""

    attempts: int = field(default_factory=lambda: max(1, int(_env_number("MODELWARD_HTTP_ATTEMPTS", 5))))
    backoff: float = field(default_factory=lambda: max(0.0, _env_number("MODELWARD_HTTP_BACKOFF", 0.5)))
    max_backoff: float = 8.0


class HTTPClient:
    """A pooled ``requests`` session with polite retries and credential-scoped manual redirects.

    ``auth_headers`` passed to a request go only to the origin of the URL they
    were passed with; a redirect to any other origin (a CDN, a presigned bucket
    URL) drops them, as a browser would.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_redirects: int = 10,
        allow_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 8,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.allow_http = allow_http
        self.sleep = sleep
        s = requests.Session()
        # Proxies from the environment are honoured, but never ~/.netrc: credentials are explicit only.
        s.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        self.session = s

    def close(self) -> None:
        self.session.close()

    def _proxies(self, url: str) -> dict[str, str]:
        try:
            return requests.utils.get_environ_proxies(url)
        except Exception:  # a malformed proxy variable must not take the scan down
            return {}

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.retry.backoff * (2**attempt)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        delay = min(delay, MAX_RETRY_AFTER if retry_after else self.retry.max_backoff)
        self.sleep(delay * (0.8 + 0.4 * random.random()))  # noqa: S311 - jitter, not crypto

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        stats: Stats | None = None,
    ) -> requests.Response:
        """One request (no redirects) with retries on connection errors, timeouts, 429 and 5xx."""
        last_exc: Exception | None = None
        resp: requests.Response | None = None
        for attempt in range(self.retry.attempts):
            if attempt and stats is not None:
                stats.retries += 1
            if stats is not None:
                stats.requests += 1
            try:
                resp = self.session.request(
                    method, url, headers=dict(headers or {}), stream=stream, timeout=self.timeout,
                    allow_redirects=False, proxies=self._proxies(url),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_exc = exc
                resp = None
                if attempt + 1 < self.retry.attempts:
                    self._pause(attempt, None)
                continue
            except requests.RequestException as exc:
                raise HTTPFetchError(f"{method} {redact_url(url)}: {type(exc).__name__}") from None
            if resp.status_code in RETRY_STATUS and attempt + 1 < self.retry.attempts:
                retry_after = resp.headers.get("Retry-After")
                resp.close()
                self._pause(attempt, retry_after)
                continue
            return resp
        if resp is not None:
            return resp  # a retryable status on the last attempt: the caller reports it
        kind = "timed out" if isinstance(last_exc, requests.Timeout) else "connection failed"
        raise HTTPFetchError(f"{method} {redact_url(url)}: {kind} after {self.retry.attempts} attempts")

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth_headers: Mapping[str, str] | None = None,
        stream: bool = False,
        stats: Stats | None = None,
        follow: bool = True,
    ) -> requests.Response:
        """Send with retries, following redirects by hand; ``resp.url`` is the final URL."""
        auth_origin = origin(url)
        current = url
        for _hop in range(self.max_redirects + 1):
            self._check_scheme(current, url)
            h = dict(headers or {})
            if auth_headers and origin(current) == auth_origin:
                h.update(auth_headers)
            resp = self.send(method, current, headers=h, stream=stream, stats=stats)
            if not follow or resp.status_code not in REDIRECT_STATUS or "Location" not in resp.headers:
                return resp
            nxt = urljoin(current, resp.headers["Location"])
            resp.close()
            if resp.status_code == 303 and method != "HEAD":
                method = "GET"
            current = nxt
        raise HTTPFetchError(f"{method} {redact_url(url)}: more than {self.max_redirects} redirects")

    def _check_scheme(self, current: str, first: str) -> None:
        scheme = urlsplit(current).scheme.lower()
        if scheme == "https":
            return
        if scheme == "http":
            if self.allow_http:
                return
            if urlsplit(first).scheme.lower() == "https":
                raise HTTPFetchError(f"{redact_url(first)}: redirect downgrades https to plain http "
                                     f"({redact_url(current)}); refused")
            raise HTTPFetchError(f"{redact_url(current)}: plain http is not allowed (use https, or --allow-http)")
        raise HTTPFetchError(f"{redact_url(current)}: unsupported URL scheme {scheme!r}")


def describe_status(resp: requests.Response) -> str:
    """A short, redacted description of an HTTP error response."""
    reason = resp.reason or ""
    return redact(f"HTTP {resp.status_code} {reason}".strip())
