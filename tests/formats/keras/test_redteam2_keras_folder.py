"""Red-team: a Keras model as a folder (an unzipped ``.keras``), an ``hf://`` repo or a keras_hub preset.

``keras.saving.load_model(folder)`` loads any folder holding ``config.json`` (and ``hf://`` repos are the
same layout), keras_hub presets deserialize their ``config.json`` the same way, and tf.keras
``model_from_json`` reads a ``model.json``. A loose config.json was only checked to be JSON, so a Lambda
or an object from an arbitrary module in it was allowed.
"""

from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path

from tests.harness import inspect_bytes, path_verdict, rule_ids


def _lambda_config() -> bytes:
    code = base64.b64encode(marshal.dumps(compile("lambda x: x", "<l>", "eval"))).decode()
    layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": code}}},
        "registered_name": None,
    }
    model = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [layer]}}
    return json.dumps({**model, "registered_name": None}).encode()


def test_keras_folder_with_lambda_config_blocks(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_bytes(_lambda_config())
    (d / "metadata.json").write_text(json.dumps({"keras_version": "3.5.0"}))
    verdict, found = path_verdict(d)
    assert verdict == "block"
    assert "KERAS-LAMBDA-CODE" in rule_ids(inspect_bytes(_lambda_config(), "config.json"))


def test_model_json_with_unsafe_module_blocks() -> None:
    doc = {
        "class_name": "Functional",
        "config": {"layers": [{"class_name": "system", "module": "os", "config": {}}]},
        "keras_version": "2.15.0",
    }
    fr = inspect_bytes(json.dumps(doc).encode(), "model.json")
    assert "KERAS-UNSAFE-MODULE" in rule_ids(fr)


def test_keras_hub_preset_config_is_allowed() -> None:
    doc = {
        "module": "keras_hub.src.models.gemma.gemma_backbone",
        "class_name": "GemmaBackbone",
        "config": {"name": "gemma_backbone", "vocabulary_size": 256000, "num_layers": 18},
        "registered_name": "keras_hub>GemmaBackbone",
    }
    fr = inspect_bytes(json.dumps(doc).encode(), "config.json")
    assert not [f for f in fr.findings if f.rule_id.startswith("KERAS-")], [f.message for f in fr.findings]


def test_transformers_config_is_not_taken_for_keras() -> None:
    doc = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096}
    fr = inspect_bytes(json.dumps(doc).encode(), "config.json")
    assert not [f for f in fr.findings if f.rule_id.startswith("KERAS-")]
