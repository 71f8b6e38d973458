"""False alarm: onnxruntime-extensions registers tokenizer and image ops in "com.microsoft.extensions".

Its own pre/post-processing tool (onnxruntime_extensions.tools.pre_post_processing, 0.15.2) wrote an image
model with com.microsoft.extensions:DecodeImage that loaded in onnxruntime 1.32 with the extensions library;
the scan blocked it as an unknown custom domain. The measured ops are extensions ops (low); anything else in
that domain -- the Azure/OpenAI HTTP invokers of its Azure builds -- stays a custom-domain op.
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from scanner.findings import Severity
from tests.harness import inspect_bytes


def _model(op: str) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, ["h", "w", 3])
    g = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], domain="com.microsoft.extensions")], "g", [x], [y]
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft.extensions", 1)]
    return helper.make_model(g, opset_imports=opsets).SerializeToString()


@pytest.mark.parametrize(
    ("op", "rule", "severity"),
    [
        ("DecodeImage", "ONNX-EXTENSIONS-OP", Severity.LOW),
        ("GPT2Tokenizer", "ONNX-EXTENSIONS-OP", Severity.LOW),
        ("AzureTextToText", "ONNX-CUSTOM-DOMAIN", Severity.HIGH),
        ("OpenAIAudioToText", "ONNX-CUSTOM-DOMAIN", Severity.HIGH),
    ],
)
def test_extensions_ops_in_the_microsoft_extensions_domain(op: str, rule: str, severity: Severity) -> None:
    hits = [f for f in inspect_bytes(_model(op), "m.onnx").findings if f.rule_id == rule]
    assert len(hits) == 1 and hits[0].severity is severity
