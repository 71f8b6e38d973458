"""The structural msgpack walker: every length checked against the bytes that remain, nesting and item counts
capped, Flax array extensions checked against their shape and dtype; payloads skipped, never read.

Shared by the msgpack handler (``msgpack_file``), the thinc/spacy-transformers shim judge (``msgpack_shims``) and
the tree-model sniffers; it depends on none of them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ..findings import Severity
from ..io.reader import Reader

MAX_DEPTH = 256
MAX_ITEMS = 50_000_000
SNIFF_ITEMS = 4096
SNIFF_BYTES_CAP = 1 << 16
TIME_CHECK_EVERY = 1 << 16
FLAX_NDARRAY, FLAX_COMPLEX, FLAX_NPSCALAR = 1, 2, 3
MAX_NDIM = 64
MAX_NAME = 256  # longest map key the sniffer takes for a name
MIN_NAMES = 2  # names a partial walk must show before the file is claimed
HASH_KEYS = 16  # uint32/uint64 top-level keys a partial walk must show before a hash table is claimed
# dtype names numpy/jax write into Flax ndarray extensions, with their item sizes
DTYPE_SIZES = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3b11fnuz": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "float8_e3m4": 1,
    "float8_e4m3": 1,
    "float8_e8m0fnu": 1,
    "int4": 1,
    "uint4": 1,
    "int2": 1,
    "uint2": 1,
}


class MsgpackError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _SniffBudget(Exception):
    """The sniff walked enough of the head without an error."""


class _OutOfTime(Exception):
    pass


class _Buf:
    """Chunked random access over a Reader: the walk reads headers, never payloads."""

    CHUNK = 1 << 20

    def __init__(self, reader: Reader, chunk: int = CHUNK) -> None:
        self.r = reader
        self.chunk = chunk
        self.base = 0
        self.data = b""

    def get(self, pos: int, n: int) -> bytes:
        off = pos - self.base
        if 0 <= off and off + n <= len(self.data):
            return self.data[off : off + n]
        self.base = pos
        self.data = self.r.read(pos, max(n, self.chunk))
        return self.data[:n]


@dataclass
class WalkStats:
    items: int = 0
    max_depth: int = 0
    ext_codes: dict[int, int] = field(default_factory=dict)
    flax_arrays: int = 0
    root_kind: str = ""
    root_str_keys: bool = True
    root_entries: int = 0
    names: int = 0  # map keys that read as names (sniff only)
    bad_strs: int = 0  # str items that are not UTF-8, which Flax's msgpack_restore (raw=False) rejects
    # map keys that do not read as names: at the top anything else, below anything but a name or an int
    odd_keys: int = 0
    root_uint_keys: int = 0  # top-level keys that are uint32/uint64 (spaCy's hash -> row tables, sniff only)
    issues: list[tuple[str, int, Severity | None]] = field(
        default_factory=list
    )  # non-fatal (message, offset, severity)


def _u(b: bytes) -> int:
    return int.from_bytes(b, "big")


class Walker:
    """One msgpack object from ``pos`` within ``[pos, end)``; returns where it ends."""

    def __init__(
        self, buf: _Buf, *, max_items: int = MAX_ITEMS, sniff: bool = False, out_of_time=lambda: False
    ) -> None:  # type: ignore[no-untyped-def]
        self.buf = buf
        self.max_items = max_items
        self.sniff = sniff
        self.out_of_time = out_of_time
        self.stats = WalkStats()

    def _need(self, pos: int, n: int, end: int, what: str) -> bytes:
        if n > end - pos:
            raise MsgpackError(f"{what} needs {n} bytes, {max(end - pos, 0)} remain", pos)
        b = self.buf.get(pos, n)
        if len(b) != n:
            raise MsgpackError(f"{what} cut by the end of the file", pos)
        return b

    def _header(self, pos: int, end: int) -> tuple[str, int, int, int]:
        """(kind, header length, count or payload length, ext code) for the item at ``pos``."""
        t = self._need(pos, 1, end, "type byte")[0]
        if t <= 0x7F or t >= 0xE0:
            return "int", 1, 0, 0
        if 0x80 <= t <= 0x8F:
            return "map", 1, t & 0x0F, 0
        if 0x90 <= t <= 0x9F:
            return "array", 1, t & 0x0F, 0
        if 0xA0 <= t <= 0xBF:
            return "str", 1, t & 0x1F, 0
        if t in (0xC0, 0xC2, 0xC3):
            return "nil", 1, 0, 0
        if t == 0xC1:
            raise MsgpackError("reserved type byte 0xc1", pos)
        if t in (0xC4, 0xC5, 0xC6, 0xD9, 0xDA, 0xDB):
            w = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}[t]
            n = _u(self._need(pos + 1, w, end, "length"))
            return ("bin" if t <= 0xC6 else "str"), 1 + w, n, 0
        if t in (0xC7, 0xC8, 0xC9):
            w = {0xC7: 1, 0xC8: 2, 0xC9: 4}[t]
            hdr = self._need(pos + 1, w + 1, end, "ext header")
            return "ext", 2 + w, _u(hdr[:w]), struct.unpack("b", hdr[w:])[0]
        if t in (0xCA, 0xCB):
            return "float", 1 + (4 if t == 0xCA else 8), 0, 0
        if 0xCC <= t <= 0xD3:
            return "int", 1 + (1 << ((t - 0xCC) & 3)), 0, 0
        if 0xD4 <= t <= 0xD8:
            code = struct.unpack("b", self._need(pos + 1, 1, end, "ext code"))[0]
            return "ext", 2, 1 << (t - 0xD4), code
        if t in (0xDC, 0xDD):
            w = 2 if t == 0xDC else 4
            return "array", 1 + w, _u(self._need(pos + 1, w, end, "array length")), 0
        w = 2 if t == 0xDE else 4
        return "map", 1 + w, _u(self._need(pos + 1, w, end, "map length")), 0

    def walk(self, pos: int, end: int, *, top: bool = True) -> int:
        stack: list[list[int]] = []  # [items left, is_map, index] of open containers
        st = self.stats
        while True:
            st.items += 1
            if st.items > self.max_items:
                if self.sniff:
                    raise _SniffBudget
                raise OverflowError("item limit")
            if st.items % TIME_CHECK_EVERY == 0 and self.out_of_time():
                raise _OutOfTime
            if self.sniff and pos > SNIFF_BYTES_CAP:
                raise _SniffBudget
            start = pos
            kind, hlen, n, code = self._header(pos, end)
            if hlen > end - pos:
                raise MsgpackError(f"{kind} header needs {hlen} bytes, {end - pos} remain", pos)
            pos += hlen
            if top and stack and stack[-1][1] and stack[-1][2] % 2 == 0:
                if len(stack) == 1:
                    st.root_str_keys = st.root_str_keys and kind == "str"
                if self.sniff:
                    self._sniff_key(
                        kind, pos, n, end, root=len(stack) == 1, type_byte=self.buf.get(start, 1)[0]
                    )
            if kind in ("map", "array"):
                items = 2 * n if kind == "map" else n
                if items > end - pos:  # every item takes at least one byte
                    raise MsgpackError(
                        f"{kind} of {n} entries cannot fit in the {end - pos} bytes that remain", start
                    )
                if top and not stack:
                    st.root_kind, st.root_entries = kind, n
                if items:
                    if len(stack) + 1 > MAX_DEPTH:
                        raise MsgpackError(f"nesting deeper than {MAX_DEPTH} levels", start)
                    stack.append([items, kind == "map", 0])
                    st.max_depth = max(st.max_depth, len(stack))
                    continue
            elif kind in ("str", "bin", "ext"):
                if n > end - pos:
                    raise MsgpackError(f"{kind} of {n} bytes runs past the end ({end - pos} remain)", start)
                if kind == "ext":
                    st.ext_codes[code] = st.ext_codes.get(code, 0) + 1
                    if top and not self.sniff:
                        self._check_ext(code, pos, n)
                elif kind == "str" and n <= 4096:
                    try:
                        self.buf.get(pos, n).decode("utf-8")
                    except UnicodeDecodeError:
                        if self.sniff:
                            st.bad_strs += 1
                        else:
                            st.issues.append(("str is not valid UTF-8", start, Severity.MEDIUM))
                pos += n
            elif top and not stack:
                st.root_kind = kind
            # close every container this item completed
            while stack:
                stack[-1][0] -= 1
                stack[-1][2] += 1
                if stack[-1][0]:
                    break
                stack.pop()
            if not stack:
                return pos

    def _sniff_key(self, kind: str, pos: int, n: int, end: int, *, root: bool, type_byte: int) -> None:
        """Count a map key as a name (a short str or bin of printable or white-space characters: Flax
        parameter paths, msgpack-numpy's ``nd``/``shape``, spaCy's tokenizer exceptions ``"\\t"``) or as
        odd; ints are allowed below the top (id-keyed tables), and at the top only as uint32/uint64 (spaCy's
        ``vocab/key2row``: 64-bit string hashes), counted apart."""
        if kind in ("str", "bin") and n > end - pos:
            return  # cut by the end of the file: the walk fails on it next
        if kind in ("str", "bin") and 1 <= n <= MAX_NAME:
            try:
                text = self.buf.get(pos, n).decode("utf-8")
            except UnicodeDecodeError:
                text = ""
            if text and all(c.isprintable() or c.isspace() for c in text):
                self.stats.names += 1
                return
        if root and type_byte in (0xCE, 0xCF):
            self.stats.root_uint_keys += 1
            return
        if kind != "int" or root:
            self.stats.odd_keys += 1

    def _check_ext(self, code: int, pos: int, n: int) -> None:
        """Flax arrays: [shape, dtype name, raw bytes] whose size matches; complex: two floats."""
        if code not in (FLAX_NDARRAY, FLAX_COMPLEX, FLAX_NPSCALAR):
            return
        end = pos + n
        sub = Walker(self.buf, max_items=MAX_NDIM + 8, out_of_time=self.out_of_time)
        try:
            if code == FLAX_COMPLEX:
                stop = sub.walk(pos, end, top=False)
                if stop != end:
                    raise MsgpackError("complex extension has bytes after its value", stop)
                return
            self.stats.flax_arrays += 1
            self._check_ndarray(pos, end)
        except OverflowError:
            raise MsgpackError("Flax array extension has too many dimensions", pos) from None

    def _check_ndarray(self, pos: int, end: int) -> None:
        kind, hlen, n, _ = self._header(pos, end)
        if kind != "array" or n != 3:
            raise MsgpackError("Flax array extension is not [shape, dtype, data]", pos)
        pos += hlen
        kind, hlen, ndim, _ = self._header(pos, end)
        if kind != "array" or ndim > MAX_NDIM:
            raise MsgpackError("Flax array shape is not a short list", pos)
        pos += hlen
        dims = []
        for _ in range(ndim):
            kind, hlen, _n, _c = self._header(pos, end)
            raw = self._need(pos, hlen, end, "dimension")
            if kind != "int" or (raw[0] >= 0xE0 or raw[0] in (0xD0, 0xD1, 0xD2, 0xD3) and raw[1] & 0x80):
                raise MsgpackError("Flax array dimension is not a non-negative integer", pos)
            dims.append(raw[0] if hlen == 1 else _u(raw[1:]))
            pos += hlen
        kind, hlen, n, _ = self._header(pos, end)
        if kind not in ("str", "bin") or n > 64:
            raise MsgpackError("Flax array dtype is not a short name", pos)
        name = self._need(pos + hlen, n, end, "dtype").decode("ascii", "replace")
        pos += hlen + n
        kind, hlen, n, _ = self._header(pos, end)
        if kind != "bin":
            raise MsgpackError("Flax array data is not a bin", pos)
        if pos + hlen + n != end:
            raise MsgpackError("Flax array extension length does not match its content", pos)
        size = DTYPE_SIZES.get(name)
        if size is None:
            self.stats.issues.append(
                (f"Flax array dtype {name[:40]!r} is not a numeric dtype", pos, Severity.MEDIUM)
            )
            return
        want = math.prod(dims) * size
        if name in ("int4", "uint4", "int2", "uint2"):
            return  # packed sub-byte types: jax writes them unpacked or packed depending on version
        if want != n:
            raise MsgpackError(f"Flax array of shape {dims[:8]} {name} needs {want} bytes, data has {n}", pos)
