"""Truncations and bit flips of every container file: findings or a clean verdict, never a crash or a hang."""

from __future__ import annotations

import random
import time

import pytest

from scanner.findings import FileResult
from scanner.formats.base import InspectContext, ScanState
from scanner.formats.detect import inspect_with_detection
from scanner.io.reader import BytesReader
from scanner.limits import DEFAULT_LIMITS
from scanner.rules import get_rule_db

from .helpers import DATA, EVIL_PICKLE, Member, build_zip
from .test_torch_legacy import legacy_tar

MINE = ("pytorch-zip", "pytorch-legacy", "pytorch-legacy-tar", "torchscript", "numpy-npy", "numpy-npz", "zip-archive")


def inspect(blob: bytes) -> FileResult:
    result = FileResult(path="fuzz", size=len(blob), format="unknown")
    limits = DEFAULT_LIMITS
    state = ScanState(rules=get_rule_db(), limits=limits, result=result,
                      budget_left=limits.max_total_uncompressed, deadline=time.monotonic() + 30)
    inspect_with_detection(BytesReader(blob, "fuzz"), InspectContext(state, "fuzz"))
    return result


def samples() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted(DATA.iterdir()) if p.is_file()]
    out.append(("legacy.tar", legacy_tar()))
    out.append(("polyglot.pt", EVIL_PICKLE + (DATA / "state_dict.pt").read_bytes()))
    out.append(("deflated.zip", build_zip([Member("a.npy", (DATA / "numeric.npy").read_bytes(), method=8)])))
    return out


def _check(blob: bytes) -> None:
    t0 = time.monotonic()
    fr = inspect(blob)
    assert time.monotonic() - t0 < 10
    crashes = [f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR" and f.message.startswith(MINE)]
    assert not crashes, crashes


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_truncations(name, blob):
    cuts = sorted({1, 4, 8, 11, 22, 30, 64, len(blob) // 3, len(blob) // 2, len(blob) - 23, len(blob) - 1})
    for n in cuts:
        if 0 < n < len(blob):
            _check(blob[:n])


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_bit_flips(name, blob):
    rng = random.Random(f"{name}-{len(blob)}")
    for _ in range(150):
        mutated = bytearray(blob)
        for _ in range(rng.choice((1, 2, 8))):
            i = rng.randrange(len(mutated))
            mutated[i] ^= 1 << rng.randrange(8)
        _check(bytes(mutated))


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_field_smashing(name, blob):
    """Overwrite 4-byte fields near zip signatures with extreme values (sizes, offsets, counts)."""
    rng = random.Random(name)
    sig_positions = [i for i in range(len(blob) - 4) if blob[i : i + 2] == b"PK"] or [0]
    for _ in range(150):
        mutated = bytearray(blob)
        at = rng.choice(sig_positions) + rng.randrange(4, 46)
        val = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\x00\x00", b"\x00\x00\x00\x80"))
        mutated[at : at + 4] = val[: max(0, len(mutated) - at)]
        _check(bytes(mutated[: len(blob)]))
