"""Red team 7: .npy/.npz arrays of a zero-size dtype with a huge shape.

A 128-byte ``.npy`` whose header says ``'descr': '|V0'`` (or ``[]``, ``'|S0'``) and ``'shape': (10**12,)``
holds ``shape x 0 = 0`` data bytes, so it matched its header and was allowed. ``np.load`` (numpy 2.4.6, also
inside an ``.npz``) returns a 10**12-element array at once; ``tolist()``, ``list()`` or a loop over it then
materialises an object per element (terabytes). Such a header is now ``NUMPY-HEADER-INVALID``; small
zero-size arrays, which numpy really writes, stay allowed.
"""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from scanner.findings import Decision
from tests.harness import rule_ids, scan_on_disk, verdict


def _npy(descr: str, shape: str) -> bytes:
    h = ("{'descr': " + descr + ", 'fortran_order': False, 'shape': " + shape + ", }").encode("latin-1")
    h += b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


@pytest.mark.parametrize(
    ("descr", "shape"),
    [("'|V0'", "(1000000000000,)"), ("[]", "(1000000, 1000000)"), ("'|S0'", "(4194304,)")],
)
def test_huge_zero_itemsize_npy_blocks(tmp_path, descr: str, shape: str) -> None:
    fr = scan_on_disk(tmp_path, _npy(descr, shape), name="x.npy")
    assert "NUMPY-HEADER-INVALID" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


def test_huge_zero_itemsize_npz_member_blocks(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.npy", _npy("'|V0'", "(1000000000000,)"))
    fr = scan_on_disk(tmp_path, buf.getvalue(), name="x.npz")
    assert "NUMPY-HEADER-INVALID" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


@pytest.mark.parametrize(("descr", "shape"), [("'|V0'", "(1000,)"), ("[]", "(5,)")])
def test_small_zero_itemsize_npy_stays_allowed(tmp_path, descr: str, shape: str) -> None:
    fr = scan_on_disk(tmp_path, _npy(descr, shape), name="x.npy")
    assert verdict(fr) is Decision.ALLOW, [(f.rule_id, f.message) for f in fr.findings]
