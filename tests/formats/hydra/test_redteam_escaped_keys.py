"""Red-team: hydra/OmegaConf ``_target_`` keys spelled with YAML escapes, and NeMo's Hydra 0.x ``cls``.

The YAML loader decodes ``"\\x5ftarget_"``, ``"\\u005ftarget_"`` and a line-folding backslash inside a
double-quoted key to ``_target_``, so ``hydra.utils.instantiate`` calls the value. NeMo's
``maybe_update_config_version`` renames a ``cls`` (with ``params``) to ``_target_`` at every level.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import make_tar, path_verdict

ESCAPED = [
    '"\\x5ftarget_": os.system\ncommand: touch /tmp/modelward-canary\n',
    'model:\n  "\\u005ftarget_": builtins.exec\n  _args_: ["print(1)"]\n',
    'model:\n  "\\U0000005ftarget_": subprocess.run\n',
    'model:\n  ? "_tar\\\n    get_"\n  : os.system\n',
    'trainer:\n  "cl\\x61ss_path": os.system\n  init_args: {}\n',
]


@pytest.mark.parametrize("text", ESCAPED)
@pytest.mark.parametrize("name", ["config.yaml", "conf.yml", "config.txt"])
def test_escaped_target_keys_block(tmp_path: Path, text: str, name: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    decision, rules = path_verdict(p)
    assert decision == "block", rules
    assert "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    "text",
    [
        'name: "C:\\\\models\\\\x"\npath: "a\\tb"\n',  # escapes, no target
        'model:\n  "\\x5ftarget_": torch.nn.Linear\n  in_features: 2\n  out_features: 2\n',  # allowlisted
    ],
)
def test_escaped_benign_yaml_allowed(tmp_path: Path, text: str) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    decision, rules = path_verdict(p)
    assert decision == "allow", rules


def _nemo(tmp_path: Path, cfg: str) -> Path:
    p = tmp_path / "m.nemo"
    p.write_bytes(make_tar([("model_config.yaml", cfg.encode()), ("model_weights.ckpt", b"x")]))
    return p


def test_nemo_hydra0_cls_is_a_target(tmp_path: Path) -> None:
    cfg = (
        "target: nemo.collections.asr.models.EncDecCTCModel\n"
        "preprocessor:\n  cls: builtins.exec\n  params:\n    source: print(1)\n"
    )
    decision, rules = path_verdict(_nemo(tmp_path, cfg))
    assert decision == "block"
    assert any("Hydra 0.x cls" in f.message for f in rules.get("CONFIG-TARGET-DANGEROUS", []))


def test_nemo_hydra0_cls_unlisted_blocks(tmp_path: Path) -> None:
    cfg = "target: nemo.collections.asr.models.EncDecCTCModel\nencoder:\n  cls: evilpkg.Boom\n  params: {}\n"
    decision, rules = path_verdict(_nemo(tmp_path, cfg))
    assert decision == "block"
    assert "CONFIG-TARGET-UNLISTED" in rules


def test_nemo_cls_next_to_target_key_is_not_converted(tmp_path: Path) -> None:
    """'cls' only becomes '_target_' when the mapping has none; an allowlisted _target_ wins."""
    cfg = (
        "target: nemo.collections.asr.models.EncDecCTCModel\n"
        "optim:\n  _target_: torch.optim.Adam\n  cls: evilpkg.Boom\n"
        "encoder:\n  cls: nemo.collections.asr.modules.ConvASREncoder\n  params:\n    feat_in: 64\n"
    )
    decision, rules = path_verdict(_nemo(tmp_path, cfg))
    assert not any("Hydra 0.x cls" in f.message for fs in rules.values() for f in fs), rules


# OmegaConf resolvers that build config nodes when hydra resolves them: the _target_ is never a key in the file
# (checked against hydra-core 1.3 / omegaconf 2.3: each of these makes instantiate() call builtins.print)
BUILT_NODES = [
    'model: "${oc.create:{_target_: os.system, _args_: [id]}}"\n',
    "model: \"${oc.decode:'{_target_: os.system, _args_: [id]}'}\"\n",
    "model: \"${oc.decode:'{\\x5ftarget_: os.system}'}\"\n",
    's: "{_target_: os.system}"\nmodel: ${oc.decode:${s}}\n',
    'model: "${oc.select:nope,{_target_: os.system, _args_: [id]}}"\n',
]


@pytest.mark.parametrize("text", BUILT_NODES)
def test_interpolations_that_build_target_nodes_block(tmp_path: Path, text: str) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    decision, rules = path_verdict(p)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNLISTED" in rules


def test_json_interpolation_building_a_target_blocks(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text('{"model": "${oc.decode:\'{_target_: os.system}\'}"}')
    decision, rules = path_verdict(p)
    assert decision == "block", rules


def test_decoding_the_environment_is_not_a_built_target(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text("ngpu: ${oc.decode:${oc.env:NGPU}}\nlr: ${optim.lr}\noptim:\n  lr: 0.1\n")
    decision, rules = path_verdict(p)
    assert decision != "block", rules  # the environment read itself is a warning (CONFIG-RESOLVER)
    assert "CONFIG-TARGET-UNLISTED" not in rules


AUTO_TOKENIZER = "nemo.collections.common.tokenizers.huggingface.auto_tokenizer.AutoTokenizer"


@pytest.mark.parametrize("flag", ["true", "True", "'yes'", "1"])
def test_allowlisted_loader_with_trust_remote_code_blocks(tmp_path: Path, flag: str) -> None:
    """An allowlisted target that downloads a tokenizer/model runs that repository's code when told to."""
    p = tmp_path / "config.yaml"
    p.write_text(
        f"tokenizer:\n  _target_: {AUTO_TOKENIZER}\n  pretrained_model_name: attacker/tok\n"
        f"  trust_remote_code: {flag}\n"
    )
    decision, rules = path_verdict(p)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNLISTED" in rules


def test_class_path_init_args_trust_remote_code_blocks(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(
        f"model:\n  class_path: {AUTO_TOKENIZER}\n  init_args:\n    pretrained_model_name: a/b\n"
        "    trust_remote_code: true\n"
    )
    decision, rules = path_verdict(p)
    assert decision == "block", rules


def test_allowlisted_loader_without_remote_code_allowed(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(
        f"tokenizer:\n  _target_: {AUTO_TOKENIZER}\n  pretrained_model_name: bert-base-uncased\n"
        "  trust_remote_code: false\n"
    )
    decision, rules = path_verdict(p)
    assert decision == "allow", rules


def test_nemo_config_trust_remote_code_blocks(tmp_path: Path) -> None:
    cfg = (
        "target: nemo.collections.asr.models.EncDecCTCModel\n"
        "tokenizer:\n  library: huggingface\n  type: attacker/tok\n  trust_remote_code: true\n"
    )
    decision, rules = path_verdict(_nemo(tmp_path, cfg))
    assert decision == "block"
    assert any("trust_remote_code" in f.message for f in rules.get("CONFIG-TARGET-UNLISTED", []))
