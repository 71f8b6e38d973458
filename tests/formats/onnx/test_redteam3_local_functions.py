"""Red-team: which nodes a model-local function really stands in for under onnxruntime.

Measured with onnxruntime 1.32 in a throwaway venv: a node resolves to a local function only when domain, name
*and* overload (IR 10) match -- ``local:F`` with overload "x" against a function without one failed with "is not
a registered function/op", i.e. it needs a kernel the host registers, yet the scan allowed it; and a local
function named ``com.microsoft:FusedMatMul`` did not replace the contrib kernel (the contrib schema was used).
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from tests.harness import inspect_bytes, rule_ids

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])


def _model(domain: str, fn_overload: str, node_overload: str) -> bytes:
    f = helper.make_function(
        domain, "F", ["a"], ["o"], [helper.make_node("Neg", ["a"], ["o"])], [helper.make_opsetid("", 17)]
    )
    f.overload = fn_overload
    n = helper.make_node("F", ["x"], ["y"], domain=domain)
    n.overload = node_overload
    g = helper.make_graph([n], "g", [X], [Y])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    m = helper.make_model(g, opset_imports=opsets, functions=[f])
    m.ir_version = 10
    return m.SerializeToString()


@pytest.mark.parametrize(("fn", "node"), [("", "x"), ("x", ""), ("a", "b")])
def test_overload_mismatch_is_an_unresolved_custom_op(fn: str, node: str) -> None:
    assert "ONNX-CUSTOM-DOMAIN" in rule_ids(inspect_bytes(_model("local", fn, node), "m.onnx"))


@pytest.mark.parametrize("overload", ["", "x"])
def test_matching_local_function_stays_allowed(overload: str) -> None:
    assert not inspect_bytes(_model("local", overload, overload), "m.onnx").findings


@pytest.mark.parametrize(
    ("domain", "rule"), [("com.microsoft", "ONNX-CONTRIB-OP"), ("ai.onnx.contrib", "ONNX-EXTENSIONS-OP")]
)
def test_local_function_does_not_hide_a_registered_kernel(domain: str, rule: str) -> None:
    assert rule in rule_ids(inspect_bytes(_model(domain, "", ""), "m.onnx"))
