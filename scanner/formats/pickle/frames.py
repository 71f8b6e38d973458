"""Whether a pickle FRAME ends on an opcode boundary.

pickle.py refuses an opcode whose argument runs past the end of its frame ("pickle exhausted before end of
frame"); _pickle.c, reading from a file, drops what is left of the frame buffer and reads the argument from
the file after the frame, so the opcodes it runs next are not the ones a linear walk sees (cpython issue
154848). The walker reads linearly; this module finds the opcode that straddles a frame end by skipping
opcode lengths from the frame's first opcode, without decoding any value.
"""

from __future__ import annotations

from ...io.reader import Reader
from .opcodes import BY_BYTE, STOP, Arg

_FIXED = {Arg.NONE: 0, Arg.U1: 1, Arg.U2: 2, Arg.U4: 4, Arg.I4: 4, Arg.U8: 8, Arg.F8: 8}
_LEN = {Arg.BYTES_U1: 1, Arg.BYTES_U4: 4, Arg.BYTES_I4: 4, Arg.BYTES_U8: 8}
# per opcode byte: total size when fixed (>= 1), -w for a w-byte length prefix, 0 for newline-ended, None invalid
_SIZE: list[int | None] = [None] * 256
for _code, _op in enumerate(BY_BYTE):
    if _op is None or _code == STOP:
        continue
    if _op.arg in _FIXED:
        _SIZE[_code] = 1 + _FIXED[_op.arg]
    elif _op.arg in _LEN:
        _SIZE[_code] = -_LEN[_op.arg]
    else:
        _SIZE[_code] = 0
_CHUNK = 1 << 20
_SIGNED = frozenset(c for c, op in enumerate(BY_BYTE) if op is not None and op.arg is Arg.BYTES_I4)


def straddling_opcode(reader: Reader, start: int, end: int) -> int | None:
    """Offset of the opcode that begins before ``end`` and ends after it, walking from ``start`` (an opcode
    boundary); None when an opcode ends exactly at ``end``, or STOP or unreadable bytes come first (the walker
    reports those itself)."""
    pos = start
    limit = reader.size
    size = _SIZE
    while pos < end:
        base = pos
        buf = reader.read(pos, min(end - pos + 9, _CHUNK, limit - pos))
        stop = len(buf) - 9 if base + len(buf) < limit else len(buf)
        if stop <= 0:
            stop = len(buf)
        off = 0
        while off < stop and base + off < end:
            n = size[buf[off]]
            if n is None:
                return None
            at = off
            if n > 0:
                off += n
            elif n < 0:
                w = -n
                if off + 1 + w > len(buf):
                    return None
                ln = int.from_bytes(buf[off + 1 : off + 1 + w], "little", signed=buf[off] in _SIGNED)
                if ln < 0:
                    return None
                off += 1 + w + ln
            else:
                kind = BY_BYTE[buf[off]].arg  # type: ignore[union-attr]
                p = off + 1
                for _ in range(2 if kind is Arg.TWO_LINES else 1):
                    nl = buf.find(b"\n", p)  # in the chunk already read, else further on
                    if nl < 0:
                        nl = _find_newline(reader, base + max(p, len(buf)), limit) - base
                        if nl < 0:
                            return None
                    p = nl + 1
                off = p
            if base + off > end:
                return base + at
        pos = base + off
        if off == 0:
            return None
    return None


def _find_newline(reader: Reader, pos: int, limit: int) -> int:
    while pos < limit:
        chunk = reader.read(pos, min(1 << 16, limit - pos))
        if not chunk:
            return -1
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i
        pos += len(chunk)
    return -1
