"""Keras Lambda layers: any form of function the loaders accept is judged; an unexpected form is a finding."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scanner.analysis.keras_config import analyze_keras_config
from tests.harness import path_verdict


def _lambda(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lam", **config}}
            ]
        },
    }


def _rules(cfg: dict[str, Any]) -> dict[str, dict]:
    out = analyze_keras_config(cfg)
    return {i.rule_id: i.evidence for i in out.issues}


K3_LAMBDA = {"class_name": "__lambda__", "config": {"code": None, "defaults": None, "closure": None}}


@pytest.mark.parametrize(
    "code",
    [
        "lambda x: __import__('os').system('id')",  # source text, not base64
        "def f(x):\n    return x\n",
        "e30=",  # valid base64, not a code object
    ],
)
def test_keras3_lambda_code_that_is_not_bytecode(code: str) -> None:
    fn = json.loads(json.dumps(K3_LAMBDA))
    fn["config"]["code"] = code
    rules = _rules(_lambda({"function": fn}))
    assert "KERAS-LAMBDA-CODE" in rules
    assert rules["KERAS-LAMBDA-CODE"].get("decoded") is False


@pytest.mark.parametrize("code", [12345, ["nested"], {"a": 1}])
def test_keras3_lambda_code_of_odd_type(code: Any) -> None:
    fn = json.loads(json.dumps(K3_LAMBDA))
    fn["config"]["code"] = code
    assert "KERAS-LAMBDA-CODE" in _rules(_lambda({"function": fn}))


@pytest.mark.parametrize(
    "config",
    [
        {"function": 42},
        {"function": ["a", "b"]},
        {"function": {"no_class": True}},
        {"function": "x", "function_type": "raw"},
        {"function": "x", "function_type": "mystery"},
        {"function": "relu", "mask": "abc", "mask_type": "lambda"},
        {"function": "relu", "output_shape": "abc", "output_shape_type": "lambda"},
    ],
)
def test_unexpected_lambda_forms_are_findings(config: dict[str, Any]) -> None:
    assert "KERAS-LAMBDA-CODE" in _rules(_lambda(config))


def test_named_custom_function_needs_custom_code() -> None:
    assert "KERAS-CUSTOM-OBJECT" in _rules(_lambda({"function": "my_secret_fn"}))


def test_plain_activation_lambda_and_shapes_are_quiet() -> None:
    assert _rules(_lambda({"function": "relu", "output_shape": [4]})) == {}


def test_keras_archive_with_source_text_lambda_blocks(tmp_path: Path) -> None:
    fn = json.loads(json.dumps(K3_LAMBDA))
    fn["config"]["code"] = "lambda x: x"
    cfg = _lambda({"function": fn})
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "KERAS-LAMBDA-CODE" in rules


def test_real_bytecode_still_decoded() -> None:
    import marshal

    code = base64.b64encode(marshal.dumps((lambda x: x + 1).__code__)).decode()
    fn = json.loads(json.dumps(K3_LAMBDA))
    fn["config"]["code"] = code
    ev = _rules(_lambda({"function": fn}))["KERAS-LAMBDA-CODE"]
    assert ev.get("decoded") is not False
