"""Apply helpers real libraries pickle (numpy.vectorize by scipy's discrete distributions, functools.partial by
river) are allowed only around allowlisted code: their function argument is judged as called."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import load_policy
from tests.harness import FIXTURES

ECOSYSTEM = FIXTURES / "ecosystem"
NEWOBJ_RANDINT = (
    b"cscipy.stats._discrete_distns\nrandint_gen\n)\x81"  # protocol-2 NEWOBJ: randint_gen.__new__
)


def _decision(tmp_path: Path, data: bytes) -> str:
    f = tmp_path / "x.pkl"
    f.write_bytes(data)
    report = scan_targets([str(f)], ScanOptions())
    return decide(report, load_policy("default")).decision.value


@pytest.mark.parametrize("path", ["scipy/frozen_randint.pkl", "legacy/scipy-1.13.1/frozen_randint.pkl"])
def test_real_frozen_randint_is_allowed(path: str) -> None:
    report = scan_targets([str(ECOSYSTEM / path)], ScanOptions())
    assert decide(report, load_policy("default")).decision.value == "allow"


@pytest.mark.parametrize(
    "payload",
    [
        b"cnumpy\nvectorize\n(cos\nsystem\ntR.",  # a denied callable
        b"cnumpy\nvectorize\n(cbuiltins\neval\ntR.",
        b"cnumpy\nvectorize\n(csubprocess\nPopen\ntR.",
        # the allowed bound method, but on an instance built by calling the class (not NEWOBJ)
        b"cnumpy\nvectorize\n(cbuiltins\ngetattr\n(cscipy.stats._discrete_distns\nrandint_gen\n)RS'_entropy'\ntRtR.",
        # another attribute of the same instance
        b"\x80\x02cnumpy\nvectorize\n(cbuiltins\ngetattr\n(" + NEWOBJ_RANDINT + b"S'rvs'\ntRtR.",
        # an unlisted callable: vectorize would call it
        b"cnumpy\nvectorize\n(cmypkg.helpers\nrun\ntR.",
    ],
)
def test_vectorize_around_anything_else_blocks(tmp_path: Path, payload: bytes) -> None:
    assert _decision(tmp_path, payload) == "block"


def test_vectorize_of_the_measured_bound_method_is_allowed(tmp_path: Path) -> None:
    data = b"\x80\x02cnumpy\nvectorize\n(cbuiltins\ngetattr\n(" + NEWOBJ_RANDINT + b"S'_entropy'\ntRtR."
    assert _decision(tmp_path, data) == "allow"


@pytest.mark.parametrize(
    "payload",
    [
        b"cfunctools\npartial\n(cos\nsystem\nS'id'\ntR.",
        b"cfunctools\npartial\n(cbuiltins\ngetattr\nS'x'\ntR.",
        b"cfunctools\npartial\n(cmypkg.x\ny\ntR.",
        # a newobj-only class handed to partial inside a defaultdict factory: called on the first missing key
        b"ccollections\ndefaultdict\n(cfunctools\npartial\n(cscipy.stats._discrete_distns\nrandint_gen\ntRtR.",
    ],
)
def test_partial_around_anything_else_blocks(tmp_path: Path, payload: bytes) -> None:
    assert _decision(tmp_path, payload) == "block"


def test_river_gaussian_nb_is_allowed() -> None:
    report = scan_targets([str(ECOSYSTEM / "river" / "gnb.pkl")], ScanOptions())
    assert decide(report, load_policy("default")).decision.value == "allow"
