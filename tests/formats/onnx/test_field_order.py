"""ONNX ModelProto fields in any order: onnx.load and onnxruntime parse a model whose graph comes before its
ir_version, so detection must too (such a file used to read as "text" and pass with a name-mismatch warning)."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from scanner.findings import Severity
from scanner.formats.parsers.protobuf_wire import scan_top_level
from tests.harness import inspect_bytes, rule_ids, worst

FL = TensorProto.FLOAT
X = helper.make_tensor_value_info("x", FL, [1, 4])
Y = helper.make_tensor_value_info("y", FL, [1, 4])


def _model(op: str = "Relu", domain: str = "") -> bytes:
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], domain=domain)], "g", [X], [Y])
    ops = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    m = helper.make_model(g, opset_imports=ops, producer_name="pytorch")
    m.ir_version = 8
    return m.SerializeToString()


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """The top-level fields of a message, each with its raw bytes (tag included)."""
    out = []
    pos = 0
    for f, wt, off, n in scan_top_level(lambda o, k: data[o : o + k], len(data)):
        end = off + n if wt == 2 else off + _varint_len(data, off)
        out.append((f, data[pos:end]))
        pos = end
    return out


def _varint_len(data: bytes, off: int) -> int:
    i = off
    while data[i] & 0x80:
        i += 1
    return i + 1 - off


def _reorder(data: bytes, first: int) -> bytes:
    fields = _fields(data)
    assert b"".join(raw for _f, raw in fields) == data
    return b"".join(raw for f, raw in fields if f == first) + b"".join(raw for f, raw in fields if f != first)


@pytest.mark.parametrize("first", [7, 2, 8], ids=["graph", "producer", "opset"])
def test_custom_domain_model_with_fields_reordered_is_still_judged(first: int) -> None:
    data = _reorder(_model("Evil", "com.evil"), first)
    assert data[0] != 0x08
    fr = inspect_bytes(data, "model.onnx")
    assert fr.format == "onnx"
    plain = inspect_bytes(_model("Evil", "com.evil"), "model.onnx")
    assert rule_ids(fr) == rule_ids(plain)
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH


def test_benign_model_with_graph_first_stays_clean() -> None:
    fr = inspect_bytes(_reorder(_model(), 7), "model.onnx")
    assert fr.format == "onnx"
    assert worst(fr) is None or worst(fr) <= Severity.INFO, [(f.rule_id, f.message) for f in fr.findings]


def test_model_without_ir_version_is_not_onnx_but_still_blocked() -> None:
    # onnxruntime refuses a model without ir_version; the bytes are still binary named .onnx
    data = b"".join(raw for f, raw in _fields(_model("Evil", "com.evil")) if f != 1)
    fr = inspect_bytes(data, "model.onnx")
    assert fr.format != "onnx"
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH


def test_saved_model_bytes_are_not_claimed_as_onnx() -> None:
    meta = b"\x12\x10" + b"\x0a\x0e\x0a\x05Const\x12\x05Const"
    data = b"\x12" + bytes([len(meta)]) + meta + b"\x08\x01"
    assert inspect_bytes(data, "saved_model.pb").format == "tf-savedmodel"
