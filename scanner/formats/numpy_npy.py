"""NumPy ``.npy`` arrays and ``.npz`` zips of them.

An object dtype (``descr`` 'O', alone or inside a structured dtype) means the
data section is a pickle that ``np.load(allow_pickle=True)`` unpickles; it is
analyzed as one. Numeric arrays must hold exactly shape x itemsize bytes. The
header is a Python dict literal: it is parsed by a tiny literal parser here,
never evaluated.
"""

from __future__ import annotations

import ast
import re
import struct
from typing import Any

from ..findings import Severity
from ..io.reader import Reader, SliceReader
from ._pickle_bridge import analyze_pickles
from .interface import FormatHandler, InspectContext
from .zip.listing import list_names, looks_like_zip
from .zip.members import inspect_all

MAGIC = b"\x93NUMPY"
MAX_HEADER_V1 = 0xFFFF
MAX_HEADER = 1 << 20  # numpy itself refuses headers over 10 000 bytes unless told otherwise
MAX_DIMS = 64
MAX_DIM = 1 << 62
MAX_EMPTY_ELEMENTS = 1 << 21  # elements of a zero-itemsize dtype (128 bytes each when materialised: 256 MB)


class HeaderError(ValueError):
    pass


# --------------------------------------------------------------------------- literal parser

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>[-+]?\d+)L?
      | (?P<name>True|False|None)
      | (?P<punct>[{}()\[\]:,])
    )""",
    re.VERBOSE,
)


def parse_literal(text: str, max_depth: int = 16) -> Any:
    """Dicts, tuples, lists, strings, ints, True/False/None: what an npy header may contain."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise HeaderError(f"unexpected character {text[pos]!r} in header")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    value, i = _parse(tokens, 0, max_depth)
    if i != len(tokens):
        raise HeaderError("trailing tokens after the header dict")
    return value


def _unquote(s: str) -> str:
    """A quoted string token's value with every Python escape (``\\x73``, ``\\u0073``, ``\\N{...}``, octal) decoded.

    numpy reads the header with ``ast.literal_eval``: a key or dtype spelled with escapes must read the same
    here, or the scanner judges a different header than the loader (a 'de\\x73cr' key that overrides descr).
    The token is one quoted literal (the tokenizer's match), so literal_eval sees nothing but that string.
    """
    if "\\" not in s:
        return s[1:-1]
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise HeaderError(f"bad string literal in header: {exc}") from None
    if not isinstance(value, str):
        raise HeaderError("header string literal is not a str")
    return value


def _parse(tokens: list[tuple[str, str]], i: int, depth: int) -> tuple[Any, int]:
    if depth <= 0:
        raise HeaderError("header nested too deeply")
    if i >= len(tokens):
        raise HeaderError("header ends early")
    kind, tok = tokens[i]
    if kind == "str":
        return _unquote(tok), i + 1
    if kind == "num":
        return int(tok), i + 1
    if kind == "name":
        return {"True": True, "False": False, "None": None}[tok], i + 1
    closer = {"{": "}", "(": ")", "[": "]"}.get(tok)
    if closer is None:
        raise HeaderError(f"unexpected {tok!r} in header")
    i += 1
    items: list[Any] = []
    pairs: list[tuple[Any, Any]] = []
    trailing_comma = False
    while True:
        if i >= len(tokens):
            raise HeaderError("header ends early")
        if tokens[i][1] == closer:
            i += 1
            break
        item, i = _parse(tokens, i, depth - 1)
        if tok == "{":
            if i >= len(tokens) or tokens[i][1] != ":":
                raise HeaderError("expected ':' in header dict")
            val, i = _parse(tokens, i + 1, depth - 1)
            if not isinstance(item, (str, int)):
                raise HeaderError("header dict key is not a string")
            pairs.append((item, val))
        else:
            items.append(item)
        trailing_comma = False
        if i < len(tokens) and tokens[i][1] == ",":
            i += 1
            trailing_comma = True
        elif i < len(tokens) and tokens[i][1] != closer:
            raise HeaderError("expected ',' in header")
    if tok == "{":
        return dict(pairs), i
    if tok == "(":
        if len(items) == 1 and not trailing_comma:
            return items[0], i  # a parenthesized value, not a tuple
        return tuple(items), i
    return items, i


# --------------------------------------------------------------------------- dtypes

_SIZES = {
    "b": 1,
    "B": 1,
    "?": 1,
    "h": 2,
    "H": 2,
    "i": 4,
    "I": 4,
    "l": 8,
    "L": 8,
    "q": 8,
    "Q": 8,
    "e": 2,
    "f": 4,
    "d": 8,
    "g": 16,
    "F": 8,
    "D": 16,
    "G": 32,
    "p": 8,
    "P": 8,
}
_KIND = re.compile(r"^[<>|=]?([biufcSUVOMmaw?])(\d*)(?:\[[^\]]*\])?$")


def dtype_info(descr: Any, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, has_object) of an npy ``descr``; raises HeaderError for what numpy would refuse."""
    if depth > 32:
        raise HeaderError("dtype nested too deeply")
    if isinstance(descr, str):
        if descr.lstrip("<>|=") in _SIZES:
            return _SIZES[descr.lstrip("<>|=")], False
        m = _KIND.match(descr)
        if not m:
            raise HeaderError(f"unknown dtype {descr[:50]!r}")
        kind, n = m.group(1), m.group(2)
        if kind == "O":
            return 8, True
        if kind in ("M", "m"):
            return 8, False
        if kind == "?":
            return 1, False
        size = int(n) if n else (0 if kind in "SUVaw" else None)
        if size is None:
            raise HeaderError(f"dtype {descr[:50]!r} has no size")
        if kind in ("U", "w"):
            size *= 4
        return size, False
    if isinstance(descr, list):  # structured: [(name, dtype[, shape]), ...]
        total, obj = 0, False
        for field in descr:
            if not isinstance(field, (tuple, list)) or len(field) < 2:
                raise HeaderError("malformed structured dtype field")
            size, o = dtype_info(field[1], depth + 1)
            if len(field) >= 3:
                shape = field[2] if isinstance(field[2], tuple) else (field[2],)
                size *= _prod(shape)
            total += size
            obj = obj or o
        return total, obj
    raise HeaderError(f"unsupported descr {str(descr)[:50]!r}")


def _prod(shape: Any) -> int:
    n = 1
    for d in shape:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0 or d > MAX_DIM:
            raise HeaderError(f"invalid dimension {str(d)[:30]!r}")
        n *= d
        if n > MAX_DIM:
            raise HeaderError("shape product overflows")
    return n


# --------------------------------------------------------------------------- npy


def _sniff_npy(head: bytes, reader: Reader) -> bool:
    return head.startswith(MAGIC)


def read_header(reader: Reader) -> tuple[dict[str, Any], int, tuple[int, int]]:
    """(header dict, data offset, version); raises HeaderError."""
    pre = reader.read(0, 12)
    if len(pre) < 10:
        raise HeaderError("file ends inside the magic")
    major, minor = pre[6], pre[7]
    if major == 1:
        (hlen,) = struct.unpack("<H", pre[8:10])
        start = 10
    elif major in (2, 3):
        if len(pre) < 12:
            raise HeaderError("file ends inside the header length")
        (hlen,) = struct.unpack("<I", pre[8:12])
        start = 12
    else:
        raise HeaderError(f"unknown npy version {major}.{minor}")
    if hlen > MAX_HEADER:
        raise HeaderError(f"header of {hlen} bytes exceeds {MAX_HEADER}")
    if start + hlen > reader.size:
        raise HeaderError("header runs past the end of the file")
    raw = reader.read(start, hlen)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
    except UnicodeDecodeError:
        raise HeaderError("header is not valid UTF-8") from None
    hdr = parse_literal(text)
    if not isinstance(hdr, dict) or set(hdr) != {"descr", "fortran_order", "shape"}:
        # numpy refuses any other key set (EXPECTED_KEYS != d.keys())
        raise HeaderError("header is not a dict of exactly descr, fortran_order and shape")
    if not isinstance(hdr["shape"], tuple):
        raise HeaderError("shape is not a tuple")
    if not isinstance(hdr["fortran_order"], bool):
        raise HeaderError("fortran_order is not a bool")
    return hdr, start + hlen, (major, minor)


def _inspect_npy(reader: Reader, ctx: InspectContext) -> None:
    try:
        hdr, data_at, version = read_header(reader)
        if len(hdr["shape"]) > MAX_DIMS:
            raise HeaderError(f"{len(hdr['shape'])} dimensions")
        count = _prod(hdr["shape"])
        itemsize, has_object = dtype_info(hdr["descr"])
        if itemsize == 0 and count > MAX_EMPTY_ELEMENTS:
            # V0 / [] / S0: np.load returns prod(shape) elements stored in 0 bytes instantly; every consumer that
            # iterates them (tolist, list, a loop) materialises an object per element
            raise HeaderError(f"{count} elements of a zero-size dtype {str(hdr['descr'])[:50]!r}")
    except (HeaderError, ValueError, RecursionError, struct.error) as exc:
        ctx.add("NUMPY-HEADER-INVALID", f"npy header rejected: {exc}"[:300])
        ctx.partial("npy header invalid; data not judged")
        # whatever follows a broken header may still be a pickle a lenient loader reads
        _scan_rest_for_pickle(reader, ctx)
        return
    remaining = reader.size - data_at
    if has_object:
        _inspect_object_data(reader, ctx, hdr, data_at, remaining)
        return
    expected = count * itemsize
    if expected != remaining:
        ctx.add(
            "NUMPY-SIZE-MISMATCH",
            f"shape {tuple(hdr['shape'])} x {itemsize} bytes = {expected}, but {remaining} bytes follow the header",
            offset=data_at,
            evidence={"expected": expected, "actual": remaining, "version": list(version)},
        )
        if remaining > expected:
            extra = SliceReader(reader, data_at + expected, remaining - expected, f"{ctx.path}!<trailing>")
            ctx.inspect_member(extra, "<trailing>")


def _inspect_object_data(
    reader: Reader, ctx: InspectContext, hdr: dict[str, Any], data_at: int, remaining: int
) -> None:
    """Analyze an object array's pickle, then say how much loading it with allow_pickle=True risks.

    The pickle is judged like any other (allowlist first), so a benign object array
    (strings, numbers, allowlisted types) is not a warning by itself: NUMPY-OBJECT-ARRAY
    stays medium unless the embedded pickle was walked completely, with full coverage
    and no finding above low (every global allowlisted); then it is low, with the reason.
    """
    descr = str(hdr["descr"])[:80]
    evidence = {"descr": str(hdr["descr"])[:200], "shape": list(hdr["shape"])[:16]}
    needs = f"object array ({descr}): np.load(allow_pickle=True) unpickles its data"
    if remaining <= 0:
        ctx.add("NUMPY-OBJECT-ARRAY", needs, evidence=evidence)
        ctx.add("NUMPY-SIZE-MISMATCH", "object array without a data section")
        return
    result = ctx.state.result
    seen, notes, coverage = len(result.findings), len(result.coverage_notes), result.coverage
    summary = analyze_pickles(
        SliceReader(reader, data_at, remaining, f"{ctx.path}!<object-data>"), ctx, member="<object-data>"
    )
    worst = max((f.severity.rank for f in result.findings[seen:]), default=Severity.INFO.rank)
    clean = (
        summary is not None
        and summary.complete
        and summary.pickle_count >= 1
        and worst <= Severity.LOW.rank
        and result.coverage is coverage
        and len(result.coverage_notes) == notes
    )
    if clean:
        ctx.add(
            "NUMPY-OBJECT-ARRAY",
            f"{needs}; that pickle was analyzed in full and references only allowlisted globals, "
            "so loading it runs no unlisted code",
            severity=Severity.LOW,
            evidence={**evidence, "pickle": "analyzed in full, every global allowlisted"},
        )
    else:
        why = (
            "it could not be analyzed in full"
            if summary is None
            or not summary.complete
            or result.coverage is not coverage
            or len(result.coverage_notes) != notes
            else "it references globals or patterns the allowlist does not accept (see the findings above)"
        )
        ctx.add("NUMPY-OBJECT-ARRAY", f"{needs}, and {why}", evidence=evidence)


def _scan_rest_for_pickle(reader: Reader, ctx: InspectContext) -> None:
    pre = reader.read(0, 12)
    if len(pre) < 10:
        return
    start = 10 if pre[6] == 1 else 12
    hlen = (
        struct.unpack("<H", pre[8:10])[0]
        if pre[6] == 1
        else struct.unpack("<I", pre[8:12].ljust(4, b"\0"))[0]
    )
    data_at = start + hlen
    if 0 < data_at < reader.size and reader.read(data_at, 1) == b"\x80":
        analyze_pickles(
            SliceReader(reader, data_at, reader.size - data_at, f"{ctx.path}!<data>"), ctx, member="<data>"
        )


# --------------------------------------------------------------------------- npz


def _sniff_npz(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    names = [n for n in list_names(reader) if not n.endswith("/")]
    return bool(names) and all(n.endswith(".npy") for n in names)


def _inspect_npz(reader: Reader, ctx: InspectContext) -> None:
    inspect_all(reader, ctx, "npz")


NUMPY_NPY = FormatHandler(
    "numpy-npy", _sniff_npy, _inspect_npy, family="numpy", claims=(".npy",), can_carry_code=True
)
NUMPY_NPZ = FormatHandler(
    "numpy-npz", _sniff_npz, _inspect_npz, family="numpy", claims=(".npz",), can_carry_code=True
)
