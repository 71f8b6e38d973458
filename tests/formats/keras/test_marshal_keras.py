"""Marshal decoding without marshal.loads, and the Keras config rules."""

from __future__ import annotations

import base64
import marshal
import random

import pytest

from scanner.analysis.keras_config import analyze_keras_config
from scanner.analysis.marshal_code import decode_code, summarize
from scanner.findings import Severity


def _sample(x):  # never called: only its code object is marshalled
    import subprocess

    subprocess.run(["echo", "canary-string"])
    return [lambda y: y + 1.5 for _ in range(2)], b"bytes-const"


def test_marshal_summary_names_and_constants() -> None:
    s = summarize(marshal.dumps(_sample.__code__))
    assert s.ok and s.layout
    assert {"subprocess", "run"} <= set(s.names)
    assert "canary-string" in s.strings
    assert any("lambda" in f for f in s.functions)
    assert s.filenames and s.filenames[0].endswith("test_marshal_keras.py")


def test_marshal_rejects_non_code_and_garbage() -> None:
    assert decode_code(marshal.dumps(("a", 1)))[0] is None
    assert summarize(b"").ok is False
    assert summarize(b"\xe3" + b"\xff" * 64).ok is False


def test_marshal_fuzz_never_raises() -> None:
    blob = marshal.dumps(_sample.__code__)
    rng = random.Random(7)
    for cut in range(0, len(blob), 7):
        summarize(blob[:cut])
    for _ in range(300):
        b = bytearray(blob)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        summarize(bytes(b))


def _layer(module: str | None, cls: str, config: object, reg: object = None) -> dict:
    d: dict = {"class_name": cls, "config": config, "registered_name": reg}
    if module is not None:
        d["module"] = module
    return d


def _model(*layers: dict) -> dict:
    return {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {
                    "module": "keras",
                    "class_name": "Sequential",
                    "config": {"name": "inner", "layers": list(layers)},
                }
            ],
        },
    }


def _rules(cfg: dict) -> dict[str, Severity | None]:
    return {i.rule_id: i.severity for i in analyze_keras_config(cfg).issues}


def test_standard_config_is_clean() -> None:
    cfg = _model(
        _layer(
            "keras.layers",
            "Dense",
            {
                "name": "d",
                "activation": "relu",
                "kernel_initializer": _layer("keras.initializers", "GlorotUniform", {"seed": None}),
            },
        ),
        _layer(
            "keras.layers",
            "Activation",
            {"name": "a", "activation": _layer("builtins", "function", "gelu", "function")},
        ),
        _layer("keras.layers", "TextVectorization", {"name": "tv", "vocabulary": ["a", "b"]}),
        _layer("keras_hub.src.models", "GemmaBackbone", {"name": "g"}, "keras_hub>GemmaBackbone"),
    )
    assert _rules(cfg) == {}


@pytest.mark.parametrize(
    ("layer", "rule"),
    [
        (_layer("os", "system", {"name": "x"}), "KERAS-UNSAFE-MODULE"),
        (_layer("builtins", "function", "exec", "function"), "KERAS-UNSAFE-MODULE"),
        (_layer("keras.utils", "function", "get_file", "function"), "KERAS-NONMODELING-API"),
        (_layer("keras.saving", "load_model", {"filepath": "/x"}), "KERAS-NONMODELING-API"),
        (_layer("keras.layers", "TFSMLayer", {"name": "t", "filepath": "gs://b/m"}), "KERAS-TFSMLAYER"),
        (
            _layer("keras.layers", "IntegerLookup", {"name": "i", "vocabulary": "http://h/v.txt"}),
            "KERAS-EXTERNAL-PATH",
        ),
        (
            _layer("keras_hub.tokenizers", "BytePairTokenizer", {"name": "b", "merges": "/etc/passwd"}),
            "KERAS-EXTERNAL-PATH",
        ),
        (
            _layer(
                "keras.layers", "TorchModuleWrapper", {"name": "w", "module": base64.b64encode(b"x").decode()}
            ),
            "KERAS-TORCH-WRAPPER",
        ),
        (_layer("my_lib.layers", "Mine", {"name": "m"}, "my_lib>Mine"), "KERAS-CUSTOM-OBJECT"),
        (
            _layer(
                None,
                "Lambda",
                {"name": "l", "function": "system", "function_type": "function", "module": "posix"},
            ),
            "KERAS-UNSAFE-MODULE",
        ),
    ],
)
def test_config_rules(layer: dict, rule: str) -> None:
    assert rule in _rules(_model(layer))


def test_lambda_blob_is_decoded_into_evidence() -> None:
    code = base64.b64encode(marshal.dumps(_sample.__code__)).decode()
    cfg = _model(
        _layer(
            "keras.layers",
            "Lambda",
            {
                "name": "lam",
                "function": {
                    "class_name": "__lambda__",
                    "config": {"code": code, "defaults": None, "closure": None},
                },
            },
        )
    )
    issues = analyze_keras_config(cfg).issues
    assert [i.rule_id for i in issues] == ["KERAS-LAMBDA-CODE"]
    ev = issues[0].evidence
    assert ev["layer"] == "lam" and ev["decoded"] is True and "run" in ev["suspicious_names"]


def test_malformed_lambda_blob_still_flagged() -> None:
    cfg = _model(
        _layer(
            None,
            "Lambda",
            {"name": "l", "function": ["%%%not-base64", None, None], "function_type": "lambda"},
        )
    )
    issues = analyze_keras_config(cfg).issues
    assert issues and issues[0].rule_id == "KERAS-LAMBDA-CODE"


def test_node_cap_reports_truncation() -> None:
    cfg = {"layers": [{"class_name": "Dense", "config": {"name": str(i)}} for i in range(2000)]}
    assert analyze_keras_config(cfg, max_nodes=100).truncated


def test_deep_nesting_does_not_recurse() -> None:
    deep: dict = {"class_name": "Dense", "config": {}}
    for _ in range(5000):
        deep = {"config": deep}
    out = analyze_keras_config(deep)
    assert out.truncated
