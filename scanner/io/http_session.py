"""One HTTP client for every remote source: retries, deadlines, redirects, credentials, redaction.

Redirects are followed by hand rather than by ``requests`` so that the
credentials meant for a registry never travel to the CDN it redirects to (they
are sent only to the origin they were given for), an https URL never silently
downgrades to http, and every error message can be scrubbed of secrets before
anyone sees it. Sources register each secret they use with ``register_secret``;
``redact`` removes registered secrets, URL userinfo, bearer tokens and signed
query parameters from any text.
"""

from __future__ import annotations

import http.cookiejar
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.util import parse_url

from .. import __version__
from .deadline import Budget, NetLimits, NetworkDeadline, Watch, WatchedAdapter
from .redaction import SECRET_PARAMS, redact, redact_url, register_secret  # noqa: F401 - re-exported
from .retry import RETRY_STATUS, RetryPolicy

USER_AGENT = f"modelward/{__version__}"
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read (between bytes)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports made explicit: what credentials are scoped to."""
    p = urlsplit(url)
    port = p.port or {"http": 80, "https": 443}.get(p.scheme.lower())
    return p.scheme.lower(), (p.hostname or "").lower(), port


def wire_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as urllib3 parses ``url``: where ``requests`` actually connects.

    ``urllib.parse`` and urllib3 disagree on some URLs (``http://a:1\\@b:2/`` is host ``b`` for the first,
    host ``a`` with a path for the second). Credentials are scoped with ``origin``, so a URL the two parse
    differently must never be requested: the check would look at one host and the bytes go to another.
    """
    u = parse_url(url)
    scheme = (u.scheme or "").lower()
    port = u.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (u.host or "").lower().strip("[]"), port


class HTTPFetchError(Exception):
    """A request failed for good (after retries); the message is already redacted."""

    def __init__(
        self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(redact(message))
        self.status = status
        self.headers = dict(headers or {})


@dataclass
class Stats:
    """What one reader or source cost: every attempt counts, including retries and redirect hops."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuse every cookie: never stored from a response, never sent with a request.

    A cookie jar matches on host name only, not on port or scheme (RFC 6265): a session cookie a registry
    sets on ``https://host:443`` would travel with the request to a CDN or attacker on ``http://host:8080``
    it redirects to, and a cookie planted by one target would reach the next target's server. Credentials
    are explicit and scoped to one origin here (``auth_headers``); modelward never needs cookie state.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: object) -> bool:
        return False


NO_COOKIES = _NoCookies()


class HTTPClient:
    """A pooled ``requests`` session with the program's retry policy, deadlines and credential-scoped redirects.

    ``auth_headers`` go only to the origin (scheme, host, port) they were given
    for: ``auth_origin`` when the caller re-requests a cached redirect target,
    else the first URL's. A redirect to any other origin (a CDN, a presigned
    bucket URL) drops them, as a browser would; nothing is ever sent to the
    origin of a cached redirect target unless it is the credentials' own.
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
        net: NetLimits | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.net = net or NetLimits.from_env()
        # Silence is a stall too: never wait longer than the stall window for the next byte.
        self.timeout = (timeout[0], min(timeout[1], self.net.stall_seconds))
        self.max_redirects = max_redirects
        self.allow_http = allow_http
        self.sleep = sleep
        self._broken: dict[tuple[str, str, int | None], str] = {}  # origin -> why it failed for good
        self._broken_lock = threading.Lock()
        s = requests.Session()
        # Proxies from the environment are honoured, but never ~/.netrc: credentials are explicit only.
        s.trust_env = False
        s.cookies.set_policy(NO_COOKIES)  # see _NoCookies: a cookie would cross origins
        adapter = WatchedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        self.session = s

    def close(self) -> None:
        self.session.close()

    def budget(self, what: str) -> Budget:
        """A fresh network-time budget for one file or call; ``what`` must already be redacted."""
        return Budget(what, self.net)

    def _proxies(self, url: str) -> dict[str, str]:
        try:
            return requests.utils.get_environ_proxies(url)
        except Exception:  # a malformed proxy variable must not take the scan down
            return {}

    def _pause(self, seconds: float, budget: Budget, what: str, last: str, attempts: int) -> None:
        """Sleep before a retry, unless that would outlive the budget: then stop now and say why."""
        if seconds > budget.remaining():
            raise HTTPFetchError(
                f"{last} after {attempts} attempt(s), not retrying (the next try in {seconds:.1f} s would "
                f"exceed the network time budget): {what}"
            )
        self.sleep(seconds)

    def _attempt(
        self, method: str, url: str, headers: dict[str, str], stream: bool, budget: Budget, data: str | None
    ) -> requests.Response:
        """One request under a watchdog: headers within the read timeout, the whole response within budget."""
        sent = time.monotonic()
        header_limit = self.timeout[1] + self.timeout[0]
        # Streamed: the headers must come within connect + read timeout. Not streamed: the whole body is read
        # inside the request, so only the budget applies.
        watch = Watch((lambda: min(budget.deadline(), sent + header_limit)) if stream else budget.deadline)
        try:
            with watch:
                resp = self.session.request(
                    method,
                    url,
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=False,
                    proxies=self._proxies(url),
                    data=data,
                )
        except BaseException:
            watch.disarm()
            if watch.fired:
                raise NetworkDeadline(
                    f"{method} {redact_url(url)}: no complete response headers within "
                    f"{min(header_limit, budget.net.seconds):g} s"
                ) from None
            raise
        if watch.fired:
            # The watchdog cut the socket and http.client took what had arrived (a truncated header block, or
            # a body read to "end of stream") as complete: that is not the server's answer, never judge it.
            watch.disarm()
            resp.close()
            limit = min(header_limit, budget.net.seconds) if stream else budget.net.seconds
            raise NetworkDeadline(f"{method} {redact_url(url)}: no complete response within {limit:g} s")
        if not stream:  # the body was read inside the request: nothing left to watch
            watch.disarm()
            return resp
        watch.reset(budget.deadline)
        close = resp.close

        def close_and_disarm() -> None:
            watch.disarm()
            close()

        resp.close = close_and_disarm  # type: ignore[method-assign]
        resp.modelward_budget = budget  # type: ignore[attr-defined]  # body readers detect stalls with it
        return resp

    def mark_broken(self, url: str, message: str) -> None:
        """Remember that ``url``'s origin failed for good (retries or budget exhausted, stalled) in this run."""
        with self._broken_lock:
            self._broken.setdefault(origin(url), redact(message)[:300])

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        stats: Stats | None = None,
        budget: Budget | None = None,
        data: str | None = None,
    ) -> requests.Response:
        """One request (no redirects) under the retry policy: connection errors, timeouts, 429 and 5xx retried.

        Returns any non-retryable response; raises ``HTTPFetchError`` (redacted URL, last status or error,
        number of attempts) when retries or the budget run out. An origin that failed for good earlier in
        this run is not tried again (the run already ends with an error): a registry that stalls or
        rate-limits every file costs one budget, not one per file.
        """
        with self._broken_lock:
            earlier = self._broken.get(origin(url))
        if earlier is not None:
            raise HTTPFetchError(
                f"{method} {redact_url(url)}: not tried, this server already failed in this run ({earlier})"
            )
        try:
            return self._send(
                method, url, headers=headers, stream=stream, stats=stats, budget=budget, data=data
            )
        except HTTPFetchError as exc:
            self.mark_broken(url, str(exc))
            raise

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        stream: bool,
        stats: Stats | None,
        budget: Budget | None,
        data: str | None,
    ) -> requests.Response:
        what = f"{method} {redact_url(url)}"
        budget = budget or self.budget(what)
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            if attempt > 1 and stats is not None:
                stats.retries += 1
            if stats is not None:
                stats.requests += 1
            try:
                budget.check()
                resp = self._attempt(method, url, dict(headers or {}), stream, budget, data)
            except NetworkDeadline as exc:
                raise HTTPFetchError(str(exc)) from None
            # A certificate or protocol mismatch does not heal by retrying.
            except requests.exceptions.SSLError:
                raise HTTPFetchError(
                    f"{what}: TLS handshake failed (certificate or protocol); not retried"
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if attempt == attempts:
                    raise HTTPFetchError(f"{last} after {attempt} attempt(s): {what}") from None
                self._pause(self.retry.delay(attempt - 1), budget, what, last, attempt)
                continue
            except requests.RequestException as exc:
                raise HTTPFetchError(f"{what}: {type(exc).__name__}") from None
            except ValueError:
                # requests parses a redirect's Location even when it does not follow it (to prepare the next
                # hop): an out-of-range port or a Location that is not UTF-8 raises a bare ValueError there.
                raise HTTPFetchError(f"{what}: malformed response (unparsable redirect Location)") from None
            if resp.status_code not in RETRY_STATUS:
                return resp
            last = describe_status(resp)
            hdrs = dict(resp.headers)
            resp.close()
            if attempt == attempts:
                raise HTTPFetchError(
                    f"{last} after {attempt} attempt(s): {what}", status=resp.status_code, headers=hdrs
                )
            self._pause(self.retry.delay(attempt - 1, hdrs), budget, what, last, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth_headers: Mapping[str, str] | None = None,
        auth_origin: str | None = None,
        stream: bool = False,
        stats: Stats | None = None,
        follow: bool = True,
        budget: Budget | None = None,
        data: str | None = None,
    ) -> requests.Response:
        """Send with retries, following redirects by hand; ``resp.url`` is the final URL.

        ``auth_headers`` are sent only to ``origin(auth_origin or url)``, on every hop and every retry.
        """
        cred_origin = origin(auth_origin or url)
        budget = budget or self.budget(f"{method} {redact_url(url)}")
        current = url
        for _hop in range(self.max_redirects + 1):
            self._check_scheme(current, url)
            self._check_unambiguous(current, url)
            h = dict(headers or {})
            if auth_headers and origin(current) == cred_origin:
                h.update(auth_headers)
            resp = self.send(method, current, headers=h, stream=stream, stats=stats, budget=budget, data=data)
            if not follow or resp.status_code not in REDIRECT_STATUS or "Location" not in resp.headers:
                refuse_encoded(resp, f"{method} {redact_url(current)}")
                return resp
            resp.close()
            nxt = _redirect_target(current, resp.headers["Location"], method, url)
            if resp.status_code == 303 and method != "HEAD":
                method, data = "GET", None
            current = nxt
        raise HTTPFetchError(f"{method} {redact_url(url)}: more than {self.max_redirects} redirects")

    def _check_unambiguous(self, current: str, first: str) -> None:
        """Refuse a URL whose host the credential check and the connection would read differently."""
        try:
            ours, wire = origin(current), wire_origin(current)
            ours = (ours[0], _idna(ours[1]), ours[2])
        except ValueError:
            ours, wire = ("", "", None), ("?", "?", None)
        if ours != wire:
            hop = "" if current == first else f" (redirected to {redact_url(current)})"
            raise HTTPFetchError(
                f"{redact_url(first)}: ambiguous URL{hop}: its host reads differently to different "
                f"URL parsers (a backslash or other unusual character before '@'); refused"
            )

    def _check_scheme(self, current: str, first: str) -> None:
        scheme = urlsplit(current).scheme.lower()
        if scheme == "https":
            return
        if scheme == "http":
            if self.allow_http:
                return
            if urlsplit(first).scheme.lower() == "https":
                raise HTTPFetchError(
                    f"{redact_url(first)}: redirect downgrades https to plain http "
                    f"({redact_url(current)}); refused"
                )
            raise HTTPFetchError(
                f"{redact_url(current)}: plain http is not allowed (use https, or --allow-http)"
            )
        raise HTTPFetchError(f"{redact_url(current)}: unsupported URL scheme {scheme!r}")


def _idna(host: str) -> str:
    """An internationalised host name in the ASCII form urllib3 connects to (unchanged when already ASCII)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host


def _redirect_target(current: str, location: str, method: str, first: str) -> str:
    """The absolute URL a ``Location`` points to, refused (``HTTPFetchError``) when it cannot be parsed."""
    try:
        nxt = urljoin(current, location.strip())
        p = urlsplit(nxt)
        _ = p.port  # raises on a port out of range or not a number
    except ValueError:
        raise HTTPFetchError(
            f"{method} {redact_url(first)}: the server redirected to a malformed URL; refused"
        ) from None
    if p.scheme.lower() in ("http", "https") and not p.hostname:
        raise HTTPFetchError(f"{method} {redact_url(first)}: the server redirected to a URL without a host")
    return nxt


def encoding_problem(headers: Mapping[str, str]) -> str | None:
    """The content or transfer coding that makes a body differ from the stored bytes; None for plain bytes.

    Every request asks for ``Accept-Encoding: identity``. A server that encodes anyway must not be decoded
    (a few KB of gzip, deflate, br or zstd can inflate to gigabytes, and a byte range of the encoded form is
    not a range of the file) nor taken as is (the digest and the verdict would bind to bytes a client that
    decodes never loads): the caller refuses the response.
    """
    content = [c.strip().lower() for c in headers.get("Content-Encoding", "").split(",") if c.strip()]
    transfer = [c.strip().lower() for c in headers.get("Transfer-Encoding", "").split(",") if c.strip()]
    bad = [c for c in content if c != "identity"]
    if bad:
        return "Content-Encoding: " + ", ".join(bad)[:60]
    bad = [c for c in transfer if c not in ("chunked", "identity")]
    if bad:
        return "Transfer-Encoding: " + ", ".join(bad)[:60]
    return None


def refuse_encoded(resp: requests.Response, what: str) -> None:
    """Close ``resp`` and raise ``HTTPFetchError`` when a successful response carries an encoded body."""
    if not 200 <= resp.status_code < 300:
        return  # error and redirect bodies only ever feed messages, read raw
    why = encoding_problem(resp.headers)
    if why is None:
        return
    resp.close()
    raise HTTPFetchError(
        f"{what}: the server sent an encoded body ({why}) although only identity encoding was "
        f"accepted; refused, not decoded (the bytes would not be the stored file's)",
        status=resp.status_code,
        headers=resp.headers,
    )


def body_chunks(resp: requests.Response, chunk: int = 64 << 10) -> Iterator[bytes]:
    """A response body read under its request's budget (stall detection, deadline) when it has one.

    Always the bytes as sent, never decoded (see ``encoding_problem``).
    """
    budget = getattr(resp, "modelward_budget", None)
    if isinstance(budget, Budget):
        return budget.body(resp, chunk)
    return resp.raw.stream(chunk, decode_content=False)  # type: ignore[no-any-return]


def describe_status(resp: requests.Response) -> str:
    """A short, redacted description of an HTTP error response."""
    reason = resp.reason or ""
    return redact(f"HTTP {resp.status_code} {reason}".strip())
