"""Red-team: external-data tensors in the corners of an ONNX model a runtime still loads.

ONNX Runtime densifies sparse constants (values *and* indices are TensorProtos that may live in an
external file) and inlines model-local functions with their default attribute values
(``FunctionProto.attribute_proto``). A location escaping the model folder there reads host files the
same way as an initializer's.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from tests.harness import inspect_bytes, rule_ids


def _external(name: str, loc: str, data_type: int = TensorProto.FLOAT) -> TensorProto:
    t = TensorProto(name=name, data_type=data_type, dims=[4], data_location=TensorProto.EXTERNAL)
    e = t.external_data.add()
    e.key, e.value = "location", loc
    return t


def _model(nodes: list, functions: list = ()) -> bytes:
    g = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    return helper.make_model(g, opset_imports=opsets, functions=list(functions)).SerializeToString()


def _sparse(indices_loc: str) -> onnx.SparseTensorProto:
    st = onnx.SparseTensorProto(dims=[4])
    st.values.CopyFrom(helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
    st.indices.CopyFrom(_external("i", indices_loc, TensorProto.INT64))
    return st


def test_sparse_attribute_indices_with_traversal_block() -> None:
    n = helper.make_node("Constant", [], ["y"])
    a = n.attribute.add()
    a.name, a.type = "sparse_value", onnx.AttributeProto.SPARSE_TENSOR
    a.sparse_tensor.CopyFrom(_sparse("../../etc/shadow"))
    assert "ONNX-EXTERNAL-DATA-PATH" in rule_ids(inspect_bytes(_model([n]), "m.onnx"))


def test_sparse_tensors_list_indices_with_absolute_path_block() -> None:
    n = helper.make_node("Constant", [], ["y"])
    a = n.attribute.add()
    a.name, a.type = "sparse_values", onnx.AttributeProto.SPARSE_TENSORS
    a.sparse_tensors.add().CopyFrom(_sparse("/etc/shadow"))
    assert "ONNX-EXTERNAL-DATA-PATH" in rule_ids(inspect_bytes(_model([n]), "m.onnx"))


def test_function_default_attribute_tensor_with_traversal_blocks() -> None:
    body = [helper.make_node("Constant", [], ["o"], value_floats=[1.0])]
    f = helper.make_function("local", "F", [], ["o"], body, [helper.make_opsetid("", 17)])
    a = onnx.AttributeProto(name="alpha", type=onnx.AttributeProto.TENSOR)
    a.t.CopyFrom(_external("d", "../../../home/user/.ssh/id_rsa"))
    f.attribute_proto.append(a)
    m = _model([helper.make_node("F", [], ["y"], domain="local")], [f])
    assert "ONNX-EXTERNAL-DATA-PATH" in rule_ids(inspect_bytes(m, "m.onnx"))


def test_function_default_attribute_graph_is_walked() -> None:
    body = [helper.make_node("Constant", [], ["o"], value_floats=[1.0])]
    f = helper.make_function("local", "F", [], ["o"], body, [helper.make_opsetid("", 17)])
    sub = helper.make_graph(
        [helper.make_node("Evil", [], ["z"], domain="com.attacker")],
        "sub",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    f.attribute_proto.append(helper.make_attribute("body", sub))
    m = _model([helper.make_node("F", [], ["y"], domain="local")], [f])
    assert "ONNX-CUSTOM-DOMAIN" in rule_ids(inspect_bytes(m, "m.onnx"))


def test_sparse_attribute_inside_the_folder_is_not_a_path_finding() -> None:
    n = helper.make_node("Constant", [], ["y"])
    a = n.attribute.add()
    a.name, a.type = "sparse_value", onnx.AttributeProto.SPARSE_TENSOR
    a.sparse_tensor.CopyFrom(_sparse("weights.bin"))
    assert "ONNX-EXTERNAL-DATA-PATH" not in rule_ids(inspect_bytes(_model([n]), "m.onnx"))
