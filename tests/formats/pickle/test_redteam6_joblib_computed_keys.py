"""Red team 6: a joblib array wrapper whose BUILD state names an attribute twice, once as a ``numpy.str_``.

In the loader's state dict ``numpy.str_('shape')`` is the same key as ``'shape'`` (same hash, equal), so the
later pair wins: joblib reads an array of the computed shape, while the walker read the literal one and skipped
a different number of bytes. With ``'shape': (64,)`` then ``numpy.str_('shape'): (1,)`` the walker skipped 512
bytes as array data and joblib 1.6 ran the opcodes after the first 8 (``os.system``): the file was allowed. The
same key trick on ``dtype`` (f8 -> object: joblib reads a nested pickle) and ``numpy_array_alignment_bytes``
(no padding byte) moves joblib's position the other way. Confirmed with joblib 1.6 / numpy 2.4 ``joblib.load``
(each ran its canary). A computed key in the wrapper's state now makes the array size unknown (fail closed).
Nothing is unpickled here.
"""

from __future__ import annotations

import pytest

from scanner.findings import Coverage, Severity

from .assembler import U, scan, worst
from .test_redteam6_computed_names import numpy_str

F8 = U("numpy") + U("dtype") + b"\x93" + U("f8") + b"\x89\x88\x87R(K\x03" + U("<")
F8 += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
O8 = U("numpy") + U("dtype") + b"\x93" + U("O8") + b"\x89\x88\x87R(K\x03" + U("|")
O8 += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
PAYLOAD = b"cposix\nsystem\n(S'touch /tmp/mw-rt6-joblib'\ntR0"


def _wrapper(n: int, extra: bytes) -> bytes:
    """[NumpyArrayWrapper of n float64 with the state pairs ``extra`` added after the literal ones."""
    s = b"\x80\x04]" + U("joblib.numpy_pickle") + U("NumpyArrayWrapper") + b"\x93)\x81}("
    s += U("subclass") + U("numpy") + U("ndarray") + b"\x93"
    s += U("shape") + b"K" + bytes([n]) + b"\x85" + U("order") + U("C") + U("dtype") + F8
    s += U("allow_mmap") + b"\x89" + U("numpy_array_alignment_bytes") + b"K\x10" + extra + b"ub"
    return s


def _filler(body: bytes, size: int) -> bytes:
    """``body`` then NONE/POP pairs up to ``size`` bytes (the stack is unchanged)."""
    body += b"N0" * ((size - len(body)) // 2)
    return body + b"N0"[: size - len(body)]


def _shape_desync() -> bytes:
    # walker: pad byte 0, then 64 * 8 bytes of data; joblib: pad byte 0, 8 bytes, then the payload opcodes
    return (
        _wrapper(64, numpy_str("shape") + b"K\x01\x85")
        + b"\x00"
        + b"\x00" * 8
        + _filler(PAYLOAD, 504)
        + b"a."
    )


def _dtype_desync() -> bytes:
    # joblib reads a nested pickle right after BUILD (no padding byte); the walker skipped 1 + 8 * n bytes
    inner = b"\x80\x02" + PAYLOAD + b"N."
    n = len(inner) // 8 + 1
    return _wrapper(n, numpy_str("dtype") + O8) + inner + b"\x00" * (1 + 8 * n - len(inner)) + b"a."


def _alignment_desync() -> bytes:
    # walker: a padding byte L and L bytes, then 8; joblib (alignment None): 8 bytes, then the payload opcodes
    size = len(PAYLOAD) + 8
    return (
        _wrapper(1, numpy_str("numpy_array_alignment_bytes") + b"N")
        + bytes([size])
        + b"\x00" * 7
        + PAYLOAD
        + (b"\x00" * (1 + size - 8 - len(PAYLOAD)))
        + b"a."
    )


@pytest.mark.parametrize(
    "make", [_shape_desync, _dtype_desync, _alignment_desync], ids=["shape", "dtype", "alignment"]
)
def test_computed_wrapper_attribute_fails_closed(make) -> None:  # type: ignore[no-untyped-def]
    r = scan(make(), "model.joblib")
    assert worst(r) is not None and worst(r) >= Severity.HIGH, [(f.rule_id, f.message) for f in r.findings]
    assert r.coverage is Coverage.PARTIAL


def test_plain_wrapper_state_still_reads_the_array() -> None:
    data = _wrapper(2, b"") + b"\x00" + b"\x00" * 16 + b"a."
    r = scan(data, "model.joblib")
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]
