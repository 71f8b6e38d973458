"""ONNX: detection, domains, PyOp, external data, size abuse, recursion caps, backdoor heuristic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from scanner.findings import Coverage, Severity
from scanner.formats.onnx.onnx_model import check_location
from scanner.limits import DEFAULT_LIMITS
from tests.harness import inspect_bytes, rule_ids

FL = TensorProto.FLOAT
X = helper.make_tensor_value_info("x", FL, [1, 4])
Y = helper.make_tensor_value_info("y", FL, [1, 4])


def model(nodes, inits=(), *, inputs=(X,), outputs=(Y,), functions=(), domains=()) -> bytes:
    g = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    ops = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(g, opset_imports=ops, functions=list(functions))
    m.ir_version = 8
    return m.SerializeToString()


def arr(name: str, v) -> TensorProto:
    return numpy_helper.from_array(np.asarray(v), name)


def test_detected_by_content_not_name() -> None:
    fr = inspect_bytes(model([helper.make_node("Relu", ["x"], ["y"])]), "weights.bin")
    assert fr.format == "onnx"
    assert not {f.rule_id for f in fr.findings} - {"FORMAT-NAME-MISMATCH"}


def test_other_protobufs_are_not_claimed() -> None:
    # a SavedModel-like message: field 1 = 1 then field 2 (ir_version 1 is below any real ONNX)
    assert inspect_bytes(b"\x08\x01\x12\x04abcd", "saved_model.pb").format != "onnx"
    assert inspect_bytes(b"\x0a\x04node\x12\x02ab", "graph.pb").format != "onnx"


@pytest.mark.parametrize(
    ("domain", "rule", "sev"),
    [
        ("com.microsoft", "ONNX-CONTRIB-OP", Severity.INFO),
        ("com.microsoft.nchwc", "ONNX-CONTRIB-OP", Severity.INFO),
        ("ai.onnx.contrib", "ONNX-EXTENSIONS-OP", Severity.LOW),
        ("com.acme.kernels", "ONNX-CUSTOM-DOMAIN", Severity.HIGH),
    ],
)
def test_domains(domain: str, rule: str, sev: Severity) -> None:
    fr = inspect_bytes(
        model([helper.make_node("Op", ["x"], ["y"], domain=domain)] * 3, domains=[domain]), "m.onnx"
    )
    hits = [f for f in fr.findings if f.rule_id == rule]
    assert len(hits) == 1 and hits[0].severity is sev and hits[0].evidence["count"] == 3


def test_custom_domain_inside_loop_body_and_function_body() -> None:
    body = helper.make_graph(
        [helper.make_node("K", ["a"], ["b"], domain="x.y")],
        "body",
        [helper.make_tensor_value_info("a", FL, [1])],
        [helper.make_tensor_value_info("b", FL, [1])],
    )
    inner_if = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)
    outer = helper.make_graph([inner_if], "outer", [], [Y])
    fr = inspect_bytes(
        model([helper.make_node("If", ["c"], ["y"], then_branch=outer, else_branch=outer)], [arr("c", True)]),
        "m.onnx",
    )
    assert "ONNX-CUSTOM-DOMAIN" in rule_ids(fr)
    fn = helper.make_function(
        "local",
        "F",
        ["X"],
        ["Y"],
        [helper.make_node("PyOp", ["X"], ["Y"], module="m", class_name="C", compute="run")],
        [helper.make_opsetid("", 17)],
    )
    fr = inspect_bytes(
        model([helper.make_node("F", ["x"], ["y"], domain="local")], functions=[fn], domains=["local"]),
        "m.onnx",
    )
    pyop = [f for f in fr.findings if f.rule_id == "ONNX-PYOP"]
    assert pyop and pyop[0].severity is Severity.CRITICAL and pyop[0].evidence["attributes"]["module"] == "m"
    assert "ONNX-CUSTOM-DOMAIN" not in rule_ids(fr)  # the call of a model-local function is not a custom op


def test_recursive_functions_and_depth_cap() -> None:
    f1 = helper.make_function(
        "l",
        "A",
        ["X"],
        ["Y"],
        [helper.make_node("B", ["X"], ["Y"], domain="l")],
        [helper.make_opsetid("", 17)],
    )
    f2 = helper.make_function(
        "l",
        "B",
        ["X"],
        ["Y"],
        [helper.make_node("A", ["X"], ["Y"], domain="l")],
        [helper.make_opsetid("", 17)],
    )
    fr = inspect_bytes(
        model([helper.make_node("A", ["x"], ["y"], domain="l")], functions=[f1, f2], domains=["l"]), "m.onnx"
    )
    assert any(f.rule_id == "ONNX-INVALID" and "recurse" in f.message for f in fr.findings)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "leaf", [], [Y])
    for _ in range(10):
        g = helper.make_graph(
            [helper.make_node("If", ["c"], ["y"], then_branch=g, else_branch=g)], "lvl", [], [Y]
        )
    data = model(g.node, [arr("c", True)])
    fr = inspect_bytes(data, "m.onnx", limits=replace(DEFAULT_LIMITS, max_graph_recursion=4))
    assert "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL
    fr = inspect_bytes(data, "m.onnx", limits=replace(DEFAULT_LIMITS, max_nodes=50))
    assert any(f.evidence.get("limit") == "max_nodes" for f in fr.findings)


@pytest.mark.parametrize(
    ("loc", "bad"),
    [
        ("weights.bin", False),
        ("sub/dir/w.bin", False),
        ("a/../w.bin", False),
        ("../w.bin", True),
        ("a/../../w.bin", True),
        ("/etc/passwd", True),
        ("\\\\server\\share\\w", True),
        ("C:\\w.bin", True),
        ("c:w.bin", True),
        ("file:///etc/passwd", True),
        ("s3://b/k", True),
        ("..\\..\\w", True),
        ("", True),
        ("w\x00.bin", True),
        ("//host/x", True),
    ],
)
def test_location_rules(loc: str, bad: bool) -> None:
    assert (check_location(loc) is not None) is bad


def ext_tensor(kv: dict[str, str], dims=(2, 2)) -> TensorProto:
    t = TensorProto(name="W", data_type=FL, dims=list(dims), data_location=TensorProto.EXTERNAL)
    for k, v in kv.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


@pytest.mark.parametrize(
    ("kv", "rule"),
    [
        ({"location": "../../etc/shadow"}, "ONNX-EXTERNAL-DATA-PATH"),
        ({"location": "w.bin", "basepath": "/"}, "ONNX-EXTERNAL-DATA-KEY"),
        ({"location": "w.bin", "offset": "-4"}, "ONNX-EXTERNAL-DATA-RANGE"),
        ({"location": "w.bin", "length": "12"}, "ONNX-EXTERNAL-DATA-RANGE"),
        ({"offset": "0"}, "ONNX-EXTERNAL-DATA-RANGE"),
    ],
)
def test_external_data_entries(kv: dict[str, str], rule: str) -> None:
    fr = inspect_bytes(model([helper.make_node("MatMul", ["x", "W"], ["y"])], [ext_tensor(kv)]), "m.onnx")
    assert rule in rule_ids(fr), [f.message for f in fr.findings]


def test_shape_abuse() -> None:
    t = arr("W", np.zeros((2, 2), np.float32))
    t.raw_data = t.raw_data[:12]
    fr = inspect_bytes(model([helper.make_node("Add", ["x", "W"], ["y"])], [t]), "m.onnx")
    assert any(f.rule_id == "ONNX-SHAPE-ABUSE" and "raw_data" in f.message for f in fr.findings)
    big = TensorProto(name="W", data_type=FL, dims=[1 << 40, 1 << 40])
    fr = inspect_bytes(model([helper.make_node("Add", ["x", "W"], ["y"])], [big]), "m.onnx")
    assert any("overflow" in f.message for f in fr.findings if f.rule_id == "ONNX-SHAPE-ABUSE")
    nodes = [helper.make_node("Tile", ["x", "reps"], ["t"]), helper.make_node("ReduceSum", ["t"], ["y"])]
    fr = inspect_bytes(model(nodes, [arr("reps", np.array([1 << 20, 1 << 20], np.int64))]), "m.onnx")
    assert [(f.rule_id, f.severity) for f in fr.findings] == [("ONNX-SHAPE-ABUSE", Severity.MEDIUM)]
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"])]
    fr = inspect_bytes(model(nodes, [arr("scales", np.array([1, 1, 1e4, 1e4], np.float32))]), "m.onnx")
    assert "ONNX-SHAPE-ABUSE" in rule_ids(fr)
    body = helper.make_graph(
        [helper.make_node("Identity", ["v"], ["v2"])],
        "b",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", FL, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v2", FL, [1, 4]),
        ],
    )
    loop = helper.make_node("Loop", ["M", "", "x"], ["y"], body=body)
    fr = inspect_bytes(model([loop], [arr("M", np.array(1 << 62, np.int64))]), "m.onnx")
    assert "ONNX-SHAPE-ABUSE" in rule_ids(fr)


def test_invalid_and_insane_models() -> None:
    fr = inspect_bytes(b"\x08\x07\x3a\x05\x0a\x03abc\x42\x09\x0a", "m.onnx")  # opset_import cut short
    assert fr.format == "onnx" and "ONNX-INVALID" in rule_ids(fr) and fr.coverage is Coverage.NONE
    fr = inspect_bytes(b"\x08\x07\x3a\x00", "m.onnx")  # graph but no opset import
    assert "ONNX-INVALID" in rule_ids(fr)
    fr = inspect_bytes(
        b"\x08\x07\x3a\x05\x0a\x03abc" + b"\xff" * 4, "m.onnx"
    )  # garbage tag: not claimed, still fails closed
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH


def test_ort_format() -> None:
    fr = inspect_bytes(b"\x10\x00\x00\x00ORTM" + b"\0" * 40, "m.ort")
    assert fr.format == "onnx-ort" and fr.coverage is Coverage.NONE


def test_large_metadata_is_info() -> None:
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [X], [Y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.doc_string = "x" * (2 << 20)
    fr = inspect_bytes(m.SerializeToString(), "m.onnx")
    assert [(f.rule_id, f.severity) for f in fr.findings] == [("ONNX-METADATA-LARGE", Severity.INFO)]


# --- backdoor heuristic: negatives that resemble it -------------------------------------------------------
IDS = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 6])
OUT = helper.make_tensor_value_info("out", FL, [1, 6, 4])


def lm(extra_nodes, extra_inits, final: str):
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("MatMul", ["e", "W"], ["l"]),
    ] + extra_nodes
    nodes.append(helper.make_node("Identity", [final], ["out"]))
    inits = [arr("emb", np.ones((16, 4), np.float32)), arr("W", np.ones((4, 4), np.float32))] + extra_inits
    return model(nodes, inits, inputs=[IDS], outputs=[OUT])


def test_backdoor_needs_multi_element_constant_and_constant_branch() -> None:
    trig = [
        helper.make_node("Equal", ["ids", "pat"], ["h"]),
        helper.make_node("Where", ["h", "evil", "l3"], ["sel"]),
        helper.make_node("Unsqueeze", ["l", "ax"], ["l3"]),
    ]
    base = [arr("evil", np.ones((1, 6, 1, 4), np.float32)), arr("ax", np.array([2], np.int64))]
    hit = lm(trig, base + [arr("pat", np.array([[1, 2, 3, 4, 5, 6]], np.int64))], "sel")
    assert "ONNX-GRAPH-BACKDOOR" in rule_ids(inspect_bytes(hit, "m.onnx"))
    scalar = lm(trig, base + [arr("pat", np.array(0, np.int64))], "sel")
    assert "ONNX-GRAPH-BACKDOOR" not in rule_ids(inspect_bytes(scalar, "m.onnx"))
    learned_branch = [
        helper.make_node("Equal", ["ids", "pat"], ["h"]),
        helper.make_node("Unsqueeze", ["l", "ax"], ["l3"]),
        helper.make_node("Where", ["h", "l3", "l3"], ["sel"]),
    ]
    no_const = lm(learned_branch, base + [arr("pat", np.array([[1, 2, 3, 4, 5, 6]], np.int64))], "sel")
    assert "ONNX-GRAPH-BACKDOOR" not in rule_ids(inspect_bytes(no_const, "m.onnx"))


def test_shape_checks_like_torch_expand_exports_are_not_backdoors() -> None:
    nodes = [
        helper.make_node("Shape", ["ids"], ["s"]),
        helper.make_node("Equal", ["s", "neg"], ["eq"]),
        helper.make_node(
            "ConstantOfShape", ["two"], ["ones"], value=helper.make_tensor("v", TensorProto.INT64, [1], [1])
        ),
        helper.make_node("Where", ["eq", "ones", "s"], ["shape"]),
        helper.make_node("Expand", ["l", "shape3"], ["x3"]),
        helper.make_node("Concat", ["shape", "four"], ["shape3"], axis=0),
    ]
    inits = [
        arr("neg", np.array([-1, -1], np.int64)),
        arr("two", np.array([2], np.int64)),
        arr("four", np.array([4], np.int64)),
    ]
    assert "ONNX-GRAPH-BACKDOOR" not in rule_ids(inspect_bytes(lm(nodes, inits, "x3"), "m.onnx"))


def test_trigger_through_learned_weights_is_not_flagged() -> None:
    nodes = [
        helper.make_node("Cast", ["ids"], ["f"], to=FL),
        helper.make_node("MatMul", ["f", "P"], ["proj"]),
        helper.make_node("Greater", ["proj", "th"], ["g"]),
        helper.make_node("Where", ["g", "evil", "l"], ["sel"]),
    ]
    inits = [
        arr("P", np.ones((6, 4), np.float32)),
        arr("th", np.ones(4, np.float32)),
        arr("evil", np.ones((1, 6, 4), np.float32)),
    ]
    assert "ONNX-GRAPH-BACKDOOR" not in rule_ids(inspect_bytes(lm(nodes, inits, "sel"), "m.onnx"))
