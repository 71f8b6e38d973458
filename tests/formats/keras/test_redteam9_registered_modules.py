"""Red-team round 9: a registered_name does not stop a loader from importing the object's module.

Both loaders look the registered name up first; when nothing is registered under it, tf_keras 2.21 (top-level
objects, Lambda functions) and Keras 3.0-3.8 (every object) ``importlib.import_module(module)`` and build the
attribute. A file writing any registered_name was only warned about: tf_keras ``load_model`` (safe mode) of the
sample, whose object is ``tensorflow_hub.keras_layer.KerasLayer`` "registered as" ``Custom>KerasLayer``, loaded
the SavedModel its ``handle`` named and ran that model's initializer (it wrote a marker file). An object from a
module outside Keras now blocks; ``__main__`` (the loading program's globals) and bare registered names stay
warnings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes, make_zip, scan_file

SAMPLES = Path(__file__).parent / "samples"


def _zip(cfg: dict) -> bytes:
    return make_zip(
        {"config.json": json.dumps(cfg).encode(), "metadata.json": b'{"keras_version": "2.21.0"}'}
    )


def _seq(*layers: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": list(layers)}}


def _obj(module: str | None, cls: str, reg: str | None, **cfg: object) -> dict:
    return {"module": module, "class_name": cls, "config": {"name": "o", **cfg}, "registered_name": reg}


def _custom(fr) -> list:  # type: ignore[no-untyped-def]
    return [f for f in fr.findings if f.rule_id == "KERAS-CUSTOM-OBJECT"]


@pytest.mark.slow
def test_real_tf_keras_hub_layer_registered_under_any_name_blocks() -> None:
    fr = scan_file(SAMPLES / "tf_keras_hub_keraslayer.keras")
    found = _custom(fr)
    assert found and found[0].severity is Severity.HIGH, [(f.rule_id, f.severity) for f in fr.findings]
    assert "tensorflow_hub.keras_layer" in found[0].message


@pytest.mark.parametrize(
    "cfg",
    [
        _obj("tensorflow_hub.keras_layer", "KerasLayer", "Custom>KerasLayer", handle="https://x.invalid/m"),
        _obj("tensorflow_hub", "KerasLayer", "KerasLayer", handle="/tmp/sm"),
        _seq(_obj("keras_tuner.engine.hypermodel", "HyperModel", "keras_tuner>HyperModel")),
        _seq(_obj("my_package.layers", "MyLayer", "MyPackage>MyLayer")),
        _seq(
            _obj(
                "keras.layers",
                "Lambda",
                None,
                function_type="function",
                function={
                    "module": "some_pkg.acts",
                    "class_name": "function",
                    "config": "f",
                    "registered_name": "x>f",
                },
            )
        ),
    ],
)
def test_registered_object_from_a_module_outside_keras_blocks(cfg: dict) -> None:
    fr = inspect_bytes(_zip(cfg), "m.keras")
    assert fr.max_severity in (Severity.HIGH, Severity.CRITICAL), [
        (f.rule_id, f.severity) for f in fr.findings
    ]
    assert any(f.severity is Severity.HIGH for f in _custom(fr))


@pytest.mark.parametrize(
    "cfg",
    [
        _seq(_obj("__main__", "MyLayer", "MyLayer")),
        _seq({"class_name": "MyLayer", "config": {"name": "m"}, "registered_name": "MyPackage>MyLayer"}),
    ],
)
def test_objects_no_loader_imports_stay_warnings(cfg: dict) -> None:
    fr = inspect_bytes(_zip(cfg), "m.keras")
    assert fr.max_severity is Severity.MEDIUM, [(f.rule_id, f.severity) for f in fr.findings]
    assert _custom(fr)
