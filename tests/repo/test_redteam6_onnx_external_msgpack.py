"""ONNX external data whose raw tensor bytes happen to read as msgpack is judged as the raw data it is.

Red-team round 6: ``onnx.save_model(..., save_as_external_data=True)`` writes tensors' bytes as they are;
some start with a msgpack map/array type byte and were claimed by the msgpack sniffer, then blocked as
MSGPACK-INVALID, where an unrecognized file is vouched for as raw data the ONNX model reads. What the
ONNX loader reads as bytes is vouched for when all the msgpack inspector found is that it is not msgpack;
anything else found in it still stands.
"""

from __future__ import annotations

import random
import struct

from onnx import TensorProto, helper

from scanner.findings import Coverage, Severity
from tests.harness import fixture, remote_snapshot, rule_ids, scan_snapshot


def _onnx_with_external(location: str, n_floats: int) -> bytes:
    """A model whose initializer W (float32[n]) lives in ``location``: what onnxruntime reads as raw bytes."""
    t = TensorProto(
        name="W", data_type=TensorProto.FLOAT, dims=[n_floats], data_location=TensorProto.EXTERNAL
    )
    for k, v in (("location", location), ("offset", "0"), ("length", str(4 * n_floats))):
        e = t.external_data.add()
        e.key, e.value = k, v
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [n_floats])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n_floats])
    g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "g", [x], [y], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _judged_as_raw_data(data: bytes) -> None:
    n = len(data) // 4
    res = scan_snapshot(
        remote_snapshot({"model.onnx": _onnx_with_external("model.onnx.data", n), "model.onnx.data": data})
    )
    assert rule_ids(res["model.onnx"]) == {"ONNX-EXTERNAL-DATA"}
    fr = res["model.onnx.data"]
    assert fr.format == "onnx-external-data", (fr.format, rule_ids(fr))
    assert fr.coverage is Coverage.FULL, fr.coverage_notes
    assert all(f.severity is Severity.INFO for f in fr.findings), [
        (f.rule_id, f.message) for f in fr.findings
    ]


def test_float32_weights_starting_like_a_msgpack_array() -> None:
    """256 KiB of normal float32 weights starting 9b 15 e8 3e: blocked as MSGPACK-INVALID before."""
    rng = random.Random(62)
    _judged_as_raw_data(
        bytes.fromhex("9b15e83e") + struct.pack("<65536f", *(rng.gauss(0.0, 0.5) for _ in range(65536)))
    )


def test_tensor_bytes_that_read_as_a_broken_name_keyed_map() -> None:
    """uint8/float bytes that spell a msgpack map of names then a reserved byte: onnxruntime loads them as
    numbers (checked with onnxruntime 1.32); the msgpack sniffer still claims them, the ONNX check vouches."""
    _judged_as_raw_data(b"\x84\xa1a\x01\xa1b\x02\xa1c\x03\xa1d\xc1" + b"\x00" * 51)


def test_msgpack_external_data_with_a_trailing_pickle_is_not_vouched_for() -> None:
    evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    data = fixture("msgpack/flax_model.msgpack").read_bytes() + evil
    data += b"\x00" * (-len(data) % 4)
    n = len(data) // 4
    res = scan_snapshot(
        remote_snapshot(
            {"model.onnx": _onnx_with_external("flax_model.msgpack", n), "flax_model.msgpack": data}
        )
    )
    fr = res["flax_model.msgpack"]
    assert fr.format == "msgpack" and "MSGPACK-TRAILING-DATA" in rule_ids(fr)
    assert fr.max_severity is Severity.CRITICAL, rule_ids(fr)


def test_malformed_msgpack_not_referenced_by_onnx_still_blocks() -> None:
    data = b"\x84\xa1a\x01\xa1b\x02\xa1c\x03\xa1d\xc1" + b"\x00" * 51
    res = scan_snapshot(remote_snapshot({"weights.msgpack": data}))
    fr = res["weights.msgpack"]
    assert fr.format == "msgpack" and "MSGPACK-INVALID" in rule_ids(fr)
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH
