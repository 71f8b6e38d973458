"""Red-team variants of Hugging Face remote code: every shape of auto_map a transformers loader reads.

Each case is a repository where ``trust_remote_code=True`` imports a file because of a config entry, and the
file must carry CODE-EXECUTED-BY-LOADER (trusted only by digest), whatever it contains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import path_verdict, rule_ids, scan_files

QUIET = "class Proc:\n    def __init__(self):\n        self.x = 1\n"


def _loaded(res: dict, path: str) -> bool:
    return path in res and "CODE-EXECUTED-BY-LOADER" in rule_ids(res[path])


@pytest.mark.parametrize(
    "auto_map",
    [
        # image_processing_auto._resolve_auto_map_class_ref: a {backend: reference} mapping
        {"AutoImageProcessor": {"torchvision": "quiet_proc.Proc", "pil": "quiet_proc.Proc"}},
        {"AutoVideoProcessor": {"torchvision": "quiet_proc.Proc"}},
        {"AutoImageProcessor": ["quiet_proc.Proc", None]},
    ],
)
def test_backend_mapping_and_pair_values(auto_map: dict) -> None:
    res = scan_files({"preprocessor_config.json": json.dumps({"auto_map": auto_map}), "quiet_proc.py": QUIET})
    assert _loaded(res, "quiet_proc.py")
    assert "HF-REMOTE-CODE" in rule_ids(res["preprocessor_config.json"])


@pytest.mark.parametrize(
    "sub", ["image_processor", "feature_extractor", "audio_processor", "video_processor"]
)
def test_nested_processor_config_auto_map(sub: str) -> None:
    """processor_config.json nests the processor configs; get_image_processor_dict & co. read them first."""
    cfg = {"processor_class": "X", sub: {"auto_map": {"AutoImageProcessor": "quiet_proc.Proc"}}}
    res = scan_files({"processor_config.json": json.dumps(cfg), "quiet_proc.py": QUIET})
    assert _loaded(res, "quiet_proc.py")


@pytest.mark.parametrize(
    ("key", "ref", "decoy", "runs"),
    [
        # AutoImageProcessor derived from AutoFeatureExtractor by str.replace over the whole reference
        ("AutoFeatureExtractor", "p_FeatureExtractor.C", "p_FeatureExtractor.py", "p_ImageProcessor.py"),
        # AutoVideoProcessor derived from AutoImageProcessor the same way
        ("AutoImageProcessor", "p_ImageProcessor.C", "p_ImageProcessor.py", "p_VideoProcessor.py"),
    ],
)
def test_derived_reference_runs_another_module(key: str, ref: str, decoy: str, runs: str) -> None:
    res = scan_files(
        {"preprocessor_config.json": json.dumps({"auto_map": {key: ref}}), decoy: QUIET, runs: QUIET}
    )
    assert _loaded(res, decoy) and _loaded(res, runs)


def test_derived_reference_same_module_adds_nothing() -> None:
    res = scan_files(
        {
            "preprocessor_config.json": json.dumps(
                {"auto_map": {"AutoFeatureExtractor": "feature_extraction_x.XFeatureExtractor"}}
            ),
            "feature_extraction_x.py": "class XFeatureExtractor:\n    pass\n",
        }
    )
    assert "HF-AUTOMAP-MISSING" not in rule_ids(res)
    assert _loaded(res, "feature_extraction_x.py")


def test_sentence_transformers_cross_repo_module_blocks(tmp_path: Path) -> None:
    """modules.json type 'org/repo--module.Class': get_class_from_dynamic_module downloads another repo."""
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "attacker/evil--evilmod.EvilModule"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "block"
    assert "HF-AUTOMAP-CROSS-REPO" in rules


def test_sentence_transformers_plain_modules_stay_allowed(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


def test_reference_is_not_stripped() -> None:
    """' modeling.M' makes transformers open ' modeling.py', not modeling.py (a decoy a policy may trust)."""
    res = scan_files(
        {
            "config.json": json.dumps({"model_type": "x", "auto_map": {"AutoModel": " modeling.M"}}),
            "modeling.py": "class M:\n    pass\n",
            " modeling.py": QUIET,
        }
    )
    assert _loaded(res, " modeling.py")


@pytest.mark.parametrize(
    ("files", "rule"),
    [
        # Dense: import_from_string(config["activation_function"])() (any path with trust_remote_code)
        (
            {"2_Dense/config.json": {"in_features": 4, "activation_function": "os.abort"}},
            "CONFIG-TARGET-DANGEROUS",
        ),
        # CrossEncoder: a 'torch.' path is called even without trust_remote_code, and not checked to be a Module
        (
            {
                "config.json": {
                    "model_type": "bert",
                    "sentence_transformers": {"activation_fn": "torch.hub.load"},
                }
            },
            "CONFIG-TARGET-UNLISTED",
        ),
        ({"config.json": {"sbert_ce_default_activation_function": "evilpkg.boom"}}, "CONFIG-TARGET-UNLISTED"),
        (
            {"config_sentence_transformers.json": {"activation_fn": "builtins.breakpoint"}},
            "CONFIG-TARGET-UNLISTED",
        ),
    ],
)
def test_sentence_transformers_activation_paths_are_targets(tmp_path: Path, files: dict, rule: str) -> None:
    for name, cfg in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(cfg))
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert rule in rules or "CONFIG-TARGET-DANGEROUS" in rules


def test_sentence_transformers_saved_activations_stay_allowed(tmp_path: Path) -> None:
    (tmp_path / "2_Dense").mkdir()
    (tmp_path / "2_Dense" / "config.json").write_text(
        json.dumps({"in_features": 4, "activation_function": "torch.nn.modules.activation.Tanh"})
    )
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"},
            }
        )
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


def test_transformers_activation_names_are_not_paths(tmp_path: Path) -> None:
    """GPT-2's config.json has "activation_function": "gelu_new": a name, not an import path."""
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "activation_function": "gelu_new"})
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


@pytest.mark.parametrize("name", ["modular_config.json", "modular_model_index.json", "model_index.json"])
def test_diffusers_modular_auto_map(name: str) -> None:
    """diffusers ModularPipelineBlocks.from_pretrained(trust_remote_code=True) imports auto_map[cls.__name__]."""
    cfg = {"_class_name": "MyBlocks", "auto_map": {"ModularPipelineBlocks": "block.MyBlocks"}}
    res = scan_files({name: json.dumps(cfg), "block.py": QUIET})
    assert _loaded(res, "block.py")


def test_model_config_dotted_activation_is_not_a_dense_module(tmp_path: Path) -> None:
    """Only a Dense module config (in/out_features) makes sentence-transformers call activation_function."""
    cfg = {"model_type": "custom", "activation_function": "torch.nn.functional.gelu"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules
