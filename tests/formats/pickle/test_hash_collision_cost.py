"""Keys a pickle chooses to collide in hash must not make the scanner quadratic.

int and tuple hashes are not randomized: ``c + i * (2**61 - 1)`` are distinct ints with one hash, and so are
the 1-tuples holding them. The walker keeps dicts and sets as bounded lists (no hashing of pickled keys), but
it shared small int tuples and persistent ids through dicts keyed by the values themselves: 20 000 such
tuples took 9 s and 20 000 such persistent ids 19 s (quadratic; 200 000 ran into the file time limit).
Shared tuples are now keyed by their packed bytes and only ids holding a str/bytes (randomized hash) are
shared; 200 000 colliding keys of every kind take about 1-2 s (figures in the session report). A text PUT
index beyond Py_ssize_t is where _pickle.c raises (OverflowError), and so does the walker.
"""

from __future__ import annotations

import time

from scanner.findings import Severity
from tests.harness import inspect_bytes

M = (1 << 61) - 1
N = 30_000
BOUND = (
    10.0  # seconds; the quadratic walk took ~20 s (tuples) and ~45 s (ids) at this size, the linear ~0.3 s
)


def _long1(x: int) -> bytes:
    b = x.to_bytes((x.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def _batched(head: bytes, item: bytes, flush: bytes, tail: bytes, items: list[bytes]) -> bytes:
    out = bytearray(head)
    for i, it in enumerate(items):
        out += it + item
        if i % 1000 == 999:
            out += flush
    return bytes(out + tail)


def _timed(data: bytes) -> tuple[float, set[str]]:
    t = time.perf_counter()
    fr = inspect_bytes(data, "c.pkl")
    return time.perf_counter() - t, {f.rule_id for f in fr.findings}


def test_colliding_int_keys_in_dicts_and_sets_stay_linear() -> None:
    keys = [_long1(7 + (i + 1) * M) for i in range(N)]
    for data in (
        _batched(b"\x80\x04}(", b"N", b"u(", b"u.", keys),  # dict: key -> None
        _batched(b"\x80\x04\x8f(", b"", b"\x90(", b"\x90.", keys),  # set
        _batched(b"\x80\x04}(", b"\x85N", b"u(", b"u.", keys),  # dict of 1-tuple keys (shared tuples)
    ):
        took, _ = _timed(data)
        assert took < BOUND, took


def test_colliding_persistent_ids_stay_linear() -> None:
    keys = [_long1(7 + (i + 1) * M) for i in range(N)]
    took, rules = _timed(_batched(b"\x80\x04](", b"\x85Q", b"e(", b"e.", keys))
    assert took < BOUND, took
    assert "PICKLE-PERSISTENT-ID" in rules


def test_small_int_tuples_are_still_shared() -> None:
    """The cache still works for what checkpoints repeat (shapes/strides): one tuple object per distinct value."""
    from scanner.formats.pickle.cursor import Cursor
    from scanner.formats.pickle.walker import Budget, Machine
    from scanner.io.reader import BytesReader
    from scanner.limits import DEFAULT_LIMITS

    data = b"\x80\x04(" + b"K\x02K\x03\x86" * 100 + b"t."
    m = Machine(Cursor(BytesReader(data, "t")), DEFAULT_LIMITS, Budget(10**6), out_of_time=lambda: False)
    res = m.run()
    assert res.complete and len(m._tuples) == 1


def test_put_index_beyond_ssize_t_is_where_the_loader_raises() -> None:
    data = b"\x80\x04N" + b"p" + str(1 << 64).encode() + b"\n" + b"."
    fr = inspect_bytes(data, "p.pkl")
    assert any(f.rule_id == "PICKLE-MALFORMED" and f.severity >= Severity.HIGH for f in fr.findings)
