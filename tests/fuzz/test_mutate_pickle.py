"""Fuzz: truncations and bit flips of real and hostile pickles never escape, hang or pass silently."""

from __future__ import annotations

import pickle
import random
import time
import zlib

import pytest

from scanner.findings import Coverage
from tests.formats.pickle.assembler import DATA, Evil, scan

pytestmark = pytest.mark.fuzz

SEEDS = [p for p in sorted(DATA.iterdir()) if p.suffix in (".pkl", ".joblib", ".pt")]


def _samples() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in SEEDS]
    out.append(("evil_p0", pickle.dumps(Evil(), protocol=0)))
    out.append(("evil_p4", pickle.dumps({"x": [Evil()]}, protocol=4)))
    return out


def _check(data: bytes, name: str) -> None:
    t = time.monotonic()
    r = scan(data, name=name)  # an escaping exception fails the test
    assert time.monotonic() - t < 5
    assert not any(f.rule_id == "INSPECTOR-ERROR" for f in r.findings), [f.message for f in r.findings]
    # a malformed or limited pickle is never reported as fully judged
    if {f.rule_id for f in r.findings} & {"PICKLE-MALFORMED", "LIMIT-EXCEEDED"}:
        assert r.coverage is not Coverage.FULL


@pytest.mark.parametrize("name,data", _samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_truncations(name: str, data: bytes) -> None:
    step = max(1, len(data) // 60)
    for n in range(1, len(data), step):
        cut = data[:n]
        r = scan(cut, name=name)
        _check(cut, name)
        if r.format == "pickle" and n < len(data) - 1 and data.count(b".") == 1:
            assert r.coverage is Coverage.PARTIAL


@pytest.mark.parametrize("name,data", _samples(), ids=lambda v: v if isinstance(v, str) else "")
def test_bit_flips(name: str, data: bytes) -> None:
    rng = random.Random(zlib.crc32(name.encode()))  # fixed per sample, not per process
    for _ in range(60):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        _check(bytes(buf), name)


def test_payload_survives_tail_corruption() -> None:
    data = pickle.dumps(Evil(), protocol=4)
    rng = random.Random(7)
    for _ in range(50):
        tail = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        r = scan(data[:-1] + tail)
        assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in r.findings)
