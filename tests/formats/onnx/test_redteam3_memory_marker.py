"""Red-team: the in-memory external-data marker ``*/_ORT_MEM_ADDR_/*``.

onnxruntime and OpenVINO's ONNX frontend treat a tensor whose external-data location is exactly this string
as already in memory and read ``length`` bytes at the address held in ``offset``. Confirmed in throwaway venvs:
OpenVINO 2026.4.1 ``Core().read_model()`` + compile returned 64 bytes of a Python string from the loading
process through an Identity output; onnxruntime 1.17.3 did the same for a Constant node (also inside a
model-local function). The location stays "inside the folder" by every path test, and a repository can even
hold a file at that path, so it was allowed (or only warned about as missing data).
"""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from scanner.findings import Severity
from scanner.formats.onnx.onnx_model import check_location
from tests.harness import inspect_bytes

MARKER = "*/_ORT_MEM_ADDR_/*"


def _external(name: str, loc: str = MARKER) -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.UINT8, dims=[64], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", loc), ("offset", str(0x7F0000001000)), ("length", "64")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _model(nodes: list, inits: list = (), functions: list = ()) -> bytes:
    out = [helper.make_tensor_value_info("y", TensorProto.UINT8, [64])]
    g = helper.make_graph(nodes, "g", [], out, list(inits))
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    m = helper.make_model(g, opset_imports=opsets, functions=list(functions))
    m.ir_version = 9
    return m.SerializeToString()


def _path_findings(data: bytes) -> list:
    fr = inspect_bytes(data, "model.onnx")
    return [f for f in fr.findings if f.rule_id == "ONNX-EXTERNAL-DATA-PATH"]


@pytest.mark.parametrize(
    "loc",
    [MARKER, "*/_ORT_MEM_ADDR_/*x", "w*.bin", "w?.bin", "w\n.bin", "w\x7f.bin", "sub/\tw.bin"],
)
def test_marker_wildcards_and_control_characters_are_not_plain_locations(loc: str) -> None:
    assert check_location(loc) is not None


@pytest.mark.parametrize("loc", ["model.onnx.data", "onnx__MatMul_1234", "layers.0/w.bin", "w-1_2.bin"])
def test_ordinary_locations_stay_allowed(loc: str) -> None:
    assert check_location(loc) is None


def test_initializer_marker_blocks() -> None:
    hits = _path_findings(_model([helper.make_node("Identity", ["w"], ["y"])], [_external("w")]))
    assert hits and hits[0].severity is Severity.CRITICAL and "in-memory" in hits[0].message


def test_constant_node_marker_blocks() -> None:
    # the shape onnxruntime 1.17.3 ran
    assert _path_findings(_model([helper.make_node("Constant", [], ["y"], value=_external("c"))]))


def test_function_body_constant_marker_blocks() -> None:
    body = [helper.make_node("Constant", [], ["o"], value=_external("c"))]
    f = helper.make_function("local", "F", [], ["o"], body, [helper.make_opsetid("", 17)])
    assert _path_findings(_model([helper.make_node("F", [], ["y"], domain="local")], functions=[f]))


def test_subgraph_initializer_marker_blocks() -> None:
    def branch(name: str) -> onnx.GraphProto:
        out = [helper.make_tensor_value_info(f"{name}_o", TensorProto.UINT8, [64])]
        return helper.make_graph(
            [helper.make_node("Identity", [name], [f"{name}_o"])], name, [], out, [_external(name)]
        )

    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("t"), else_branch=branch("e"))
    assert len(_path_findings(_model([node], [cond]))) == 2
