"""safetensors header rules, differentials, polyglots; remote-friendliness."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from io import BytesIO

import pytest

from scanner.findings import Coverage, Severity
from tests.harness import inspect_bytes, inspect_file, rule_ids


def st(header: dict | bytes, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def ent(dtype: str, shape: list, b: int, e: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


def test_valid_file_with_every_dtype_family_is_clean() -> None:
    hdr = {
        "__metadata__": {"format": "pt"},
        "a": ent("F32", [2, 2], 0, 16),
        "b": ent("BF16", [4], 16, 24),
        "c": ent("F4", [4], 24, 26),
        "d": ent("BOOL", [2], 26, 28),
        "e": ent("F8_E4M3", [0], 28, 28),
    }
    fr = inspect_bytes(st(hdr, b"\0" * 28), "m.safetensors")
    assert fr.format == "safetensors"
    assert fr.findings == [] and fr.coverage is Coverage.FULL


@pytest.mark.parametrize(
    ("header", "data", "needle"),
    [
        ({"a": ent("F32", [2], 0, 8), "b": ent("F32", [2], 4, 12)}, b"\0" * 12, "overlaps"),
        ({"a": ent("F32", [1], 0, 4), "b": ent("F32", [1], 8, 12)}, b"\0" * 12, "gap"),
        ({"a": ent("F32", [1], 0, 4)}, b"\0" * 9, "trailing"),
        ({"a": ent("F32", [4], 0, 16)}, b"\0" * 8, "truncated"),
        ({"a": ent("F32", [3], 0, 16)}, b"\0" * 16, "need 12"),
        ({"a": ent("Q4", [2], 0, 1)}, b"\0", "unknown dtype"),
        ({"a": ent("F32", [-1], 0, 4)}, b"\0" * 4, "shape"),
        ({"a": ent("F32", [1.0], 0, 4)}, b"\0" * 4, "shape"),
        ({"a": ent("F4", [3], 0, 2)}, b"\0" * 2, "byte boundary"),
        ({"a": ent("F32", [1 << 62, 1 << 62], 0, 4)}, b"\0" * 4, "overflow"),
        ({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "missing"),
        ({"__metadata__": {"x": 1}, "a": ent("F32", [1], 0, 4)}, b"\0" * 4, "strings"),
        (b'{"a": NaN}', b"", "JSON"),
        (b'{"a":' + json.dumps(ent("F32", [1], 0, 4)).encode() + b"}\x00", b"\0" * 4, "JSON"),
    ],
)
def test_loader_rejections_are_invalid(header, data, needle) -> None:
    fr = inspect_bytes(st(header, data), "m.safetensors")
    msgs = [f.message for f in fr.findings if f.rule_id == "SAFETENSORS-INVALID"]
    assert msgs, [f.message for f in fr.findings]
    assert any(needle in m for m in msgs), msgs
    assert all(f.severity is Severity.HIGH for f in fr.findings if f.rule_id == "SAFETENSORS-INVALID")


def test_header_length_limit_and_short_files() -> None:
    fr = inspect_bytes(struct.pack("<Q", 100_000_001) + b"{}" + b" " * 30, "m.safetensors")
    assert "SAFETENSORS-INVALID" in rule_ids(fr)
    assert any("limit" in f.message for f in fr.findings)
    fr = inspect_bytes(struct.pack("<Q", 5000) + b'{"a":1', "m.safetensors")
    assert "SAFETENSORS-INVALID" in rule_ids(fr) and fr.coverage is not Coverage.FULL


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":'
        + json.dumps(ent("F32", [2], 0, 8)).encode()
        + b',"a":'
        + json.dumps(ent("F32", [2], 0, 8)).encode()
        + b"}",
        b"\n  " + json.dumps({"a": ent("F32", [2], 0, 8)}).encode(),
        json.dumps({"a": {**ent("F32", [2], 0, 8), "extra": [1]}}).encode(),
    ],
)
def test_accepted_but_ambiguous_is_differential(raw: bytes) -> None:
    fr = inspect_bytes(st(raw, b"\0" * 8), "m.safetensors")
    assert rule_ids(fr) == {"SAFETENSORS-DIFFERENTIAL"}


def test_zip_tail_is_polyglot_and_zip_view_is_inspected() -> None:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    z = buf.getvalue()
    fr = inspect_bytes(st({"blob": ent("U8", [len(z)], 0, len(z))}, z), "m.safetensors")
    assert "SAFETENSORS-POLYGLOT" in rule_ids(fr)
    assert fr.format == "safetensors"


def test_sniffer_ignores_text_and_json() -> None:
    assert inspect_bytes(b'{"a": 1, "b": [1, 2, 3]}', "x.json").format == "json"
    assert inspect_bytes(b"abcdefgh{ not a header", "x.txt").format != "safetensors"


def test_sparse_100mb_file_reads_only_header_and_tail(tmp_path) -> None:
    n = 100 << 20
    hdr = json.dumps({"w": ent("U8", [n], 0, n)}).encode()
    p = tmp_path / "big.safetensors"
    with open(p, "wb") as fh:
        fh.write(struct.pack("<Q", len(hdr)) + hdr)
        fh.truncate(8 + len(hdr) + n)
    assert os.path.getsize(p) > n
    fr = inspect_file(p)
    assert fr.findings == [] and fr.coverage is Coverage.FULL
    assert fr.bytes_read < 200_000, fr.bytes_read
