"""A buffered forward cursor over a Reader window.

Opcodes are read a byte or a few at a time; going to the Reader for each would
be slow, reading the stream whole would be unbounded. The cursor keeps one
chunk and can skip large blobs without reading them.
"""

from __future__ import annotations

from ...io.reader import Reader

CHUNK = 1 << 16


class Truncated(Exception):
    """The stream ended inside an opcode or its argument."""


class Cursor:
    def __init__(self, reader: Reader, start: int = 0, end: int | None = None) -> None:
        self.reader = reader
        self.end = reader.size if end is None else min(end, reader.size)
        self.pos = start
        self._buf = b""
        self._buf_start = start

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.pos)

    def _fill(self, need: int) -> None:
        """Make ``need`` bytes from ``pos`` available in the buffer (caller checked ``remaining``)."""
        off = self.pos - self._buf_start
        if 0 <= off and off + need <= len(self._buf):
            return
        n = min(max(need, CHUNK), self.end - self.pos)
        self._buf = self.reader.read(self.pos, n)
        self._buf_start = self.pos

    def byte(self) -> int:
        if self.pos >= self.end:
            raise Truncated("end of data")
        off = self.pos - self._buf_start
        if not (0 <= off < len(self._buf)):
            self._fill(1)
            off = 0
        self.pos += 1
        return self._buf[off]

    def peek(self) -> int | None:
        if self.pos >= self.end:
            return None
        b = self.byte()
        self.pos -= 1
        return b

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes; the length is checked against what remains before anything is read."""
        if n < 0 or n > self.remaining:
            raise Truncated(f"needs {n} bytes, {self.remaining} remain")
        if n == 0:
            return b""
        if n > CHUNK:
            data = self.reader.read(self.pos, n)
        else:
            self._fill(n)
            off = self.pos - self._buf_start
            data = self._buf[off : off + n]
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or n > self.remaining:
            raise Truncated(f"needs {n} bytes, {self.remaining} remain")
        self.pos += n

    def line(self, limit: int) -> bytes:
        """Bytes up to and excluding the next '\\n' (at most ``limit``); raises if none is found in time."""
        out = bytearray()
        while True:
            if self.pos >= self.end:
                raise Truncated("line not terminated")
            self._fill(1)
            off = self.pos - self._buf_start
            idx = self._buf.find(b"\n", off)
            if idx >= 0:
                out += self._buf[off:idx]
                self.pos += idx - off + 1
                if len(out) > limit:
                    raise LineTooLong(len(out))
                return bytes(out)
            out += self._buf[off:]
            self.pos += len(self._buf) - off
            if len(out) > limit:
                raise LineTooLong(len(out))


class LineTooLong(Exception):
    def __init__(self, n: int) -> None:
        super().__init__(f"text line longer than {n} bytes")
        self.length = n
