"""SentencePiece, msgpack and Core ML inspectors: benign files pass, each defect gets its precise finding."""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Coverage, Severity
from scanner.formats.msgpack_walk import MAX_DEPTH, Walker, _Buf
from scanner.io.reader import BytesReader
from tests.harness import fixture, inspect_bytes, rule_ids


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _vint(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(v)


def _piece(s: bytes, typ: int = 1) -> bytes:
    return _len(1, _len(1, s) + _varint(2 << 3 | 5) + struct.pack("<f", -1.0) + _vint(3, typ))


SP_HEAD = _piece(b"<unk>", 2) + _piece(b"<s>", 3) + _piece(b"</s>", 3) + _piece("▁the".encode())


# ---------------------------------------------------------------------------------------------- sentencepiece
def test_sentencepiece_minimal_model_is_clean() -> None:
    fr = inspect_bytes(SP_HEAD + _len(2, _vint(3, 1)) + _len(3, _len(1, b"identity")), "tokenizer.model")
    assert fr.format == "sentencepiece"
    assert fr.findings == [] and fr.coverage is Coverage.FULL


def test_sentencepiece_unknown_top_level_field_is_reported() -> None:
    fr = inspect_bytes(SP_HEAD + _len(9, b"hidden payload"), "tokenizer.model")
    assert fr.format == "sentencepiece"
    sev = {f.rule_id: f.severity for f in fr.findings}
    assert sev == {"SENTENCEPIECE-INVALID": Severity.MEDIUM}


def test_sentencepiece_bad_piece_type_and_utf8_are_counted() -> None:
    fr = inspect_bytes(SP_HEAD + _piece(b"x", 9) + _piece(b"\xc3\x28") + _piece(b"\xff"), "spiece.model")
    msgs = [f.message for f in fr.findings if f.rule_id == "SENTENCEPIECE-INVALID"]
    assert any("type 9" in m for m in msgs)
    assert any("2 piece(s): piece is not valid UTF-8" in m for m in msgs)


def test_sentencepiece_length_past_end_is_malformed() -> None:
    fr = inspect_bytes(SP_HEAD + b"\x0a\xff\xff\x03" + b"x" * 10, "tokenizer.model")
    assert fr.format == "sentencepiece"
    assert "SENTENCEPIECE-INVALID" in rule_ids(fr) and fr.coverage is not Coverage.FULL


def test_sentencepiece_real_fixture_has_expected_pieces() -> None:
    data = fixture("sentencepiece/tokenizer.model").read_bytes()
    assert b"<unk>" in data[:64]  # the trained model starts with the unknown piece, as the sniffer expects
    fr = inspect_bytes(data, "tokenizer.model")
    assert fr.format == "sentencepiece" and not fr.findings


# --------------------------------------------------------------------------------------------------- msgpack
def test_flax_fixture_clean_and_ext_codes_seen() -> None:
    data = fixture("msgpack/flax_model.msgpack").read_bytes()
    w = Walker(_Buf(BytesReader(data, "m")))
    assert w.walk(0, len(data)) == len(data)
    assert (
        w.stats.ext_codes.get(1, 0) >= 4 and w.stats.ext_codes.get(2) == 1 and w.stats.ext_codes.get(3) == 1
    )
    assert w.stats.flax_arrays >= 5


def test_msgpack_walk_skips_tensor_payloads() -> None:
    big = b"\x00" * (8 << 20)
    body = b"\x81\xa6params\x81\xa1w\xc6" + struct.pack(">I", len(big)) + big
    r = BytesReader(body, "big.msgpack")
    fr = inspect_bytes(body, "flax_model.msgpack")
    assert fr.format == "msgpack" and not fr.findings
    w = Walker(_Buf(r))
    w.walk(0, r.size)
    assert r.bytes_read < 2 << 20  # headers only: the 8 MiB payload was never read


def test_msgpack_trailing_pickle_is_judged_as_a_pickle() -> None:
    evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    data = fixture("msgpack/flax_model.msgpack").read_bytes() + evil
    fr = inspect_bytes(data, "flax_model.msgpack")
    assert "MSGPACK-TRAILING-DATA" in rule_ids(fr)
    assert fr.max_severity is Severity.CRITICAL, rule_ids(fr)


def test_msgpack_nesting_bomb_is_capped() -> None:
    data = b"\x81\xa1a" + b"\x91" * (MAX_DEPTH + 10) + b"\x01"
    fr = inspect_bytes(data, "x.msgpack")
    assert fr.format == "msgpack"
    assert any("nesting deeper" in f.message for f in fr.findings if f.rule_id == "MSGPACK-INVALID")


def test_msgpack_huge_declared_count_is_rejected_without_allocation() -> None:
    head = b"\x81\xa6params\xdf\xff\xff\xff\xff"  # map32 of 4 billion entries in 20 bytes
    fr = inspect_bytes(head + b"\xa1k\x01" * 8, "x.msgpack")
    if fr.format == "msgpack":
        assert "MSGPACK-INVALID" in rule_ids(fr)
    else:
        assert fr.format == "unknown"


def test_msgpack_reserved_byte() -> None:
    data = b"\x84" + b"\xa1a\x01\xa1b\x02\xa1c\x03\xa1d\xc1" + b"\x00" * 64
    fr = inspect_bytes(data, "x.msgpack")
    assert fr.format == "msgpack"
    assert any("0xc1" in f.message for f in fr.findings)


@pytest.mark.parametrize(
    "rel,rule",
    [
        ("msgpack/shape_mismatch.msgpack", "MSGPACK-INVALID"),
        ("msgpack/trailing.msgpack", "MSGPACK-TRAILING-DATA"),
        ("msgpack/truncated.msgpack", "MSGPACK-INVALID"),
    ],
)
def test_msgpack_bad_fixtures(rel: str, rule: str) -> None:
    fr = inspect_bytes(fixture(rel).read_bytes(), "flax_model.msgpack")
    assert rule in rule_ids(fr) and fr.max_severity is Severity.HIGH


# ---------------------------------------------------------------------------------------------------- Core ML
def _model(body: bytes, version: int = 4) -> bytes:
    return _vint(1, version) + _len(2, _len(1, _len(1, b"input"))) + body


def test_coreml_custom_layer_names_the_class() -> None:
    fr = inspect_bytes(fixture("coreml/custom_layer.mlmodel").read_bytes(), "m.mlmodel")
    hits = [f for f in fr.findings if f.rule_id == "COREML-CUSTOM-LAYER"]
    assert len(hits) == 1 and hits[0].evidence["class_name"] == "EvilNativeLayer"
    assert hits[0].severity is Severity.HIGH


def test_coreml_custom_layer_in_branch_found() -> None:
    custom = _len(1, b"c") + _len(500, _len(10, b"Hidden"))
    branch = _len(1, b"if") + _len(605, _len(2, _len(1, custom)))  # elseBranch network
    fr = inspect_bytes(_model(_len(500, _len(1, branch))), "m.mlmodel")
    assert fr.format == "coreml"
    assert [f.evidence.get("class_name") for f in fr.findings if f.rule_id == "COREML-CUSTOM-LAYER"] == [
        "Hidden"
    ]


def test_coreml_linked_and_serialized_models() -> None:
    linked = inspect_bytes(_model(_len(556, _len(1, _len(1, _len(1, b"other.mlmodelc"))))), "m.mlmodel")
    assert "COREML-LINKED-MODEL" in rule_ids(linked)
    ser = inspect_bytes(
        _model(_len(3000, _len(1, b"com.apple.private") + _len(2, b"\x00" * 32))), "m.mlmodel"
    )
    assert "COREML-SERIALIZED-MODEL" in rule_ids(ser) and ser.coverage is Coverage.PARTIAL


def test_coreml_pipeline_depth_bomb_is_capped() -> None:
    m = _model(_len(500, b""))
    for _ in range(40):
        m = _model(_len(202, _len(1, m)))
    fr = inspect_bytes(m, "m.mlmodel")
    assert fr.format == "coreml" and "COREML-INVALID" in rule_ids(fr)


def test_onnx_like_header_without_model_type_is_not_coreml() -> None:
    onnx_like = _vint(1, 8) + _len(2, b"pytorch") + _len(3, b"2.1") + _len(7, b"\x0a\x00")
    fr = inspect_bytes(onnx_like, "m.mlmodel")
    assert fr.format != "coreml"


def _blob_file(entries: list[tuple[int, int, int]], size: int) -> bytes:
    out = bytearray(struct.pack("<II", len(entries), 2) + b"\x00" * 56)
    for sentinel, nbytes, offset in entries:
        out += struct.pack("<IIQQ", sentinel, 1, nbytes, offset) + b"\x00" * 40
        out += b"\x00" * (_align(len(out) + nbytes) - len(out))
    return bytes(out[:size]) + b"\x00" * max(0, size - len(out))


def _align(n: int) -> int:
    return (n + 63) & ~63


def test_coreml_weights_fixture_clean() -> None:
    fr = inspect_bytes(
        fixture("coreml/benign.mlpackage/Data/com.apple.CoreML/weights/weight.bin").read_bytes(), "weight.bin"
    )
    assert fr.format == "coreml-weights" and not fr.findings and fr.coverage is Coverage.FULL


def test_coreml_weights_bad_sentinel_on_second_blob() -> None:
    data = _blob_file([(0xDEADBEEF, 64, 128), (0x12345678, 64, 256)], 320)
    fr = inspect_bytes(data, "weight.bin")
    assert fr.format == "coreml-weights"
    assert any("sentinel" in f.message for f in fr.findings if f.rule_id == "COREML-WEIGHTS-INVALID")


def test_coreml_weights_count_beyond_file() -> None:
    data = bytearray(_blob_file([(0xDEADBEEF, 64, 128)], 192))
    data[0:4] = struct.pack("<I", 1_000_000)
    fr = inspect_bytes(bytes(data), "weight.bin")
    assert "COREML-WEIGHTS-INVALID" in rule_ids(fr) and fr.coverage is not Coverage.FULL
