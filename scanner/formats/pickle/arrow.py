"""Bounds of pyarrow's pickled ArrayData: the argument of ``pyarrow.lib._restore_array``.

``Array.__reduce__`` writes ``_restore_array((type, length, null_count, offset, buffers, children,
dictionary))`` and ``_restore_array`` hands it to ``CArrayData.MakeWithChildrenAndDictionary`` and
``MakeArray`` without validating it: a length or offset the buffers do not cover, or string/list offsets
pointing past their data, are out-of-bounds reads when the array is used (``to_pandas``, ``to_pylist``,
any compute kernel), and a null array of length 2**40 is an allocation when converted. The rule
(``arrow_array`` in gadgets.yaml) accepts what pyarrow writes: literal integer lengths, buffers made by
``pyarrow.lib.py_buffer`` over a bytes literal, types pyarrow pickles through ``type_for_alias``,
``list_``, ``large_list``, ``map_``, ``struct`` (of ``field``), ``timestamp``, ``decimal128``/``decimal256``,
``binary(width)`` and ``dictionary``, children whose type is the one their parent declares and whose length
covers the parent's slots, and buffer sizes (and, for literal offsets/indices buffers, their values) that
cover ``offset + length``. Anything else fails closed. Nothing is loaded; literals are only read.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from .values import Blob, Call, Glob, Seq, V

PY_BUFFER = "pyarrow.lib:py_buffer"
_BYTEARRAY = "builtins:bytearray"
_ENCODE = "_codecs:encode"
_ALIAS, _LIST, _DICT = "pyarrow.lib:type_for_alias", "pyarrow.lib:list_", "pyarrow.lib:dictionary"
_LARGE_LIST, _MAP, _STRUCT = "pyarrow.lib:large_list", "pyarrow.lib:map_", "pyarrow.lib:struct"
_FIELD, _TIMESTAMP, _BINARY = "pyarrow.lib:field", "pyarrow.lib:timestamp", "pyarrow.lib:binary"
#: decimal types pyarrow pickles as decimalN(precision, scale) -> bits per value
_DECIMAL_BITS = {"pyarrow.lib:decimal128": 128, "pyarrow.lib:decimal256": 256}
_MAX_DEPTH = 32
_CHUNK = 1 << 20  # values read at a time from a buffer too large to keep (a Blob: read from the file)

#: type_for_alias names -> bits per value of their one data buffer (after the validity bitmap)
_FIXED_BITS: dict[str, int] = {"bool": 1, "boolean": 1, "month_day_nano_interval": 128}
for _bits, _names in (
    (8, "i1 int8 u1 uint8"),
    (16, "i2 int16 u2 uint16 f2 halffloat float16"),
    (32, "i4 int32 u4 uint32 f4 float float32 date32 date32[day] time32[s] time32[ms]"),
    (
        64,
        "i8 int64 u8 uint64 f8 double float64 date64 date64[ms] time64[us] time64[ns] "
        "duration[s] duration[ms] duration[us] duration[ns]",
    ),
):
    _FIXED_BITS.update(dict.fromkeys(_names.split(), _bits))
#: variable-width binary layouts: offsets width in bytes
_VAR_OFFSETS = {
    **dict.fromkeys(("string", "str", "utf8", "binary"), 4),
    **dict.fromkeys(("large_string", "large_str", "large_utf8", "large_binary"), 8),
}
_INT_BITS = {n: b for n, b in _FIXED_BITS.items() if n[0] in "iu" and n not in ("u1", "i1")} | {
    "i1": 8,
    "u1": 8,
}

Problem = tuple[str, str]  # (anomaly kind: "allocation" | "gadget-argument", message)
Read = Callable[[int, int], bytes]  # (file offset, length) -> bytes, for buffers the walker did not keep
Buf = bytes | Blob | None


class _Refused(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_array_data(v: Any, max_bytes: int, read: Read) -> Problem | None:
    """What is wrong with ``v`` as the argument of ``_restore_array``, or None when pyarrow's bounds hold.

    ``read`` fetches the bytes of literals the walker kept only as a Blob (offsets and indices are checked by
    value, a chunk at a time).
    """
    try:
        _Arrays(max_bytes, read).array(v, 0)
    except _Refused as exc:
        return exc.kind, str(exc)
    return None


def _gadget(why: str) -> _Refused:
    return _Refused("gadget-argument", why)


def _items(v: Any, kind: str, what: str) -> list[Any]:
    if not (isinstance(v, Seq) and v.kind == kind and v.complete):
        raise _gadget(f"{what} is not a literal {kind} the analyzer kept whole")
    return list(v.items)


def _int(v: Any, what: str) -> int:
    if type(v) is not int:
        raise _Refused(
            "allocation", f"{what} is not an integer literal (a size computed at load time is unbounded)"
        )
    return v


def _call_of(v: Any, path: str) -> Call | None:
    if isinstance(v, Call) and isinstance(v.func, Glob) and v.func.rec.path == path and v.opcode == "REDUCE":
        return v
    return None


def _args(c: Call, n: int, what: str) -> list[Any]:
    a = _items(c.args, "tuple", f"the arguments of {what}")
    if len(a) != n:
        raise _gadget(f"{what} takes {n} arguments here, not {len(a)}")
    return a


Layout = tuple[str, int, list[Any]]  # (kind, bits | offsets bytes | list size | index bits, child types)


def _field_type(f: Any, what: str) -> Any:
    """The type of a ``field(name, type, nullable, metadata)`` as pyarrow pickles it."""
    c = _call_of(f, _FIELD)
    if c is None:
        raise _gadget(f"{what} is not a pyarrow.lib.field")
    return _args(c, 4, "field")[1]


def _layout(t: Any) -> Layout:
    """('fixed', bits) | ('var', offsets bytes) | ('null', 0) | ('list', offsets bytes, [value type]) |
    ('fixed_list', size, [value type]) | ('map', 4, [key type, item type]) | ('struct', 0, [field types]) |
    ('dict', index bits, [value type])."""
    c = _call_of(t, _ALIAS)
    if c is not None:
        name = _args(c, 1, "type_for_alias")[0]
        if name == "null":
            return "null", 0, []
        if isinstance(name, str) and name in _FIXED_BITS:
            return "fixed", _FIXED_BITS[name], []
        if isinstance(name, str) and name in _VAR_OFFSETS:
            return "var", _VAR_OFFSETS[name], []
        raise _gadget(f"array type type_for_alias({str(name)[:40]!r}) has no layout the analyzer bounds")
    c = _call_of(t, _LIST)
    if c is not None:
        a = _items(c.args, "tuple", "the arguments of list_")
        if len(a) == 1:
            return "list", 4, [_field_type(a[0], "the value field of list_")]
        if len(a) == 2 and type(a[1]) is int and a[1] >= 0:
            return "fixed_list", a[1], [a[0]]
        raise _gadget("list_ takes a value field, or a value type and a literal size")
    c = _call_of(t, _LARGE_LIST)
    if c is not None:
        return "list", 8, [_field_type(_args(c, 1, "large_list")[0], "the value field of large_list")]
    c = _call_of(t, _MAP)
    if c is not None:
        key, item = _args(c, 2, "map_")
        return (
            "map",
            4,
            [_field_type(key, "the key field of map_"), _field_type(item, "the item field of map_")],
        )
    c = _call_of(t, _STRUCT)
    if c is not None:
        fields = _items(_args(c, 1, "struct")[0], "list", "the fields of struct")
        return "struct", 0, [_field_type(f, "a field of struct") for f in fields]
    c = _call_of(t, _TIMESTAMP)
    if c is not None:
        _args(c, 2, "timestamp")  # (unit, tz): judged by the gadget rules of timestamp
        return "fixed", 64, []
    for path, bits in _DECIMAL_BITS.items():
        c = _call_of(t, path)
        if c is not None:
            _args(c, 2, path.rpartition(":")[2])
            return "fixed", bits, []
    c = _call_of(t, _BINARY)
    if c is not None:
        width = _args(c, 1, "binary")[0]
        if type(width) is not int or width < 0:
            raise _gadget("a fixed-size binary width is not a non-negative integer literal")
        return "fixed", 8 * width, []
    c = _call_of(t, _DICT)
    if c is not None:
        index, value, _ordered = _args(c, 3, "dictionary")
        ic = _call_of(index, _ALIAS)
        name = _args(ic, 1, "type_for_alias")[0] if ic is not None else None
        if not (isinstance(name, str) and name in _INT_BITS):
            raise _gadget("dictionary index type is not an integer type_for_alias")
        return "dict", _INT_BITS[name], [value]
    raise _gadget(
        "array type is not one pyarrow pickles (type_for_alias, list_, large_list, map_, struct, timestamp, "
        "decimal128, decimal256, binary, dictionary)"
    )


def _same(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two pickled type expressions are the same literal calls on the same literals."""
    if a is b:
        return True
    if depth > _MAX_DEPTH:
        return False
    if isinstance(a, Call) and isinstance(b, Call):
        return (
            isinstance(a.func, Glob)
            and isinstance(b.func, Glob)
            and a.func.rec.path == b.func.rec.path
            and a.opcode == b.opcode == "REDUCE"
            and _same(a.args, b.args, depth + 1)
        )
    if isinstance(a, Seq) and isinstance(b, Seq):
        return (
            a.kind == b.kind
            and a.complete
            and b.complete
            and len(a.items) == len(b.items)
            and all(_same(x, y, depth + 1) for x, y in zip(a.items, b.items, strict=True))
        )
    if isinstance(a, V) or isinstance(b, V):
        return False
    return type(a) is type(b) and a == b


def _buffer(v: Any, what: str) -> Buf:
    """None, the bytes of a literal buffer, or the Blob of one too large to keep."""
    if v is None:
        return None
    c = _call_of(v, PY_BUFFER)
    if c is None:
        raise _gadget(f"{what} is not pyarrow.lib.py_buffer over a bytes literal")
    src = _args(c, 1, "py_buffer")[0]
    inner = _call_of(src, _BYTEARRAY)
    if inner is not None:
        given = _items(inner.args, "tuple", "the arguments of bytearray")
        if not given:  # protocols 0-2 write an empty buffer as bytearray()
            return b""
        src = _args(inner, 1, "bytearray")[0]
    encoded = _call_of(
        src, _ENCODE
    )  # protocols 0-2 (torch.save) write bytes as _codecs.encode(str, 'latin1')
    if encoded is not None:
        text, codec = _args(encoded, 2, "_codecs.encode")
        if not (isinstance(text, str) and codec in ("latin1", "latin-1")):
            raise _gadget(f"{what} is not pyarrow.lib.py_buffer over a latin-1 encoded str literal")
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise _gadget(f"{what} does not encode to latin-1 (the loader raises)") from None
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    if isinstance(src, Blob) and src.offset >= 0 and src.kind in ("binbytes", "binbytes8", "bytearray8"):
        return src
    raise _gadget(f"{what} is not pyarrow.lib.py_buffer over a bytes literal")


def _size(b: Buf) -> int:
    return 0 if b is None else (b.length if isinstance(b, Blob) else len(b))


class _Arrays:
    def __init__(self, max_bytes: int, read: Read) -> None:
        self.max_bytes = max_bytes
        self.read = read

    def _bytes(self, b: Buf, start: int, n: int) -> bytes:
        if isinstance(b, Blob):
            data = self.read(b.offset + start, n)
            if len(data) != n:
                raise _gadget("a buffer literal could not be read back from the file")
            return data
        return b"" if b is None else b[start : start + n]

    def _ints(self, b: Buf, width: int, first: int, count: int) -> Iterator[array[int]]:
        """``count`` little-endian signed integers of ``width`` bytes from index ``first``, a chunk at a time."""
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[width]
        for at in range(first, first + count, _CHUNK):
            n = min(_CHUNK, first + count - at)
            vals = array(code, self._bytes(b, at * width, n * width))
            if sys.byteorder == "big":
                vals.byteswap()
            yield vals

    def _indices(self, bitmap: Buf, data: Buf, step: int, offset: int, n: int, size: int) -> None:
        """Every index of a valid (non-null) slot is inside the dictionary: kernels read dictionary[index]."""
        i = offset
        for chunk in self._ints(data, step, offset, n):
            bits = (
                self._bytes(bitmap, i >> 3, ((i + len(chunk) + 7) >> 3) - (i >> 3))
                if bitmap is not None
                else b""
            )
            base = i >> 3
            for k in chunk:
                if (bitmap is None or bits[(i >> 3) - base] >> (i & 7) & 1) and not 0 <= k < size:
                    raise _gadget(f"dictionary index {k} at slot {i} is outside the {size}-entry dictionary")
                i += 1

    def _offsets(self, b: Buf, width: int, offset: int, n: int, limit: int) -> None:
        """Offsets ``offset .. offset + n`` start at 0 or more, never decrease and end within ``limit``."""
        prev = 0
        for chunk in self._ints(b, width, offset, n + 1):
            if min(chunk) < 0 or max(chunk) > limit or chunk[0] < prev:
                raise _gadget(f"offsets point outside the {limit} values they index")
            if any(a > c for a, c in zip(chunk, chunk[1:], strict=False)):
                raise _gadget("offsets decrease")
            prev = chunk[-1]

    def _child(self, v: Any, expected: Any, depth: int) -> int:
        """Check a child (or dictionary) array whose type must be ``expected``; its length."""
        parts = _items(v, "tuple", "a child array's data")
        if not parts or not _same(parts[0], expected):
            raise _gadget("a child array's type is not the type its parent declares")
        return self.array(v, depth)

    def array(self, v: Any, depth: int) -> int:
        """Check one ArrayData tuple; its length."""
        if depth > _MAX_DEPTH:
            raise _gadget(f"array data nested deeper than {_MAX_DEPTH} levels")
        parts = _items(v, "tuple", "the array data")
        if len(parts) != 7:
            raise _gadget(f"the array data has {len(parts)} fields, not pyarrow's 7")
        t, length, nulls, offset, buffers, children, dictionary = parts
        length, nulls, offset = _int(length, "length"), _int(nulls, "null_count"), _int(offset, "offset")
        if length < 0 or offset < 0 or not -1 <= nulls <= length:
            raise _gadget(f"length {length}, null_count {nulls} and offset {offset} are out of range")
        end = offset + length
        kind, arg, types = _layout(t)
        bufs = [_buffer(b, f"buffer {i}") for i, b in enumerate(_items(buffers, "list", "the buffers"))]
        kids = _items(children, "list", "the children")
        want = {
            "null": 1,
            "fixed": 2,
            "var": 3,
            "list": 2,
            "map": 2,
            "dict": 2,
            "struct": 1,
            "fixed_list": 1,
        }[kind]
        want_kids = len(types) if kind == "struct" else (1 if kind in ("list", "map", "fixed_list") else 0)
        if len(bufs) != want or len(kids) != want_kids:
            raise _gadget(f"a {kind} array has {len(bufs)} buffers and {len(kids)} children")
        if (dictionary is not None) != (kind == "dict"):
            raise _gadget("a dictionary is given with a non-dictionary type, or missing")
        if kind == "null":
            if bufs[0] is not None:
                raise _gadget("a null array carries a buffer")
            if end > self.max_bytes:
                raise _Refused(
                    "allocation",
                    f"a null array of {end} elements (cap {self.max_bytes}) is allocated when converted",
                )
            return length
        if bufs[0] is not None and _size(bufs[0]) * 8 < end:
            raise _gadget(
                f"the validity bitmap ({_size(bufs[0])} bytes) does not cover offset + length = {end}"
            )
        if kind in ("fixed", "dict"):
            if _size(bufs[1]) * 8 < end * arg:
                raise _gadget(
                    f"the data buffer ({_size(bufs[1])} bytes) does not cover {end} values of {arg} bits"
                )
            if kind == "dict":
                size = self._child(dictionary, types[0], depth + 1)
                self._indices(bufs[0], bufs[1], arg // 8, offset, length, size)
            return length
        if kind == "struct":
            for kid, ty in zip(kids, types, strict=True):
                if self._child(kid, ty, depth + 1) < end:
                    raise _gadget(
                        f"a struct field array is shorter than the struct's offset + length = {end}"
                    )
            return length
        if kind == "fixed_list":
            if self._child(kids[0], types[0], depth + 1) < end * arg:
                raise _gadget(f"the values of a fixed-size list do not cover {end} lists of {arg}")
            return length
        if _size(bufs[1]) < (end + 1) * arg:
            raise _gadget(f"the offsets buffer ({_size(bufs[1])} bytes) does not cover {end + 1} offsets")
        if kind == "list":
            limit = self._child(kids[0], types[0], depth + 1)
        elif kind == "map":
            entries = _items(kids[0], "tuple", "a child array's data")
            ekind, _, etypes = _layout(entries[0]) if entries else ("", 0, [])
            if ekind != "struct" or len(etypes) != 2 or not all(map(_same, etypes, types)):
                raise _gadget("the entries of a map are not a struct of its key and item types")
            limit = self.array(kids[0], depth + 1)
        else:
            limit = _size(bufs[2])
        self._offsets(bufs[1], arg, offset, length, limit)
        return length
