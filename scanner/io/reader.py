"""Random access to one artifact's bytes.

Inspectors ask for the ranges they need (a zip's central directory, a pickle
member, a safetensors header) so a remote multi-GB checkpoint can be judged
from a few kilobytes. Every Reader counts the bytes it fetched; that figure is
part of each report.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..integrity.errors import FileChangedError
from ..integrity.hashing import digest_fd_into, file_identity, open_regular

CHUNK = 1 << 20
SETTLE_NS = 20_000_000
"""File times come from a coarse clock (one kernel tick, <= 10 ms). A file changed less than this before
it was opened could change again within the same tick without moving its ctime, so the reader waits
until its identity is older than this before trusting it to reveal later writes."""


class ReaderError(Exception):
    """The bytes could not be read (I/O error, truncated remote body, timeout)."""


@dataclass
class IntegrityProblem:
    """A disagreement between what the registry claims and what was served; becomes a REGISTRY-* finding."""

    rule_id: str
    message: str
    evidence: dict[str, str | int] = field(default_factory=dict)


class Reader(ABC):
    name: str
    size: int
    remote: bool = False  # every read costs a round trip: sniffers keep probes few

    def __init__(self) -> None:
        self.bytes_read = 0
        self._spans: list[tuple[int, int]] = []  # merged [start, end) ranges already counted
        # claims the served bytes contradicted (digest, size), found while reading; remote readers fill it
        self.integrity_problems: list[IntegrityProblem] = []

    def sha256(self) -> str | None:
        """SHA-256 of the whole content when this reader knows it, else None.

        A remote reader knows it only when every byte happened to pass through;
        a local file finishes hashing through its descriptor (``FileReader``).
        """
        return None

    def changed(self) -> str | None:
        """Why the content is no longer what was opened, or None; asked after inspection.

        Readers whose every read is pinned to one content (a commit, a digest, an If-Match) keep None;
        a local file and an unpinned object-store object compare their identity now with the one they opened.
        """
        return None

    @abstractmethod
    def _read(self, offset: int, length: int) -> bytes: ...

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; short only at end of data."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        if offset >= self.size or length == 0:
            return b""
        length = min(length, self.size - offset)
        data = self._read(offset, length)
        self._account(offset, len(data))
        if len(data) != length:
            raise ReaderError(f"{self.name}: short read at offset {offset} ({len(data)} of {length} bytes)")
        return data

    def _account(self, offset: int, nbytes: int) -> None:
        """Count distinct bytes read: a report says how much of a file was needed, not how often.

        Readers that fetch in blocks (HTTP) count at the fetch instead.
        """
        if nbytes <= 0:
            return
        start, end = offset, offset + nbytes
        spans = self._spans
        i = bisect.bisect_left(spans, (start, start))
        if i > 0 and spans[i - 1][1] >= start:
            i -= 1
        j = i
        new = 0
        cursor = start
        while j < len(spans) and spans[j][0] <= end:
            s0, e0 = spans[j]
            if s0 > cursor:
                new += s0 - cursor
            cursor = max(cursor, e0)
            start, end = min(start, s0), max(end, e0)
            j += 1
        if cursor < offset + nbytes:
            new += offset + nbytes - cursor
        spans[i:j] = [(start, end)]
        self.bytes_read += new

    def stream(self, offset: int = 0, length: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
        end = self.size if length is None else min(self.size, offset + length)
        pos = offset
        while pos < end:
            n = min(chunk, end - pos)
            yield self.read(pos, n)
            pos += n

    def head(self, n: int) -> bytes:
        return self.read(0, min(n, self.size))

    def tail(self, n: int) -> bytes:
        n = min(n, self.size)
        return self.read(self.size - n, n)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileReader(Reader):
    """A local file read with pread; never mapped or loaded whole.

    A verdict must be about the bytes it names, so the reader binds the two: it records the file's
    identity (device, inode, size, mtime, ctime) when it opens, hashes the bytes the inspectors read
    in order as they pass, and :meth:`sha256` finishes the digest through the same descriptor and
    then proves the file (and the path) still have that identity. Any write in between moves the
    ctime, which ``os.utime`` cannot restore.
    """

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.name = name or self.path
        try:
            self._fd = open_regular(self.path)  # a FIFO or device swapped in since listing: error, not a hang
        except OSError as exc:
            raise ReaderError(f"{self.name}: cannot open: {exc.strerror}") from None
        st = self._settle(os.fstat(self._fd))
        self.identity = file_identity(st)
        self.size = st.st_size
        self._hasher = hashlib.sha256()
        self._hashed_to = 0  # bytes [0, _hashed_to) are in _hasher, exactly as the inspectors got them
        self._digest: str | None = None

    def _settle(self, st: os.stat_result) -> os.stat_result:
        """Wait (at most a few ticks) until the ctime is old enough that a later write must move it."""
        for _ in range(5):
            age = time.time_ns() - st.st_ctime_ns
            if age >= SETTLE_NS or age < -SETTLE_NS * 50:  # settled, or a clock set back: waiting won't help
                break
            time.sleep((SETTLE_NS - max(age, 0)) / 1e9)
            st = os.fstat(self._fd)
        return st

    def _read(self, offset: int, length: int) -> bytes:
        try:
            first = os.pread(self._fd, length, offset)
            if len(first) == length or not first:
                self._hash_through(offset, first)
                return first  # the usual case: one read, one copy
            out = bytearray(first)
            while len(out) < length:
                chunk = os.pread(self._fd, length - len(out), offset + len(out))
                if not chunk:
                    break
                out += chunk
        except OSError as exc:
            raise ReaderError(f"{self.name}: read error at offset {offset}: {exc.strerror}") from None
        data = bytes(out)
        self._hash_through(offset, data)
        return data

    def _hash_through(self, offset: int, data: bytes) -> None:
        """Extend the running digest with bytes the inspectors just got, when they continue it."""
        if self._digest is None and offset <= self._hashed_to < offset + len(data):
            self._hasher.update(memoryview(data)[self._hashed_to - offset :])
            self._hashed_to = offset + len(data)

    def changed(self) -> str | None:
        """Why the file is no longer what was opened (descriptor or path), or None if it is unchanged."""
        try:
            now = file_identity(os.fstat(self._fd))
        except OSError as exc:
            return f"cannot stat the open file: {exc.strerror}"
        if now != self.identity:
            return _describe_change(self.identity, now)
        try:
            at_path = file_identity(os.stat(self.path))
        except OSError:
            return "the path was removed or replaced while scanned"
        if at_path != self.identity:
            return "the path now names " + (
                "another file"
                if at_path[:2] != self.identity[:2]
                else "changed content: " + _describe_change(self.identity, at_path)
            )
        return None

    def sha256(self) -> str:
        """Digest of the whole file as opened: what the inspectors read plus the rest, same descriptor.

        Raises :class:`FileChangedError` if the file or its path changed at any time since opening,
        so the digest is always of the bytes that were inspected.
        """
        if self._digest is None:
            try:
                digest_fd_into(self._hasher, self._fd, self._hashed_to, self.size)
            except OSError as exc:
                raise ReaderError(f"{self.name}: read error while hashing: {exc.strerror}") from None
            except FileChangedError:
                raise FileChangedError(f"{self.name} changed while scanned: it ended early") from None
            self._hashed_to = self.size
            self._digest = self._hasher.hexdigest()
        why = self.changed()
        if why:
            raise FileChangedError(f"{self.name} changed while scanned: {why}")
        return self._digest

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _describe_change(old: tuple[int, ...], new: tuple[int, ...]) -> str:
    names = ("device", "inode", "size", "mtime", "ctime")
    return (
        ", ".join(f"{n} {a} -> {b}" for n, a, b in zip(names, old, new, strict=True) if a != b)
        or "identity differs"
    )


class BytesReader(Reader):
    """In-memory bytes, e.g. a decompressed archive member."""

    def __init__(self, data: bytes | bytearray | memoryview, name: str) -> None:
        super().__init__()
        self._data = memoryview(data)
        self.name = name
        self.size = len(self._data)

    def _read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])


class SliceReader(Reader):
    """A window onto another reader (a STORED zip member, a tar member): zero copy, counts into the parent."""

    def __init__(self, parent: Reader, start: int, length: int, name: str) -> None:
        super().__init__()
        if start < 0 or length < 0 or start + length > parent.size:
            raise ReaderError(
                f"{name}: member range {start}+{length} lies outside {parent.name} ({parent.size} bytes)"
            )
        self.parent = parent
        self.remote = parent.remote
        self.start = start
        self.size = length
        self.name = name

    def _read(self, offset: int, length: int) -> bytes:
        return self.parent.read(self.start + offset, length)


class ReaderIO(io.RawIOBase):
    """A file-like view of a Reader for libraries that want one (py7zr, h5py, tarfile)."""

    def __init__(self, reader: Reader) -> None:
        self._r = reader
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._r.size + offset
        self._pos = max(0, self._pos)
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        data = self._r.read(self._pos, len(b))
        n = len(data)
        b[:n] = data
        self._pos += n
        return n
