"""Truncations and bit flips of every container file: findings or a clean verdict, never a crash or a hang."""

from __future__ import annotations

import time

import pytest

from scanner.limits import Limits
from tests.formats.builders import DATA, Member, build_zip
from tests.formats.torch.test_torch_legacy import legacy_tar
from tests.harness import EVIL_PICKLE, detect_bytes, mutations

pytestmark = pytest.mark.fuzz

LIMITS = Limits(file_seconds=30.0)
MINE = (
    "pytorch-zip",
    "pytorch-legacy",
    "pytorch-legacy-tar",
    "torchscript",
    "numpy-npy",
    "numpy-npz",
    "zip-archive",
)


def samples() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in sorted(DATA.iterdir()) if p.is_file()]
    out.append(("legacy.tar", legacy_tar()))
    out.append(("polyglot.pt", EVIL_PICKLE + (DATA / "state_dict.pt").read_bytes()))
    out.append(("deflated.zip", build_zip([Member("a.npy", (DATA / "numeric.npy").read_bytes(), method=8)])))
    return out


def _check(blob: bytes) -> None:
    t0 = time.monotonic()
    fr = detect_bytes(blob, "fuzz", LIMITS)
    assert time.monotonic() - t0 < 10
    crashes = [
        f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR" and f.message.startswith(MINE)
    ]
    assert not crashes, crashes


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_truncations(name, blob):
    cuts = {1, 4, 8, 11, 22, 30, 64, len(blob) // 3, len(blob) // 2, len(blob) - 23, len(blob) - 1}
    for _, mutated in mutations(blob, name, cuts=cuts):
        _check(mutated)


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_bit_flips(name, blob):
    for _, mutated in mutations(blob, f"{name}-{len(blob)}", flips=150, flips_per=(1, 2, 8)):
        _check(mutated)


@pytest.mark.parametrize("name,blob", samples(), ids=[n for n, _ in samples()])
def test_field_smashing(name, blob):
    """Overwrite 4-byte fields near zip signatures with extreme values (sizes, offsets, counts)."""
    sig_positions = [i for i in range(len(blob) - 4) if blob[i : i + 2] == b"PK"] or [0]
    fields = [p + k for p in sig_positions for k in range(4, 46) if p + k < len(blob)]
    extremes = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\x00\x00", b"\x00\x00\x00\x80")
    for _, mutated in mutations(blob, name, overwrites=150, at=fields, values=extremes):
        _check(mutated)
