"""Bounded-memory holding area for decompressed bytes, read back as a random-access Reader.

Inspectors need random access to a member (a zip inside a gzip, a pickle's
FRAME lengths, an npy header then its trailing bytes), but a deflated member
may inflate to gigabytes. A Spool keeps the first few MiB in memory and spills
the rest to an anonymous temporary file: peak memory stays near the spill
threshold whatever the member's size, and disk use is bounded by the callers'
size caps. The file is created unlinked (``tempfile.TemporaryFile``, mode 0600),
so nothing is left behind even if the process is killed; closing the Reader (or
dropping the last reference) releases it.
"""

from __future__ import annotations

import os
import tempfile

from .reader import Reader, ReaderError

SPOOL_MEMORY = 4 << 20  # bytes kept in memory before spilling to disk


class SpoolError(ReaderError):
    """Temporary storage failed (disk full, no writable temp dir): the member cannot be inspected."""


class Spool:
    """Append-only buffer: in memory up to ``mem_limit`` bytes, then in an unlinked temp file."""

    def __init__(self, name: str, mem_limit: int = SPOOL_MEMORY) -> None:
        self.name = name
        self.mem_limit = mem_limit
        self.size = 0
        self._buf = bytearray()
        self._fd = -1
        self._file: object | None = None  # keeps the TemporaryFile (and so its fd) alive

    @property
    def on_disk(self) -> bool:
        return self._fd >= 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; raises SpoolError if temporary storage fails."""
        n = len(data)
        if not n:
            return
        if self._fd < 0 and len(self._buf) + n <= self.mem_limit:
            self._buf += data
        else:
            if self._fd < 0:
                self._spill()
            self._write_all(memoryview(data).cast("B"))
        self.size += n

    def _spill(self) -> None:
        try:
            f = tempfile.TemporaryFile(prefix="modelward-spool-", buffering=0)
        except OSError as exc:
            raise SpoolError(f"{self.name}: cannot create a temporary file: {exc.strerror}") from None
        self._file = f
        self._fd = f.fileno()
        pending = self._buf
        self._buf = bytearray()
        self._write_all(memoryview(pending))

    def _write_all(self, view: memoryview) -> None:
        try:
            while len(view):
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            self.close()
            raise SpoolError(f"{self.name}: temporary storage failed: {exc.strerror}") from None

    def reader(self) -> SpoolReader:
        """A Reader over everything written; the Reader owns the storage from now on (close it when done)."""
        r = SpoolReader(self)
        self._file = None
        self._fd = -1
        self._buf = bytearray()
        return r

    def close(self) -> None:
        f, self._file, self._fd, self._buf = self._file, None, -1, bytearray()
        if f is not None:
            f.close()  # type: ignore[attr-defined]


class SpoolReader(Reader):
    """Random access to spooled bytes: memory for small content, pread on the temp file otherwise."""

    def __init__(self, spool: Spool) -> None:
        super().__init__()
        self.name = spool.name
        self.size = spool.size
        self._mem = memoryview(spool._buf if spool._fd < 0 else b"")
        self._file = spool._file
        self._fd = spool._fd
        self._closed = False

    @property
    def on_disk(self) -> bool:
        return self._fd >= 0

    def _read(self, offset: int, length: int) -> bytes:
        if self._closed:
            raise ReaderError(f"{self.name}: read after close")
        if self._fd < 0:
            return bytes(self._mem[offset : offset + length])
        try:
            out = os.pread(self._fd, length, offset)
            while len(out) < length:  # pread may return short on some filesystems
                more = os.pread(self._fd, length - len(out), offset + len(out))
                if not more:
                    break
                out += more
        except OSError as exc:
            raise ReaderError(f"{self.name}: temporary storage read error: {exc.strerror}") from None
        return out

    def close(self) -> None:
        self._closed = True
        f, self._file, self._fd, self._mem = self._file, None, -1, memoryview(b"")
        if f is not None:
            f.close()  # type: ignore[attr-defined]


def close_if_spooled(reader: Reader | None) -> None:
    """Release a member's temporary storage once it has been inspected (other readers are left alone)."""
    if isinstance(reader, SpoolReader):
        reader.close()
