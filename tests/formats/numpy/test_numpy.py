"""NumPy .npy / .npz: header parsing (never eval), object arrays, size checks."""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Coverage, Decision
from scanner.formats.numpy_npy import HeaderError, dtype_info, parse_literal
from tests.formats.builders import Member, build_zip, data
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, rule_ids, scan_on_disk, verdict


def npy(header: str, body: bytes, version: int = 1) -> bytes:
    h = header.encode("latin-1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + body
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h)) + h + body


@pytest.mark.parametrize("name", ["numeric.npy", "fortran.npy"])
def test_real_numeric_arrays_are_clean(tmp_path, name):
    fr = scan_on_disk(tmp_path, data(name), name=name)
    assert fr.format == "numpy-npy"
    assert fr.findings == []
    assert verdict(fr) is Decision.ALLOW


@pytest.mark.parametrize("name", ["object.npy", "structured.npy"])
def test_real_object_arrays_are_flagged_and_analyzed(tmp_path, name):
    fr = scan_on_disk(tmp_path, data(name), name=name)
    assert "NUMPY-OBJECT-ARRAY" in rule_ids(fr)
    assert any(m.endswith("<object-data>") for m in fr.members)


def test_object_array_with_payload(tmp_path):
    fr = scan_on_disk(
        tmp_path, npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", EVIL_PICKLE), name="x.npy"
    )
    assert "NUMPY-OBJECT-ARRAY" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_structured_object_field_payload(tmp_path):
    hdr = "{'descr': [('a', '<i4'), ('b', [('c', '|O')])], 'fortran_order': False, 'shape': (2,), }"
    fr = scan_on_disk(tmp_path, npy(hdr, EVIL_PICKLE, version=2), name="x.npy")
    assert blocked_for_payload(fr)


def test_truncated_numeric_data(tmp_path):
    fr = scan_on_disk(tmp_path, data("numeric.npy")[:-5], name="x.npy")
    (f,) = findings(fr, "NUMPY-SIZE-MISMATCH")
    assert f.evidence["expected"] - f.evidence["actual"] == 5


def test_trailing_pickle_after_numeric_data(tmp_path):
    fr = scan_on_disk(tmp_path, data("numeric.npy") + EVIL_PICKLE, name="x.npy")
    assert "NUMPY-SIZE-MISMATCH" in rule_ids(fr)
    assert blocked_for_payload(fr)


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
        "{'descr': __import__('os').system('touch /tmp/modelward-canary'), 'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,), }",
        "{'descr': '<zz', 'fortran_order': False, 'shape': (1,), }",
        "[1, 2, 3]",
        "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 100 + ")" * 100 + "}",
    ],
)
def test_invalid_headers(tmp_path, header):
    fr = scan_on_disk(tmp_path, npy(header, b"\0" * 4), name="x.npy")
    assert "NUMPY-HEADER-INVALID" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


def test_oversized_v2_header_is_refused_without_reading_it(tmp_path):
    blob = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{}"
    fr = scan_on_disk(tmp_path, blob, name="x.npy")
    assert "NUMPY-HEADER-INVALID" in rule_ids(fr)


def test_literal_parser():
    assert parse_literal("{'a': (1,), 'b': (), 'c': [('x', '<f4', (2, 3))], 'd': True}") == {
        "a": (1,),
        "b": (),
        "c": [("x", "<f4", (2, 3))],
        "d": True,
    }
    assert parse_literal("(3)") == 3
    for bad in ["{'a': 1.5}", "{'a': f(1)}", "{'a' 1}", "{'a': 1} x"]:
        with pytest.raises(HeaderError):
            parse_literal(bad)
    assert dtype_info("<U3") == (12, False)
    assert dtype_info([("a", "<i4", (2,)), ("b", "|O")]) == (16, True)


@pytest.mark.parametrize("name", ["arrays.npz", "compressed.npz"])
def test_real_npz(tmp_path, name):
    fr = scan_on_disk(tmp_path, data(name), name=name)
    assert fr.format == "numpy-npz"
    assert not [
        r for r in rule_ids(fr) if r.startswith(("ZIP-", "ARCHIVE-", "NUMPY-SIZE", "NUMPY-HEADER", "FORMAT-"))
    ]
    assert fr.coverage is Coverage.FULL
    assert ("NUMPY-OBJECT-ARRAY" in rule_ids(fr)) == (name == "compressed.npz")


def test_npz_with_object_payload(tmp_path):
    evil = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", EVIL_PICKLE)
    blob = build_zip([Member("a.npy", data("numeric.npy")), Member("b.npy", evil, method=8)])
    fr = scan_on_disk(tmp_path, blob, name="x.npz")
    assert fr.format == "numpy-npz"
    assert blocked_for_payload(fr)


def test_npz_member_that_is_a_raw_pickle(tmp_path):
    blob = build_zip([Member("a.npy", EVIL_PICKLE)])
    fr = scan_on_disk(tmp_path, blob, name="x.npz")
    assert "FORMAT-NAME-MISMATCH" in rule_ids(fr)
    assert blocked_for_payload(fr)
