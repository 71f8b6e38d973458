"""Red-team round 3: CompVis/Stability ``instantiate_from_config`` configs (``target`` + ``params``).

AUTOMATIC1111 loads the ``<checkpoint>.yaml`` found beside a checkpoint and calls
``get_obj_from_str(config["target"])(**config.get("params", {}))`` on it, nested configs included: every dotted
``target`` of such a document is an import and a call, judged with the hydra allowlist. Hydra 0.11/1.0 read the
same shape with ``class``/``cls``. Documents without such a node, and targets that are not import paths, are plain
data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import path_verdict

V1_INFERENCE = """\
model:
  base_learning_rate: 1.0e-04
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    scheduler_config:
      target: ldm.lr_scheduler.LambdaLinearScheduler
      params:
        warm_up_steps: [ 10000 ]
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: 32
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""

SDXL_BASE = """\
model:
  target: sgm.models.diffusion.DiffusionEngine
  params:
    denoiser_config:
      target: sgm.modules.diffusionmodules.denoiser.DiscreteDenoiser
      params:
        weighting_config:
          target: sgm.modules.diffusionmodules.denoiser_weighting.EpsWeighting
        scaling_config:
          target: sgm.modules.diffusionmodules.denoiser_scaling.EpsScaling
        discretization_config:
          target: sgm.modules.diffusionmodules.discretizer.LegacyDDPMDiscretization
    network_config:
      target: sgm.modules.diffusionmodules.openaimodel.UNetModel
    conditioner_config:
      target: sgm.modules.GeneralConditioner
      params:
        emb_models:
          - is_trainable: false
            target: sgm.modules.encoders.modules.FrozenCLIPEmbedder
    first_stage_config:
      target: sgm.models.autoencoder.AutoencoderKLInferenceWrapper
      params:
        lossconfig:
          target: torch.nn.Identity
"""


@pytest.mark.parametrize("text", [V1_INFERENCE, SDXL_BASE], ids=["v1-inference", "sdxl-base"])
def test_stable_diffusion_configs_allowed(tmp_path: Path, text: str) -> None:
    (tmp_path / "model.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        # a nested config calls a denylisted callable with its params
        (
            V1_INFERENCE.replace(
                "target: torch.nn.Identity",
                "target: subprocess.Popen\n          params:\n            args: id\n            shell: true",
            ),
            "CONFIG-TARGET-DANGEROUS",
        ),
        # a node without params is instantiated too (get_obj_from_str(target)())
        (V1_INFERENCE.replace("ldm.modules.encoders.modules.FrozenCLIPEmbedder", "pdb.set_trace"), None),
        # a class of a package nobody audited
        (V1_INFERENCE.replace("ldm.models.autoencoder.AutoencoderKL", "evilpkg.ae.AutoencoderKL"), None),
        # the util module of ldm itself: instantiate_from_config of attacker params
        (
            V1_INFERENCE.replace(
                "ldm.lr_scheduler.LambdaLinearScheduler", "ldm.util.instantiate_from_config"
            ),
            None,
        ),
        # JSON spelling (OmegaConf.load reads it as YAML)
        ('{"model": {"target": "os.system", "params": {"command": "id"}}}', "CONFIG-TARGET-DANGEROUS"),
    ],
)
def test_instantiate_from_config_targets_block(tmp_path: Path, text: str, rule: str | None) -> None:
    name = "model.json" if text.startswith("{") else "model.yaml"
    (tmp_path / name).write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert (rule or "CONFIG-TARGET-UNLISTED") in rules or "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    "text",
    [
        "metric:\n  target: accuracy\n  params:\n    k: 1\n",  # not an import path: get_obj_from_str cannot import it
        "target: labels.csv\nbatch_size: 4\n",  # no target/params node: not an instantiate_from_config document
        "loss:\n  target: data/train.csv\n  params: {}\n",
    ],
)
def test_target_words_that_are_data_stay_allowed(tmp_path: Path, text: str) -> None:
    (tmp_path / "train.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


@pytest.mark.parametrize(
    "text",
    [
        "model:\n  cls: subprocess.Popen\n  params:\n    args: id\n",  # hydra 1.0 (deprecated cls/class/target)
        "optim:\n  class: os.system\n  params:\n    command: id\n",  # hydra 0.11
        "a:\n  class: torch.optim.Adam\n  params: {lr: 0.1}\nb:\n  cls: evilpkg.Thing\n",  # any node of such a doc
    ],
)
def test_hydra_0x_class_params_nodes_block(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_hydra_0x_audited_class_allowed(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("optim:\n  class: torch.optim.Adam\n  params:\n    lr: 0.001\n")
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


def test_escaped_target_and_params_keys_block(tmp_path: Path) -> None:
    """Double-quoted YAML keys spelled with escapes decode to target/params in OmegaConf."""
    text = 'model:\n  "t\\x61rget": subprocess.Popen\n  "p\\x61rams":\n    args: id\n'
    (tmp_path / "model.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_oversized_instantiate_from_config_yaml_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.analysis import template_carriers

    monkeypatch.setattr(template_carriers, "MAX_YAML_BYTES", 256)
    (tmp_path / "model.yaml").write_text(V1_INFERENCE + "# " + "x" * 400 + "\n")
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNREADABLE" in rules
