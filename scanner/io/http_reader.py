"""A Reader over HTTP Range requests, so a remote checkpoint is judged from the few ranges inspectors ask for.

Inspectors make many small reads (a zip's central directory, a pickle cursor
walking opcodes); each would be a round trip. The reader therefore fetches
aligned blocks into a small LRU cache, merges nearby missing blocks into one
request, and grows a read-ahead window while reads stay sequential. It follows
the first redirect (a CDN) once and keeps the final URL. ``bytes_read`` counts
bytes that crossed the network, ``stats.requests`` every attempt.

Faults never pass silently: a dropped body is resumed from where it broke; a
wrong ``Content-Range``, a changed size or ETag, or a server that ignores
``Range`` on a large file raise ``ReaderError`` (the scan records a finding)
instead of returning wrong bytes or downloading gigabytes unasked. Each reader
has one network budget (``scanner.io.deadline``): a stalled or over-budget
transfer ends the read, and every transport fault is recorded in the
snapshot's ``FaultLog`` so the run ends with an error (exit 2), not a verdict.
Credentials go only to the origin of the URL they were given with, also when a
cached CDN URL is re-requested, a body is resumed or a request retried.
Whenever every byte of the file happens to pass through (small files, full
streams) the registry's digest claim is checked; disagreements are recorded in
``integrity_problems`` for the engine to turn into findings.

OCI blob reads reuse this class: pass the blob URL, the registry token as
``auth_headers`` (dropped on the redirect to storage) and the layer size.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator

import requests
from requests import Response
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from .deadline import NetworkDeadline
from .http_session import HTTPClient, HTTPFetchError, Stats, describe_status, redact, redact_url
from .reader import CHUNK, IntegrityProblem, Reader, ReaderError

BLOCK = 16 << 10  # small: isolated probes (format sniffers, zip records) cost little; read-ahead covers runs
CACHE_BYTES = 16 << 20
MAX_READAHEAD = 4 << 20
FULL_BODY_LIMIT = 32 << 20  # a server that ignores Range may send us at most this much unasked
BODY_RETRIES = 4
_COALESCE_GAP_BLOCKS = 2
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_BODY_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    Urllib3HTTPError,
    OSError,
)
# After a redirect, a cached CDN URL may expire (signed URLs); these statuses mean "ask the origin again".
_STALE_REDIRECT = frozenset({401, 403, 404, 410})


class FaultLog:
    """Transport faults of one snapshot: messages for the run's errors, and which files already failed.

    A file whose transfer failed is not fetched again by later opens in the same run (repository-level
    checks re-open files): one stalled or refusing server costs one budget, not one per inspector.
    """

    def __init__(self, errors: list[str] | None = None) -> None:
        self.errors = errors if errors is not None else []
        self.failed: dict[str, str] = {}

    def add(self, name: str, message: str) -> None:
        self.failed.setdefault(name, message)
        if message not in self.errors:
            self.errors.append(message)


def _etag(value: str | None) -> str | None:
    """An ETag as compared: stripped, without the weak ``W/`` prefix; None when absent or empty."""
    v = (value or "").strip()
    if v[:2] in ("W/", "w/"):
        v = v[2:]
    return v or None


def git_blob_sha1_prefix(size: int) -> bytes:
    return b"blob %d\0" % size


class _Digests:
    """sha256 and git-blob sha1 of a whole file, fed sequentially."""

    def __init__(self, size: int) -> None:
        self.sha256 = hashlib.sha256()
        self.sha1 = hashlib.sha1(git_blob_sha1_prefix(size), usedforsecurity=False)
        self.n = 0

    def update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        self.sha1.update(data)
        self.n += len(data)


class ContentWitness:
    """What every reader of one file saw, shared by them (a source opens a file once per inspector or check).

    A server may answer different bytes to different requests while keeping its ETag. Each reader records the
    sha256 of any whole pass and a keyed digest of each block it fetched (up to ``MAX_BLOCKS``); a later pass
    or block of another content, in any reader of the file, is refused as a change instead of one inspector
    judging one content and another inspector, or the digest, another.
    """

    MAX_BLOCKS = 2048  # 32 MiB of 16 KiB blocks, at most 32 KB of memory per file
    __slots__ = ("sha256", "change", "_key", "_indexes", "_digests", "_lock")

    def __init__(self) -> None:
        self.sha256: str | None = None
        self.change: str | None = None  # the first disagreement any reader saw
        self._key = os.urandom(16)  # the server cannot aim at a collision of digests it never sees
        # block indexes and their 8-byte digests side by side: a source keeps one witness per file it opened
        # for as long as the snapshot lives, so a dict (~100 bytes an entry) over thousands of files would not
        # fit the memory bound
        self._indexes = array("q")
        self._digests = bytearray()
        self._lock = threading.Lock()

    def _digest(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, digest_size=8, key=self._key).digest()

    def same_block(self, b: int, data: bytes) -> bool:
        """False when block ``b`` was seen with other bytes; records it otherwise (while there is room)."""
        d = self._digest(data)
        with self._lock:
            try:
                at = self._indexes.index(b) * 8
            except ValueError:
                if len(self._indexes) < self.MAX_BLOCKS:
                    self._indexes.append(b)
                    self._digests += d
                return True
            return self._digests[at : at + 8] == d

    def note_change(self, message: str) -> None:
        with self._lock:
            self.change = self.change or message

    def same_whole(self, sha256: str) -> str | None:
        """None when no other whole pass was seen or it matched, else the sha256 seen first."""
        with self._lock:
            if self.sha256 is None:
                self.sha256 = sha256
            return None if self.sha256 == sha256 else self.sha256


class _BlockCheck:
    """Holds a streamed span's bytes to the blocks already read from the cache's earlier answers.

    A stream is one more request for bytes inspectors may already hold: a server answering different bytes to
    different requests (or a file rewritten under a server that keeps its ETag) would have one inspector judge
    one content and another, or the digest, another. Every complete block the stream passes that is cached
    must be byte-identical (else ``REGISTRY-CONTENT-CHANGED``); a file small enough to keep whole is cached
    from the stream, so later reads and streams see these bytes and are not fetched again. Only blocks up to
    the last one that needs it are assembled: a large download with nothing cached costs nothing.
    """

    def __init__(self, reader: HTTPRangeReader, offset: int, end: int) -> None:
        self.r = reader
        bs = reader.block
        first, last = -(-offset // bs), (end - 1) // bs  # whole blocks only
        nblocks = (reader.size + bs - 1) // bs
        self.keep = nblocks <= reader.capacity // 2
        held = [b for b in reader._cache if first <= b <= last]
        upto = last if self.keep else (max(held) if held else first - 1)
        if reader.witness is not None:  # other readers of the file compare with what this one saw
            upto = max(upto, min(last, ContentWitness.MAX_BLOCKS - 1))
        self.stop = min(end, (upto + 1) * bs, reader.size)  # assemble bytes before this position only
        self.start = first * bs  # position of the block being assembled
        self.fed = self.start  # end of the bytes taken into buf
        self.buf = bytearray()

    def feed(self, pos: int, piece: bytes) -> None:
        hi = pos + len(piece)
        if self.fed >= self.stop or hi <= self.fed:
            return
        self.buf += piece[max(0, self.fed - pos) : self.stop - pos]
        self.fed = min(hi, self.stop)
        bs, size = self.r.block, self.r.size
        while len(self.buf) >= bs or (self.buf and self.start + len(self.buf) == size):
            n = min(bs, len(self.buf))
            self._settle(self.start // bs, bytes(self.buf[:n]))
            del self.buf[:n]
            self.start += n

    def _settle(self, b: int, data: bytes) -> None:
        cached = self.r._cache.get(b)
        if cached is None:
            if self.keep:
                self.r._put(b, data)  # checked against the witness there
            else:
                self.r._witness_block(b, data)
        elif cached != data:
            raise self.r._block_changed(b, data)


class HTTPRangeReader(Reader):
    remote = True

    def __init__(
        self,
        url: str,
        *,
        name: str,
        client: HTTPClient,
        size: int | None = None,
        auth_headers: dict[str, str] | None = None,
        stats: Stats | None = None,
        expected_sha256: str | None = None,
        expected_git_sha1: str | None = None,
        block_size: int = BLOCK,
        cache_bytes: int = CACHE_BYTES,
        max_readahead: int = MAX_READAHEAD,
        full_body_limit: int = FULL_BODY_LIMIT,
        body_retries: int = BODY_RETRIES,
        faults: FaultLog | None = None,
        witness: ContentWitness | None = None,
    ) -> None:
        super().__init__()
        self.witness = witness  # shared by every reader of the same file (see ContentWitness)
        self.url = url
        self.name = name
        self.client = client
        self.auth_headers = dict(auth_headers or {})
        self.stats = stats or Stats()
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.expected_git_sha1 = expected_git_sha1.lower() if expected_git_sha1 else None
        self.block = max(4096, block_size)
        self.capacity = max(4, cache_bytes // self.block)
        self.max_readahead = max_readahead
        self.full_body_limit = full_body_limit
        self.body_retries = body_retries
        # Transport faults (unreachable, stalled, out of time, refused): the scan could not complete. The
        # source hands in its snapshot's list so the run ends with an error (exit 2), not only a finding.
        self.faults = faults if faults is not None else FaultLog()
        if name in self.faults.failed:
            raise ReaderError(f"{self.faults.failed[name]} (not fetched again)")
        self.budget = client.budget(f"{name} ({redact_url(url)})")
        self.verified: dict[str, str] = {}  # algorithm -> hex, when every byte passed through and matched
        # validators of the file (ETag, Last-Modified): from the first answer, or preset by the source's probe
        self.etag: str | None = None
        self.last_modified: str | None = None
        self._validated = False
        self._sha256: str | None = None  # set when every byte passed through the reader
        self.final_url: str | None = None
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._full: bytes | None = None
        self._last_end = -1
        self._readahead = 0
        self._claimed_size = size
        if size is None:
            self.size = 1 << 62  # provisional, replaced by the probe below
            self._probe()
        else:
            self.size = size

    # ---- public -----------------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        return self.stats.requests

    def sha256(self) -> str | None:
        """The digest of every byte, when all of them passed through the reader (a small file, a full stream)."""
        return self._sha256

    def _account(self, offset: int, nbytes: int) -> None:
        """Network bytes are counted where they are fetched; cache hits are free."""

    def stream(self, offset: int = 0, length: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
        """One open-ended request for the span, resumed after drops; nothing cached. Whole-file streams verify."""
        end = self.size if length is None else min(self.size, offset + length)
        if offset >= end:
            return
        if self._full is not None:
            for pos in range(offset, end, chunk):
                yield self._full[pos : min(end, pos + chunk)]
            return
        digests = _Digests(self.size) if offset == 0 and end == self.size else None
        if all(b in self._cache for b in range(offset // self.block, (end - 1) // self.block + 1)):
            # already fetched (a sniffer read the whole small file): stream from the cache, not the network again
            for pos in range(offset, end, chunk):
                piece = self.read(pos, min(chunk, end - pos))
                if digests is not None:
                    digests.update(piece)
                yield piece
            if digests is not None:
                self._check_digests(digests)
            return
        blocks = _BlockCheck(self, offset, end)
        pos = offset
        for piece in self._fetch_iter(offset, end, whole_file_ok=True, chunk=chunk):
            if digests is not None:
                digests.update(piece)
            blocks.feed(pos, piece)
            pos += len(piece)
            yield piece
        if digests is not None:
            self._check_digests(digests)

    # ---- block cache ------------------------------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes:
        if self._full is not None:
            return self._full[offset : offset + length]
        end = offset + length
        first, last = offset // self.block, (end - 1) // self.block
        nblocks = last - first + 1
        if nblocks > self.capacity // 2:  # too big to cache: fetch exactly what was asked
            self._note_position(offset, end)
            return b"".join(self._fetch_iter(offset, end, whole_file_ok=False))
        have: dict[int, bytes] = {}
        missing: list[int] = []
        for b in range(first, last + 1):
            data = self._cache.get(b)
            if data is None:
                missing.append(b)
            else:
                self._cache.move_to_end(b)
                have[b] = data
        if missing:
            for run_start, run_end in self._plan(missing, offset, end):
                got = b"".join(
                    self._fetch_iter(
                        run_start * self.block, min(self.size, run_end * self.block), whole_file_ok=False
                    )
                )
                if self._full is not None:  # the server ignored Range and we took the whole (small) body
                    return self._full[offset:end]
                if run_start == 0 and len(got) == self.size:  # the whole file arrived: check the claims
                    digests = _Digests(self.size)
                    digests.update(got)
                    self._check_digests(digests)
                for i, b in enumerate(range(run_start, run_end)):
                    piece = got[i * self.block : (i + 1) * self.block]
                    self._put(b, piece)
                    if first <= b <= last:
                        have[b] = piece
        self._note_position(offset, end)
        buf = b"".join(have[b] for b in range(first, last + 1))
        skip = offset - first * self.block
        return buf[skip : skip + length]

    def _plan(self, missing: list[int], offset: int, end: int) -> list[tuple[int, int]]:
        """Runs of blocks to fetch: missing blocks merged across small gaps, the last one extended by read-ahead."""
        runs: list[list[int]] = []
        for b in missing:
            if runs and b - runs[-1][1] <= _COALESCE_GAP_BLOCKS:
                runs[-1][1] = b + 1
            else:
                runs.append([b, b + 1])
        sequential = offset == self._last_end
        self._readahead = min(self.max_readahead, max(self.block, self._readahead * 2)) if sequential else 0
        nblocks_total = (self.size + self.block - 1) // self.block
        if self._readahead:
            extra = self._readahead // self.block
            runs[-1][1] = min(nblocks_total, runs[-1][1] + extra)
            runs[-1][1] = min(runs[-1][1], runs[-1][0] + self.capacity // 2)
        return [(a, b) for a, b in runs]

    def _note_position(self, offset: int, end: int) -> None:
        self._last_end = end

    def _block_changed(self, b: int, data: bytes) -> ReaderError:
        first = b * self.block
        return self._content_changed(
            f"bytes {first}-{first + len(data) - 1} differ between two requests", {"block_offset": first}
        )

    def _witness_block(self, b: int, data: bytes) -> None:
        if self.witness is not None and not self.witness.same_block(b, data):
            raise self._block_changed(b, data)

    def _put(self, b: int, data: bytes) -> None:
        self._witness_block(b, data)
        self._cache[b] = data
        self._cache.move_to_end(b)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    # ---- HTTP -------------------------------------------------------------------------------------

    def _probe(self) -> None:
        """Learn the size (and cache block 0) with one ranged GET, for URLs whose size nobody claimed."""
        first = b"".join(self._fetch_iter(0, self.block, whole_file_ok=False, probing=True))
        if self._full is None:
            for i in range(0, len(first), self.block):
                self._put(i // self.block, first[i : i + self.block])

    def _fault(self, message: str) -> ReaderError:
        """Record a transport fault (the read could not complete) and return the error to raise."""
        message = redact(message)
        self.faults.add(self.name, message)
        return ReaderError(message)

    def _get(self, start: int, end: int) -> Response:
        """GET bytes [start, end) from the cached final URL, going back to the origin if that went stale.

        Credentials stay scoped to the origin of ``self.url`` (``auth_origin``): a cached CDN URL on another
        origin is requested without them, on every range read, resume and retry.
        """
        headers = {"Range": f"bytes={start}-{end - 1}"}
        target = self.final_url or self.url

        def send(url: str) -> Response:
            return self.client.request(
                "GET",
                url,
                headers=headers,
                auth_headers=self.auth_headers,
                auth_origin=self.url,
                stream=True,
                stats=self.stats,
                budget=self.budget,
            )

        try:
            resp = send(target)
            if self.final_url and resp.status_code in _STALE_REDIRECT:
                resp.close()
                self.final_url = None
                resp = send(self.url)
        except HTTPFetchError as exc:
            self._incomplete(start, end, str(exc))
            raise self._fault(f"{self.name}: {exc}") from None
        if resp.url and resp.url != self.url:
            self.final_url = resp.url
        return resp

    def _check_validator(self, resp: Response) -> None:
        """Every answer must carry the validators the first one had (or the source's probe): a file rewritten on
        the server between two reads is refused, not judged as a mix of two contents.

        An ETag that differs, or that a later answer drops, means another content. Without an ETag (many plain
        web servers send only ``Last-Modified``), a different ``Last-Modified`` does. A weak ``W/`` prefix is
        ignored (caches weaken strong ETags), and with a matching ETag ``Last-Modified`` is not compared.
        """
        raw_etag = (resp.headers.get("ETag") or "").strip() or None
        etag = _etag(raw_etag)
        modified = (resp.headers.get("Last-Modified") or "").strip() or None
        if not self._validated and self.etag is None and self.last_modified is None:
            self._validated = True
            self.etag, self.last_modified = raw_etag if etag else None, modified
            return
        self._validated = True
        evidence: dict[str, str | int] = {}
        if self.etag is not None and etag != _etag(self.etag):
            what = "ETag differs between requests" if etag else "a later answer has no ETag"
            evidence = {"first_etag": self.etag[:80], "later_etag": (etag or "")[:80]}
        elif self.etag is None and etag is None and None not in (self.last_modified, modified):
            if modified != self.last_modified:
                what = "Last-Modified differs between requests"
                evidence = {
                    "first_last_modified": (self.last_modified or "")[:80],
                    "later_last_modified": (modified or "")[:80],
                }
        if not evidence:
            if self.etag is None and etag is not None:
                self.etag = raw_etag  # the first validator seen from now on
            if self.last_modified is None:
                self.last_modified = modified
            return
        resp.close()
        raise self._content_changed(what, evidence)

    def _check_total(self, total: int, resp: Response) -> None:
        if self._claimed_size is None and self.size == 1 << 62:
            self.size = total
            return
        if total != self.size:
            resp.close()
            self._size_mismatch(total)

    def _size_mismatch(self, actual: int, *, cut_short: bool = False) -> None:
        served = f"more than {self.size}" if cut_short else str(actual)
        msg = f"server has {served} bytes but the registry claims {self.size}"
        self.integrity_problems.append(
            IntegrityProblem("REGISTRY-SIZE-MISMATCH", msg, {"claimed": self.size, "served": actual})
        )
        raise ReaderError(f"{self.name}: {msg}")

    def _incomplete(self, start: int, end: int, why: str) -> None:
        self.integrity_problems.append(
            IntegrityProblem(
                "REGISTRY-INCOMPLETE-READ",
                f"could not read bytes {start}-{end - 1}: {redact(why)}",
                {"start": start, "end": end},
            )
        )

    def _fetch_iter(
        self, start: int, end: int, *, whole_file_ok: bool, chunk: int = BLOCK, probing: bool = False
    ) -> Iterator[bytes]:
        """Yield bytes [start, end) in order, resuming after dropped connections."""
        pos = start
        drops = 0
        while pos < end:
            resp = self._get(pos, end)
            try:
                status = resp.status_code
                if status == 206:
                    a, b, total = self._content_range(resp, pos, end)
                    if total is not None:
                        self._check_total(total, resp)
                        end = min(end, self.size)
                    self._check_validator(resp)
                    want = min(end, b + 1) - pos
                elif status == 200:
                    yield from self._whole_body(resp, pos, end, whole_file_ok, probing)
                    return
                elif status == 416:
                    resp.close()
                    cr = resp.headers.get("Content-Range", "")
                    m = re.match(r"^\s*bytes\s+\*/(\d+)", cr)
                    if m and int(m.group(1)) != self.size:
                        self._size_mismatch(int(m.group(1)))
                    raise ReaderError(
                        f"{self.name}: range {pos}-{end - 1} not satisfiable ({describe_status(resp)})"
                    )
                else:
                    resp.close()
                    self._incomplete(pos, end, describe_status(resp))
                    raise self._fault(f"{self.name}: {describe_status(resp)} for {redact_url(self.url)}")
                got = 0
                try:
                    for piece in self.budget.body(resp, min(chunk, want) or 1):
                        if got + len(piece) > want:
                            piece = piece[: want - got]
                        got += len(piece)
                        pos += len(piece)
                        self._count(len(piece))
                        yield piece
                        if got >= want:
                            break
                except NetworkDeadline as exc:
                    self._incomplete(pos, end, str(exc))
                    self.client.mark_broken(resp.url or self.url, str(exc))
                    raise self._fault(str(exc)) from None
                except _BODY_ERRORS:
                    pass
                if got < want:
                    drops += 1
                    if drops > self.body_retries:
                        why = f"connection dropped {drops} times; {end - pos} bytes never arrived"
                        self._incomplete(pos, end, why)
                        raise self._fault(f"{self.name}: {why} ({redact_url(self.url)})")
                    self.stats.retries += 1
                    pause = self.client.retry.delay(drops - 1)
                    if pause > self.budget.remaining():
                        why = f"connection dropped at byte {pos}; the network time budget leaves no time to resume"
                        self._incomplete(pos, end, why)
                        raise self._fault(f"{self.name}: {why} ({redact_url(self.url)})")
                    self.client.sleep(pause)
            finally:
                resp.close()

    def _content_range(self, resp: Response, pos: int, end: int) -> tuple[int, int, int | None]:
        cr = resp.headers.get("Content-Range", "")
        m = _CONTENT_RANGE.match(cr)
        if not m:
            resp.close()
            raise ReaderError(
                f"{self.name}: 206 response with a missing or malformed Content-Range {cr[:80]!r}"
            )
        a, b = int(m.group(1)), int(m.group(2))
        total = None if m.group(3) == "*" else int(m.group(3))
        if a != pos or b < a or (total is not None and b >= total):
            resp.close()
            raise ReaderError(f"{self.name}: server answered bytes {a}-{b} to a request for {pos}-{end - 1}")
        return a, b, total

    def _whole_body(
        self, resp: Response, pos: int, end: int, whole_file_ok: bool, probing: bool
    ) -> Iterator[bytes]:
        """The server ignored Range and sends the whole file: take it only when small or when a download was asked."""
        self._check_validator(resp)
        clen = resp.headers.get("Content-Length")
        total = int(clen) if clen and clen.isdigit() else None
        if total is not None:
            if probing:
                self.size = total
            elif total != self.size:
                resp.close()
                self._size_mismatch(total)
        size = total if total is not None else (None if probing else self.size)
        small = size is not None and size <= self.full_body_limit
        if whole_file_ok and not small:
            yield from self._discard_then_stream(resp, pos, end)
            return
        if not small:
            resp.close()
            shown = f"{size}-byte" if size is not None else "unknown-size"
            raise self._fault(
                f"{self.name}: server ignores HTTP Range requests and would send the whole {shown} "
                f"file to read {end - pos} bytes; refusing (limit {self.full_body_limit} bytes)"
            )
        body = bytearray()
        try:
            for piece in self.budget.body(resp, BLOCK):
                body += piece
                self._count(len(piece))
                if size is not None and len(body) > size:  # more than the listed size: stop at once
                    resp.close()
                    self._size_mismatch(len(body), cut_short=True)
                if len(body) > self.full_body_limit:
                    raise ReaderError(
                        f"{self.name}: body exceeds {self.full_body_limit} bytes without a length"
                    )
        except NetworkDeadline as exc:
            self._incomplete(0, size or 0, str(exc))
            self.client.mark_broken(resp.url or self.url, str(exc))
            raise self._fault(str(exc)) from None
        except _BODY_ERRORS as exc:
            self._incomplete(0, size or 0, type(exc).__name__)
            raise self._fault(
                f"{self.name}: connection dropped while reading the whole body "
                f"(server ignores Range, so it cannot be resumed)"
            ) from None
        if probing and total is None:
            self.size = len(body)
        if len(body) != self.size:
            self._size_mismatch(len(body))
        self._full = bytes(body)
        digests = _Digests(self.size)
        digests.update(self._full)
        self._check_digests(digests)
        yield self._full[pos:end]

    def _discard_then_stream(self, resp: Response, pos: int, end: int) -> Iterator[bytes]:
        """A download through a server without Range: skip to ``pos`` (bytes before it are re-sent)."""
        seen = 0
        try:
            for piece in self.budget.body(resp, CHUNK):
                self._count(len(piece))
                lo, hi = seen, seen + len(piece)
                seen = hi
                if hi <= pos:
                    continue
                piece = piece[max(0, pos - lo) : min(len(piece), end - lo)]
                yield piece
                if hi >= end:
                    return
        except NetworkDeadline as exc:
            self._incomplete(seen, end, str(exc))
            self.client.mark_broken(resp.url or self.url, str(exc))
            raise self._fault(str(exc)) from None
        except _BODY_ERRORS:
            pass
        # A drop here cannot be resumed with Range; let the caller's generic retry decide.
        self._incomplete(seen, end, "connection dropped and the server does not support Range to resume")
        raise self._fault(
            f"{self.name}: connection dropped at byte {seen}; the server ignores Range, "
            f"so the download cannot be resumed"
        )

    def _count(self, n: int) -> None:
        self.bytes_read += n
        self.stats.bytes += n

    def _content_changed(self, what: str, evidence: dict[str, str | int]) -> ReaderError:
        """The file's content differs between two answers: a finding of this reader, and (through the shared
        witness) of the reader the file's verdict is bound to, whichever reader noticed; a run error too."""
        msg = f"the file changed on the server during the scan ({what})"
        self.integrity_problems.append(IntegrityProblem("REGISTRY-CONTENT-CHANGED", msg, evidence))
        if self.witness is not None:
            self.witness.note_change(msg)
        self.faults.add(self.name, redact(f"{self.name}: {msg}"))
        return ReaderError(f"{self.name}: {msg}")

    def changed(self) -> str | None:
        """Why the bytes inspectors got cannot be one content: another reader of the file (a repository check
        re-reading it) was answered different bytes, even if it swallowed the error."""
        return self.witness.change if self.witness is not None else None

    def _check_digests(self, d: _Digests) -> None:
        if d.n != self.size:
            return
        sha256, sha1 = d.sha256.hexdigest(), d.sha1.hexdigest()
        first = self._sha256 if self.witness is None else self.witness.same_whole(sha256)
        if first is not None and sha256 != first:
            # Two whole passes over the file brought different bytes: inspectors judged one, the digest
            # would name the other. Neither can be the file's.
            raise self._content_changed(
                "two whole reads of it have different sha256", {"first": first, "later": sha256}
            )
        if self.expected_sha256:
            if sha256 != self.expected_sha256:
                self.integrity_problems.append(
                    IntegrityProblem(
                        "REGISTRY-DIGEST-MISMATCH",
                        f"served bytes have sha256 {sha256}, the registry claims {self.expected_sha256}",
                        {"algorithm": "sha256", "claimed": self.expected_sha256, "actual": sha256},
                    )
                )
            else:
                self.verified["sha256"] = sha256
        if self.expected_git_sha1:
            if sha1 != self.expected_git_sha1:
                self.integrity_problems.append(
                    IntegrityProblem(
                        "REGISTRY-DIGEST-MISMATCH",
                        f"served bytes have git blob sha1 {sha1}, the registry claims {self.expected_git_sha1}",
                        {"algorithm": "git-sha1", "claimed": self.expected_git_sha1, "actual": sha1},
                    )
                )
            else:
                self.verified["git-sha1"] = sha1
        self._sha256 = sha256
