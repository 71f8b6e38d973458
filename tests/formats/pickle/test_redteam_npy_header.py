"""Red team: the npy header is read as numpy reads it (ast.literal_eval), escapes and key set included.

numpy evaluates the header dict with ast.literal_eval and insists on exactly the
keys descr, fortran_order and shape. The scanner's literal parser dropped the
backslash of escapes and accepted extra keys, so a header
``{'descr': '<u1', ..., 'de\\x73cr': '|O'}`` was a clean uint8 array to the
scanner and an object array to np.load(allow_pickle=True), which unpickled the
data section. Nothing here is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity
from scanner.formats.numpy_npy import HeaderError, parse_literal
from tests.harness import blocked_for_payload, detect_bytes, make_zip, worst

from .assembler import CANARY, U

EVIL = b"\x80\x02cos\nsystem\n" + U(CANARY) + b"\x85R."


def npy(header: str, data: bytes, version: int = 1) -> bytes:
    h = header.encode("latin-1")
    pre = 10 if version == 1 else 12
    h += b" " * ((-(pre + len(h) + 1)) % 64) + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h)) + h + data


ESCAPED_KEYS = ["de\\x73cr", "de\\u0073cr", "de\\163cr", "de\\N{LATIN SMALL LETTER S}cr", "de\\U00000073cr"]


@pytest.mark.parametrize("key", ESCAPED_KEYS)
def test_escaped_duplicate_descr_key_is_the_descr_numpy_uses(key: str) -> None:
    header = f"{{'descr': '<u1', 'fortran_order': False, 'shape': ({len(EVIL)},), '{key}': '|O', }}"
    r = detect_bytes(npy(header, EVIL), "arr.npy")
    assert blocked_for_payload(r)
    assert worst(r) is Severity.CRITICAL


def test_escaped_descr_value_is_decoded() -> None:
    r = detect_bytes(npy("{'descr': '|\\x4f', 'fortran_order': False, 'shape': (1,), }", EVIL), "arr.npy")
    assert blocked_for_payload(r)


def test_escaped_key_inside_npz_member() -> None:
    header = f"{{'descr': '<u1', 'fortran_order': False, 'shape': ({len(EVIL)},), 'de\\x73cr': '|O', }}"
    r = detect_bytes(make_zip({"a.npy": npy(header, EVIL)}), "arrs.npz")
    assert blocked_for_payload(r)


def test_extra_header_keys_are_refused() -> None:
    header = "{'descr': '<u1', 'fortran_order': False, 'shape': (4,), 'extra': 1, }"
    r = detect_bytes(npy(header, b"\x00" * 4), "arr.npy")
    assert "NUMPY-HEADER-INVALID" in {f.rule_id for f in r.findings}


def test_parse_literal_matches_literal_eval() -> None:
    import ast

    for text in (
        "{'a\\x41': '\\u00e9\\n', \"b\\\\c\": ('x',), 'd': '\\101\\t'}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
    ):
        assert parse_literal(text) == ast.literal_eval(text)
    with pytest.raises(HeaderError):
        parse_literal("{'bad': '\\x4'}")


def test_plain_numeric_arrays_stay_clean() -> None:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    r = detect_bytes(npy(header, b"\x00" * 16), "arr.npy")
    assert worst(r) is None or worst(r) < Severity.MEDIUM
