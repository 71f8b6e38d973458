"""Red-team: a protobuf that is a Core ML Model to the sniffer and an ONNX ModelProto to onnxruntime.

Core ML's sniff needs specificationVersion, a description (field 2) and a model-type field (>= 200) before
anything else; an ONNX model with ir_version = 8, an empty producer_name (field 2) and an unknown field 500 in
front of its graph is all three. onnxruntime skips field 500: in a throwaway venv onnxruntime 1.17.3 loaded such
a file and its initializer's external data ``../../../../../../../etc/hostname`` came out of the graph, while
the scan judged it Core ML only (a name-mismatch warning as ``.onnx``, nothing at all as ``.mlmodel``).
Core ML's Model schema has fields 1, 2, 10 and the model types only; any other field now blocks.
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from scanner.findings import Coverage
from tests.harness import fixture, inspect_bytes, rule_ids


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _onnx_tail() -> bytes:
    t = TensorProto(name="w", data_type=TensorProto.UINT8, dims=[3], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", "../../../../../../../etc/hostname"), ("offset", "0"), ("length", "3")):
        e = t.external_data.add()
        e.key, e.value = k, v
    out = [helper.make_tensor_value_info("y", TensorProto.UINT8, [3])]
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [], out, [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ClearField("ir_version")
    return m.SerializeToString()


def polyglot(model_type: int = 500) -> bytes:
    return b"\x08\x08" + _field(2, b"") + _field(model_type, b"") + _onnx_tail()


@pytest.mark.parametrize("name", ["model.onnx", "model.mlmodel"])
@pytest.mark.parametrize("model_type", [500, 202, 900])
def test_onnx_fields_behind_a_coreml_head_block(name: str, model_type: int) -> None:
    fr = inspect_bytes(polyglot(model_type), name)
    assert fr.format == "coreml"
    assert "COREML-INVALID" in rule_ids(fr) and fr.coverage is not Coverage.FULL


def test_foreign_field_in_a_pipeline_stage_blocks() -> None:
    stage = b"\x08\x04" + _field(2, b"") + _field(500, b"") + b"\x38\x01"  # field 7 as a varint
    pipeline = _field(202, _field(1, stage))
    fr = inspect_bytes(b"\x08\x04" + _field(2, b"") + pipeline, "p.mlmodel")
    assert "COREML-INVALID" in rule_ids(fr)


@pytest.mark.parametrize(
    "path", ["coreml/benign_nn.mlmodel", "coreml/benign.mlpackage/Data/com.apple.CoreML/model.mlmodel"]
)
def test_real_models_stay_clean(path: str) -> None:
    assert not inspect_bytes(fixture(path).read_bytes(), "model.mlmodel").findings
