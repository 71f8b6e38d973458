"""Single files at ``https://…`` URLs, optionally pinned with ``#sha256=<hex>``.

Plain ``http://`` is refused unless explicitly allowed (``allow_http=True``,
``--allow-http``): anyone on the path can swap the bytes. Credentials in the
URL (userinfo, token-like query parameters) are used but never shown: the
snapshot's target and every message carry the redacted URL.
"""

from __future__ import annotations

import base64
import posixpath
import re
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ..io.http_reader import ContentWitness, FaultLog, HTTPRangeReader
from ..io.http_session import SECRET_PARAMS, HTTPClient, Stats, redact, redact_url, register_secret
from ..io.reader import ReaderError
from .base import Artifact, Snapshot, Source, SourceError

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def split_url(raw: str) -> tuple[str, str | None, dict[str, str], str]:
    """(fetch URL without userinfo/fragment, expected sha256, auth headers, display URL). Registers secrets."""
    try:
        p = urlsplit(raw)
        _ = p.port
    except ValueError:
        raise SourceError(f"{redact_url(raw)}: malformed URL") from None
    if not p.hostname:
        raise SourceError(f"{redact_url(raw)}: URL has no host")
    expected: str | None = None
    if p.fragment:
        for key, val in parse_qsl(p.fragment, keep_blank_values=True):
            if SECRET_PARAMS.match(key):  # never shown, like a query's (a fragment is not sent, but printed)
                register_secret(val)
            if key.lower() == "sha256":
                if not _SHA256.match(val):
                    raise SourceError(f"{redact_url(raw)}: #sha256= needs 64 hex digits")
                expected = val.lower()
    headers: dict[str, str] = {}
    netloc = p.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        user, password = unquote(user), unquote(password)
        cred = base64.b64encode(f"{user}:{password}".encode()).decode()
        for s in (userinfo, password, cred, user if password else ""):
            register_secret(s)
        headers["Authorization"] = f"Basic {cred}"
    for key, val in parse_qsl(p.query, keep_blank_values=True):
        if SECRET_PARAMS.match(key):
            register_secret(val)
    fetch = urlunsplit((p.scheme, netloc, p.path or "/", p.query, ""))
    display = redact_url(urlunsplit((p.scheme, netloc, p.path or "/", p.query, p.fragment)))
    return fetch, expected, headers, display


class URLSource(Source):
    def __init__(self, allow_http: bool = False, client: HTTPClient | None = None, **_other: object) -> None:
        self.allow_http = allow_http
        self.client = client or HTTPClient(allow_http=allow_http)
        self.stats = Stats()

    def resolve(self, target: str) -> Snapshot:
        scheme = target.split("://", 1)[0].lower()
        if scheme == "http" and not self.allow_http:
            raise SourceError(
                f"{redact_url(target)}: plain http is refused (anyone on the path can change the "
                f"bytes); use https, or pass --allow-http"
            )
        if scheme not in ("http", "https"):
            raise SourceError(f"{redact_url(target)}: not an http(s) URL")
        fetch, expected, auth, display = split_url(target)
        name = posixpath.basename(unquote(urlsplit(fetch).path)) or "download"
        witness = ContentWitness()  # every reader of this file must see one content
        try:
            probe = HTTPRangeReader(
                fetch,
                name=name,
                client=self.client,
                auth_headers=auth,
                stats=self.stats,
                expected_sha256=expected,
                witness=witness,
            )
        except ReaderError as exc:
            raise SourceError(redact(f"{display}: {exc}")) from None
        size, etag, modified = probe.size, probe.etag, probe.last_modified
        resolved = (
            f"sha256:{expected}"
            if expected
            else redact_url(probe.final_url or fetch) + (f" etag {etag}" if etag else "")
        )
        first = [probe]
        faults = FaultLog()  # transport faults while reading: the scan could not complete
        probe.faults = faults

        def opener() -> HTTPRangeReader:
            if first:
                return first.pop()  # the probe already holds the first block
            reader = HTTPRangeReader(
                fetch,
                name=name,
                client=self.client,
                size=size,
                auth_headers=auth,
                stats=self.stats,
                expected_sha256=expected,
                faults=faults,
                witness=witness,
            )
            # a later open (a repository check re-reading the file) must see the content the probe saw
            reader.etag, reader.last_modified = etag, modified
            return reader

        art = Artifact(path=name, size=size, opener=opener, claimed_sha256=expected)
        if etag:
            art.info = {"etag": etag.strip('"')[:128]}
        return Snapshot(
            target=display, kind="url", resolved=resolved, root=display, artifacts=[art], errors=faults.errors
        )
