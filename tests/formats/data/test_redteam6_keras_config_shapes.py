"""Loose JSON configs Keras would deserialize are walked whatever their top-level shape.

Red-team round 6: ``looks_like_keras_config`` took only a top-level dict with ``class_name`` for a Keras
config. Keras's ``deserialize_keras_object`` (what keras.saving.load_model(<folder>) / ``hf://`` runs on
config.json and ``model_from_json`` on model.json) walks into every list and every dict that lacks
``class_name`` or ``config``, and builds each dict that has both: a top-level list, an object nested under
``config`` or under any other key (next to HF's ``architectures``) escaped the Keras config walker.
"""

from __future__ import annotations

import json

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes, make_zip, rule_ids

UNSAFE = {"module": "os", "class_name": "system", "config": {"command": "id"}, "registered_name": None}
LAMBDA = {"class_name": "__lambda__", "config": {"value": "YWJj", "code": "YWJj"}}
DENSE = {
    "module": "keras.layers",
    "class_name": "Dense",
    "config": {"units": 2, "name": "d"},
    "registered_name": None,
}


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param([UNSAFE], id="top-level-list"),
        pytest.param([[DENSE], [UNSAFE]], id="list-of-lists"),
        pytest.param({"config": UNSAFE}, id="nested-under-config"),
        pytest.param({"module": "keras", "config": UNSAFE}, id="module-without-class_name"),
        pytest.param(
            {"architectures": ["BertModel"], "model_type": "bert", "head": UNSAFE}, id="beside-hf-keys"
        ),
        pytest.param({"layers": [DENSE, {"wrapped": LAMBDA}]}, id="lambda-deep-in-a-list"),
        pytest.param(
            {"modelTopology": {"model_config": {"class_name": "Sequential", "config": {"layers": [LAMBDA]}}}},
            id="tfjs-model-json",
        ),
    ],
)
@pytest.mark.parametrize("name", ["config.json", "model.json"])
def test_keras_object_anywhere_is_walked(doc: object, name: str) -> None:
    fr = inspect_bytes(json.dumps(doc).encode(), name)
    assert fr.format == "json"
    assert rule_ids(fr) & {"KERAS-UNSAFE-MODULE", "KERAS-LAMBDA-CODE", "KERAS-LAMBDA"}, rule_ids(fr)
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH


def test_class_name_after_a_long_leading_key_is_walked() -> None:
    """The whole document is parsed: a 5 KB first key does not push ``class_name`` out of sight."""
    doc = {"x" * 5000: 1, **UNSAFE}
    assert "KERAS-UNSAFE-MODULE" in rule_ids(inspect_bytes(json.dumps(doc).encode(), "config.json"))


HF_CONFIG = {
    "architectures": ["LlavaForConditionalGeneration"],
    "model_type": "llava",
    "text_config": {
        "model_type": "llama",
        "hidden_size": 4096,
        "rope_scaling": {"type": "linear", "factor": 2.0},
    },
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024},
    "quantization_config": {"quant_method": "bitsandbytes", "llm_int8_skip_modules": ["lm_head"]},
    "transformers_version": "4.46.0",
}
TOKENIZER_CONFIG = {
    "added_tokens_decoder": {"0": {"content": "<unk>", "special": True}},
    "bos_token": "<s>",
    "model_max_length": 4096,
    "tokenizer_class": "LlamaTokenizer",
}
TOKENIZER_JSON = {
    "version": "1.0",
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]},
}
DIFFUSERS_INDEX = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
TFJS_BENIGN = {
    "format": "layers-model",
    "modelTopology": {
        "model_config": {
            "class_name": "Sequential",
            "config": {
                "name": "sequential",
                "layers": [
                    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}},
                    {
                        "class_name": "Dense",
                        "config": {
                            "name": "dense",
                            "units": 2,
                            "activation": "relu",
                            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                        },
                    },
                ],
            },
        }
    },
    "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": []}],
}


@pytest.mark.parametrize(
    "name,doc",
    [
        ("config.json", HF_CONFIG),
        ("tokenizer_config.json", TOKENIZER_CONFIG),
        ("tokenizer.json", TOKENIZER_JSON),
        ("model_index.json", DIFFUSERS_INDEX),
        ("model.json", TFJS_BENIGN),
        ("config.json", [DENSE, {"inner": DENSE}]),
    ],
)
def test_benign_configs_stay_clean(name: str, doc: object) -> None:
    fr = inspect_bytes(json.dumps(doc).encode(), name)
    assert fr.format == "json" and not fr.findings, [(f.rule_id, f.message) for f in fr.findings]


def test_keras_archive_whose_config_hides_its_keys_past_4_kb_is_walked() -> None:
    """keras.saving.load_model("m.keras") reads config.json from any zip; one whose first 4 KB show no Keras
    key is not claimed as a Keras archive, and its config.json member is then judged as JSON: walked too."""
    doc = {"y" * 5000: 1, "config": UNSAFE}
    fr = inspect_bytes(make_zip({"config.json": json.dumps(doc).encode(), "notes.txt": b"hi"}), "m.keras")
    assert "KERAS-UNSAFE-MODULE" in rule_ids(fr), (fr.format, rule_ids(fr))
