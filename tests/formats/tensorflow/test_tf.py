"""SavedModel / keras_metadata / TFLite parsing without TensorFlow."""

from __future__ import annotations

import pytest

from fixtures.gen.formats_keras_tf_hf import _function, _len, _node, _saved_model, _vint
from scanner.findings import Severity
from scanner.formats.parsers.protobuf_wire import WireError, iter_fields
from scanner.formats.tensorflow.tf_savedmodel import known_ops
from tests.harness import fixture, inspect_bytes, rule_ids


def test_known_op_list_has_standard_ops() -> None:
    ops = known_ops()
    assert {"MatMul", "Conv2D", "StatefulPartitionedCall", "SaveV2", "VarHandleOp"} <= ops
    assert "ZeroOutCustom" not in ops and len(ops) > 1000


def test_benign_saved_model_only_info() -> None:
    fr = inspect_bytes(_saved_model([], []), "saved_model.pb")
    assert fr.format == "tf-savedmodel"
    assert all(f.severity is Severity.INFO for f in fr.findings), [f.message for f in fr.findings]


def test_saver_function_called_from_serving_code_is_high() -> None:
    # an attacker names a function like the saver's and calls it from a non-saver node
    spoof = _node("serve", "StatefulPartitionedCall", func="__inference__traced_save_45")
    fr = inspect_bytes(_saved_model([spoof], []), "saved_model.pb")
    high = [f for f in fr.findings if f.rule_id == "TF-FILE-OP" and f.severity is Severity.HIGH]
    assert high and "SaveV2" in high[0].message


def test_function_library_ops_are_walked() -> None:
    fn = _function(
        "__inference_f_1",
        [
            _node("r", "ReadFile"),
            _node("p", "EagerPyFunc"),
            _node("c", "RpcClient"),
            _node("pr", "PrintV2", s_attrs={"output_stream": "file:///tmp/x"}),
        ],
    )
    fr = inspect_bytes(_saved_model([], [fn]), "m.pb")
    assert {"TF-FILE-OP", "TF-PYFUNC", "TF-NETWORK-OP"} <= rule_ids(fr)
    assert any("PrintV2" in f.message for f in fr.findings)


def test_library_function_names_are_valid_ops() -> None:
    fn = _function("my_fn", [_node("a", "Add")])
    fr = inspect_bytes(_saved_model([_node("call", "my_fn")], [fn]), "m.pb")
    assert "TF-UNKNOWN-OP" not in rule_ids(fr)


def test_localhost_device_is_fine() -> None:
    fr = inspect_bytes(
        _saved_model([_node("n", "Identity", device="/job:localhost/replica:0/task:0/device:CPU:0")], []),
        "m.pb",
    )
    assert "TF-REMOTE-DEVICE" not in rule_ids(fr)


def test_onnx_like_bytes_are_not_claimed() -> None:
    onnx_like = (
        _vint(1, 8) + _len(2, "pytorch") + _len(3, "2.1") + _len(7, b"\x0a\x00") + _len(8, _vint(2, 17))
    )
    assert inspect_bytes(onnx_like, "m.onnx").format != "tf-savedmodel"
    old_ir = _vint(1, 1) + _len(2, "x") + _len(8, _vint(2, 1))
    assert inspect_bytes(old_ir, "m.pb").format != "tf-savedmodel"


def test_truncated_saved_model_fails_closed() -> None:
    data = _saved_model([], [])
    fr = inspect_bytes(data[:-5], "saved_model.pb")
    assert (
        fr.format != "tf-savedmodel" or fr.coverage.value != "full" or rule_ids(fr) & {"TF-PROTOBUF-INVALID"}
    )
    from scanner.findings import ScanReport
    from scanner.policy.default import decide

    rep = ScanReport(scanner_version="t", rules_version="t", targets=["x"], files=[fr])
    assert decide(rep).decision.value == "block"


def test_wire_reader_bounds() -> None:
    with pytest.raises(WireError):
        list(iter_fields(b"\x0a\xff\xff\xff\x0f"))
    with pytest.raises(WireError):
        list(iter_fields(b"\x0b"))  # start-group
    with pytest.raises(WireError):
        list(iter_fields(b"\x08" + b"\xff" * 11))


def test_keras_metadata_fixture() -> None:
    data = fixture("tensorflow/keras_metadata.pb").read_bytes()
    fr = inspect_bytes(data, "keras_metadata.pb")
    assert fr.format == "keras-metadata-pb" and "KERAS-LAMBDA-CODE" in rule_ids(fr)


def test_tflite_builtin_vs_flex() -> None:
    assert rule_ids(inspect_bytes(fixture("tensorflow/benign.tflite").read_bytes(), "m.tflite")) == set()
    fr = inspect_bytes(fixture("tensorflow/flex_custom.tflite").read_bytes(), "m.tflite")
    assert "TFLITE-CUSTOM-OP" in rule_ids(fr) and "FlexWriteFile" in fr.findings[0].message


def test_tflite_bad_offsets_fail_closed() -> None:
    data = bytearray(fixture("tensorflow/benign.tflite").read_bytes())
    data[0:4] = (10**6).to_bytes(4, "little")
    fr = inspect_bytes(bytes(data), "m.tflite")
    assert "TFLITE-INVALID" in rule_ids(fr) and fr.coverage.value != "full"


@pytest.mark.parametrize("schema", [b"", _vint(1, 0), _vint(1, 2)], ids=["absent", "zero", "two"])
@pytest.mark.parametrize("op", ["PyFunc", "EagerPyFunc", "ReadFile"])
def test_saved_model_without_schema_version_is_still_a_saved_model(schema: bytes, op: str) -> None:
    # protobuf defaults a missing saved_model_schema_version to 0 and TensorFlow parses the file anyway;
    # such a file used to fall through to the text sniffer (its bytes are mostly printable) and pass
    graph = _len(1, _len(1, "Const") + _len(2, "Const")) + _len(1, _len(1, "bad") + _len(2, op))
    data = schema + _len(2, _len(2, graph))
    fr = inspect_bytes(data, "saved_model.pb")
    assert fr.format == "tf-savedmodel"
    assert rule_ids(fr) & {"TF-PYFUNC", "TF-FILE-OP"}, [(f.rule_id, f.message) for f in fr.findings]
    assert "TF-PROTOBUF-INVALID" in rule_ids(fr)


def test_proto_starting_with_field_two_varint_is_not_claimed() -> None:
    assert inspect_bytes(_vint(2, 5) + _len(2, b"\x0a\x00"), "m.pb").format != "tf-savedmodel"
