"""Red-team: an ONNX model that is also a pickle stream.

model_version's tag (0x28) is the pickle opcode MARK, a model_version of 86 is UNICODE ('V', reads to a
newline), and a doc_string holding a newline and then a pickle program ends that line. In a throwaway venv
onnxruntime 1.32 ran the model, ``pickle.load`` and ``torch.load(weights_only=False)`` (torch 2.13) of the
same bytes ran ``os.system``; the scan allowed it as ONNX (only a name warning as ``pytorch_model.bin``).
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from tests.harness import fixture, inspect_bytes, rule_ids


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def polyglot(program: bytes = b"cos\nsystem\n(S'id'\ntR.") -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    doc = b"\n" + program
    return b"\x28\x56" + b"\x32" + _varint(len(doc)) + doc + m.SerializeToString()


@pytest.mark.parametrize("name", ["model.onnx", "pytorch_model.bin"])
def test_onnx_that_unpickles_to_os_system_blocks(name: str) -> None:
    fr = inspect_bytes(polyglot(), name)
    assert fr.format == "onnx"
    assert {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= rule_ids(fr)


def test_real_onnx_files_are_not_read_as_pickles() -> None:
    for name in ("benign_mlp.onnx", "benign_control_flow.onnx", "contrib_op.onnx"):
        fr = inspect_bytes(fixture(f"onnx/{name}").read_bytes(), name)
        assert not rule_ids(fr) & {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"}
