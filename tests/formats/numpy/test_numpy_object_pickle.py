"""NUMPY-OBJECT-ARRAY is a warning only when the object array's pickle is not judged clean (issue #9).

An object array is loaded with np.load(allow_pickle=True), which unpickles its
data. When the scanner walked that pickle completely and the allowlist accepts
every global in it, the finding is low (the file is allowed); when the pickle is
truncated, unreadable or references anything unlisted, it stays medium beside
the pickle findings that block. Variants are written with numpy itself (saving
only; nothing here loads them) and by hand.
"""

from __future__ import annotations

import datetime
import decimal
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scanner.findings import Coverage, Decision, Severity
from tests.harness import EVIL_PICKLE, findings, rule_ids, scan_on_disk, verdict


def _saved(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npy(header: str, body: bytes) -> bytes:
    h = header.encode("latin-1")
    h = h + b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + body


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return buf.getvalue()


def _structured() -> np.ndarray:
    arr = np.zeros(2, dtype=[("n", "<i4"), ("o", "O")])
    arr["o"] = ["x", 3]
    return arr


BENIGN = {
    "strings_and_numbers": np.array(["a", 1, 2.5, None], dtype=object),
    "nested_lists_and_dicts": np.array([[1, 2], {"k": "v"}, (3, 4)], dtype=object),
    "stdlib_values": np.array([datetime.date(2024, 1, 2), decimal.Decimal("1.5"), {1, 2}], dtype=object),
    "structured_object_field": _structured(),
    "object_2d_fortran": np.asfortranarray(np.array([["a", "b"], ["c", None]], dtype=object)),
}


def _object_finding(fr):
    (f,) = findings(fr, "NUMPY-OBJECT-ARRAY")
    return f


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_object_array_is_low_and_allowed(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, _saved(BENIGN[name]), name=f"{name}.npy")
    f = _object_finding(fr)
    assert f.severity is Severity.LOW, f.message
    assert "analyzed in full" in f.message
    assert verdict(fr) is Decision.ALLOW
    assert fr.coverage is Coverage.FULL


def test_benign_object_member_of_npz_is_low(tmp_path: Path) -> None:
    blob = _npz({"w.npy": _saved(np.arange(3.0)), "o.npy": _saved(BENIGN["strings_and_numbers"])})
    fr = scan_on_disk(tmp_path, blob, name="mixed.npz")
    assert _object_finding(fr).severity is Severity.LOW
    assert verdict(fr) is Decision.ALLOW


def _with_unlisted_global() -> bytes:
    """np.save's own pickle with one element swapped for a class no profile lists (stored, not called)."""
    good = _saved(np.array(["MARKER"], dtype=object))
    marker = b"\x8c\x06MARKER"  # SHORT_BINUNICODE (np.save writes protocol 3+; numpy 2 uses 4)
    assert marker in good
    return good.replace(marker, b"cmylib.models\nThing\n")


def _truncated() -> bytes:
    good = _saved(BENIGN["nested_lists_and_dicts"])
    return good[: len(good) - 12]


def _not_a_pickle() -> bytes:
    return _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00\x01garbage")


RISKY = {
    "payload": _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", EVIL_PICKLE),
    "unlisted_class_stored": _with_unlisted_global(),
    "truncated_pickle": _truncated(),
    "not_a_pickle": _not_a_pickle(),
    "structured_payload": _npy(
        "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }", EVIL_PICKLE
    ),
}


@pytest.mark.parametrize("name", sorted(RISKY))
def test_object_array_not_judged_clean_stays_medium_and_does_not_pass(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, RISKY[name], name=f"{name}.npy")
    f = _object_finding(fr)
    assert f.severity is Severity.MEDIUM, f.message
    assert verdict(fr) is not Decision.ALLOW, sorted(rule_ids(fr))


def test_risky_member_of_npz_keeps_the_warning(tmp_path: Path) -> None:
    blob = _npz(
        {"good.npy": _saved(BENIGN["strings_and_numbers"]), "bad.npy": RISKY["unlisted_class_stored"]}
    )
    fr = scan_on_disk(tmp_path, blob, name="mixed.npz")
    sev = sorted(f.severity.value for f in findings(fr, "NUMPY-OBJECT-ARRAY"))
    assert sev == ["low", "medium"]
    assert verdict(fr) is Decision.BLOCK
