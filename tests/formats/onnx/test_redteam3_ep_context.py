"""Red-team: com.microsoft EPContext nodes, binaries precompiled for one execution provider.

onnxruntime hands an EPContext node's ``ep_cache_context`` -- the binary itself (embed_mode 1) or a file path
relative to the model (embed_mode 0) -- to the provider's SDK (QNN, TensorRT, OpenVINO, ...), which
deserializes and runs it. It was reported as an ordinary contrib op (info, allowed) and a path such as
``../../x`` was not looked at.
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from scanner.findings import Coverage
from tests.harness import inspect_bytes, rule_ids

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])


def _model(**attrs: object) -> bytes:
    n = helper.make_node("EPContext", ["x"], ["y"], domain="com.microsoft", **attrs)
    g = helper.make_graph([n], "g", [X], [Y])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(g, opset_imports=opsets).SerializeToString()


def test_embedded_binary_is_not_judged() -> None:
    fr = inspect_bytes(_model(embed_mode=1, ep_cache_context=b"\x7fELF" + b"\0" * 64, source="QNN"), "m.onnx")
    assert "ONNX-EP-CONTEXT" in rule_ids(fr) and fr.coverage is not Coverage.FULL


@pytest.mark.parametrize("loc", ["../../../home/user/.ssh/id_rsa", "/etc/shadow", "*/_ORT_MEM_ADDR_/*"])
def test_context_file_outside_the_model_folder_blocks(loc: str) -> None:
    fr = inspect_bytes(
        _model(embed_mode=0, ep_cache_context=loc, source="OpenVINOExecutionProvider"), "m.onnx"
    )
    assert {"ONNX-EP-CONTEXT", "ONNX-EXTERNAL-DATA-PATH"} <= rule_ids(fr)


def test_context_file_next_to_the_model_is_named() -> None:
    fr = inspect_bytes(_model(embed_mode=0, ep_cache_context="model_ctx.bin"), "m.onnx")
    hits = [f for f in fr.findings if f.rule_id == "ONNX-EP-CONTEXT"]
    assert hits and hits[0].evidence["files"] == ["model_ctx.bin"]
    assert "ONNX-EXTERNAL-DATA-PATH" not in rule_ids(fr)
