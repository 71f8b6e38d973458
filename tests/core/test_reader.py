"""Readers: bytes-read accounting counts distinct bytes, slices stay inside their parent."""

from __future__ import annotations

import random

import pytest

from scanner.io.reader import BytesReader, ReaderError, SliceReader


def test_bytes_read_counts_distinct_bytes():
    rng = random.Random(7)
    r = BytesReader(bytes(5000), "x")
    covered: set[int] = set()
    for _ in range(3000):
        o, n = rng.randrange(0, 5000), rng.randrange(0, 200)
        r.read(o, n)
        covered.update(range(o, min(5000, o + n)))
        assert r.bytes_read == len(covered)
    assert r.bytes_read <= r.size


def test_sequential_reads_stay_one_span():
    r = BytesReader(bytes(1 << 16), "x")
    for off in range(0, 1 << 16, 100):
        r.read(off, 100)
    assert r.bytes_read == 1 << 16
    assert len(r._spans) == 1


def test_slice_outside_parent_is_refused():
    parent = BytesReader(b"abcdef", "p")
    with pytest.raises(ReaderError):
        SliceReader(parent, 4, 10, "m")
    s = SliceReader(parent, 2, 3, "m")
    assert s.read(0, 10) == b"cde"
    assert parent.bytes_read == 3
