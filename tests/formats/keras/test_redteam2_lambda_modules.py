"""Red-team: tf.keras Lambda callables named by module.

tf.keras ``Lambda._parse_function_from_config`` resolves ``function`` in ``module``, ``output_shape`` in
``output_shape_module`` and ``mask`` in ``mask_module`` (any module already imported, ``os`` and
``builtins`` included). Only ``function``/``module`` was judged: the same call through output_shape or
mask was allowed, and a bare name with no module (searched in the layer's globals and custom objects)
was silent.
"""

from __future__ import annotations

import json

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes, make_zip, rule_ids


def _keras(layer_cfg: dict) -> bytes:
    layer = {"class_name": "Lambda", "config": {"name": "l", **layer_cfg}}
    cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [layer]}}
    return make_zip(
        {"config.json": json.dumps(cfg).encode(), "metadata.json": b'{"keras_version": "2.15.0"}'}
    )


BENIGN_FN = {"function": "relu", "function_type": "function", "module": "keras.activations"}


@pytest.mark.parametrize("key", ["output_shape", "mask"])
def test_output_shape_and_mask_modules_are_judged(key: str) -> None:
    cfg = {**BENIGN_FN, key: "system", f"{key}_type": "function", f"{key}_module": "os"}
    fr = inspect_bytes(_keras(cfg), "m.keras")
    assert "KERAS-UNSAFE-MODULE" in rule_ids(fr)


def test_non_modelling_module_in_a_lambda_is_reported() -> None:
    cfg = {**BENIGN_FN, "mask": "load_model", "mask_type": "function", "mask_module": "keras.src.saving"}
    assert "KERAS-NONMODELING-API" in rule_ids(inspect_bytes(_keras(cfg), "m.keras"))


def test_bare_function_name_without_module_is_a_custom_object() -> None:
    cfg = {"function": "eval", "function_type": "function"}
    found = [f for f in inspect_bytes(_keras(cfg), "m.keras").findings if f.rule_id == "KERAS-CUSTOM-OBJECT"]
    assert found and found[0].severity >= Severity.MEDIUM


def test_keras_activation_callables_stay_clean() -> None:
    cfg = {**BENIGN_FN, "output_shape": [None, 4], "output_shape_type": "raw", "mask": None}
    assert not {r for r in rule_ids(inspect_bytes(_keras(cfg), "m.keras")) if r.startswith("KERAS-")}
