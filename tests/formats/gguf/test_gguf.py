"""GGUF header limits, layout checks, templates; remote-friendliness."""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Coverage, Severity
from tests.harness import FIXTURES, inspect_bytes, inspect_file, rule_ids


def gs(s: str | bytes, w: str = "Q", e: str = "<") -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(e + w, len(b)) + b


def gguf(
    kvs: bytes = b"",
    nkv: int = 0,
    tinfos: list[tuple[str, list[int], int, int]] = (),
    data: bytes = b"",
    version: int = 3,
    align: int = 32,
    e: str = "<",
) -> bytes:
    w = "Q" if version >= 2 else "I"
    out = bytearray(b"GGUF" + struct.pack(e + "I", version) + struct.pack(e + w + w, len(tinfos), nkv) + kvs)
    for name, dims, t, off in tinfos:
        out += (
            gs(name, w, e) + struct.pack(e + "I", len(dims)) + b"".join(struct.pack(e + w, d) for d in dims)
        )
        out += struct.pack(e + "IQ", t, off)
    out += b"\0" * ((-len(out)) % align)
    return bytes(out) + data


def kv_str(key: str, val: str, w: str = "Q", e: str = "<") -> bytes:
    return gs(key, w, e) + struct.pack(e + "I", 8) + gs(val, w, e)


def test_minimal_files_of_each_version_and_endianness_are_clean() -> None:
    for version, w in ((1, "I"), (2, "Q"), (3, "Q")):
        kv = kv_str("general.architecture", "llama", w)
        fr = inspect_bytes(gguf(kv, 1, [("t", [8], 0, 0)], b"\0" * 32, version=version), "m.gguf")
        assert fr.format == "gguf" and fr.findings == [], (version, [f.message for f in fr.findings])
    fr = inspect_bytes(
        gguf(kv_str("general.architecture", "llama", "Q", ">"), 1, [("t", [8], 0, 0)], b"\0" * 32, e=">"),
        "m.gguf",
    )
    assert rule_ids(fr) == {"GGUF-BIG-ENDIAN"}


@pytest.mark.parametrize(
    ("blob", "rule", "needle"),
    [
        (gguf(tinfos=[("t", [8], 0, 0)] * 2, data=b"\0" * 64), "GGUF-INVALID", "duplicate tensor"),
        (gguf(tinfos=[("t", [8, 1, 1, 1, 1], 0, 0)], data=b"\0" * 32), "GGUF-INVALID", "dimensions"),
        (gguf(tinfos=[("t", [1 << 63], 0, 0)], data=b""), "GGUF-INVALID", "negative"),
        (gguf(tinfos=[("t", [1 << 40, 1 << 40], 0, 0)], data=b""), "GGUF-INVALID", "overflow"),
        (gguf(tinfos=[("t", [8], 4, 0)], data=b"\0" * 32), "GGUF-INVALID", "unknown ggml type"),
        (gguf(tinfos=[("t", [33], 2, 0)], data=b"\0" * 64), "GGUF-INVALID", "multiple of block"),
        (gguf(tinfos=[("x" * 64, [8], 0, 0)], data=b"\0" * 32), "GGUF-INVALID", "too long"),
        (gguf(gs("k") + struct.pack("<I", 13) + b"\0" * 8, 1), "GGUF-INVALID", "unknown value type"),
        (gguf(gs("k") + struct.pack("<IIQ", 9, 9, 1) + b"\0" * 16, 1), "GGUF-INVALID", "nested array"),
        (gguf(gs("k") + struct.pack("<IIQ", 9, 4, 1 << 40), 1), "GGUF-LIMIT", "elements"),
        (gguf(gs("general.alignment") + struct.pack("<IQ", 10, 64), 1), "GGUF-INVALID", "not a u32"),
        (gguf(gs("general.alignment") + struct.pack("<II", 4, 0), 1), "GGUF-INVALID", "power of two"),
        (b"GGUF" + struct.pack("<I", 7) + b"\0" * 16, "GGUF-INVALID", "version"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 21), "GGUF-LIMIT", "cap"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1000, 1000) + b"\0" * 64, "GGUF-LIMIT", "cannot fit"),
    ],
)
def test_malformed_headers(blob: bytes, rule: str, needle: str) -> None:
    fr = inspect_bytes(blob, "m.gguf")
    msgs = [f.message for f in fr.findings if f.rule_id == rule]
    assert any(needle in m for m in msgs), [f.message for f in fr.findings]
    assert fr.coverage is not Coverage.FULL


def test_gaps_between_tensors_are_reported_as_medium() -> None:
    fr = inspect_bytes(gguf(tinfos=[("a", [8], 0, 0), ("b", [8], 0, 64)], data=b"\0" * 96), "m.gguf")
    assert [(f.rule_id, f.severity) for f in fr.findings] == [("GGUF-INVALID", Severity.MEDIUM)]


def test_named_templates_are_analysed_and_oversize_is_capped() -> None:
    kv = kv_str("tokenizer.chat_template", "{{ messages[0].content }}") + kv_str(
        "tokenizer.chat_template.tool_use", "{{ lipsum.__globals__['os'].popen('id').read() }}"
    )
    fr = inspect_bytes(gguf(kv, 2), "m.gguf")
    ssti = [f for f in fr.findings if f.rule_id == "TEMPLATE-SSTI"]
    assert len(ssti) == 1 and ssti[0].severity is Severity.CRITICAL
    assert ssti[0].evidence["key"] == "tokenizer.chat_template.tool_use"
    big = "{{ x }}" * 200_000
    fr = inspect_bytes(gguf(kv_str("tokenizer.chat_template", big), 1), "m.gguf")
    assert "TEMPLATE-OVERSIZE" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL


def test_templates_read_before_a_parse_failure_are_still_judged() -> None:
    kv = kv_str("tokenizer.chat_template", "{{ ''.__class__ }}") + gs("bad") + struct.pack("<I", 99)
    fr = inspect_bytes(gguf(kv, 2), "m.gguf")
    assert {"GGUF-INVALID", "TEMPLATE-SSTI"} <= rule_ids(fr)


def test_writer_fixture_is_clean_and_its_truncations_are_not() -> None:
    data = (FIXTURES / "gguf" / "benign_chatml.gguf").read_bytes()
    assert inspect_bytes(data, "m.gguf").findings == []
    for cut in (9, 30, len(data) // 2, len(data) - 20):  # the writer pads the last tensor; -20 cuts into data
        fr = inspect_bytes(data[:cut], "m.gguf")
        assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH, cut


def test_sparse_100mb_file_reads_only_the_header(tmp_path) -> None:
    n = 25 << 20  # F32 elements: 100 MiB of tensor data
    blob = gguf(kv_str("general.architecture", "llama"), 1, [("w", [n], 0, 0)])
    p = tmp_path / "big.gguf"
    with open(p, "wb") as fh:
        fh.write(blob)
        fh.truncate(len(blob) + 4 * n)
    fr = inspect_file(p)
    assert fr.findings == [] and fr.coverage is Coverage.FULL
    assert fr.bytes_read < 200_000, fr.bytes_read
