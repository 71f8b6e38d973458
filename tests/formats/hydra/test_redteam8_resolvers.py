"""Red-team round 8: OmegaConf resolver names projects register around eval or an import.

Measured over public repositories: ``OmegaConf.register_new_resolver("python.eval", eval)`` (MLShukai/ami),
``register_new_resolver("ieval", lambda e: hydra.utils.get_object(e))`` (a lightning-hydra project), ``eval`` /
``custom_eval`` (diffusion_policy and many hydra projects). Only the exact names ``eval``/``exec``/... were
critical; these were "custom resolver" (low) and the file was allowed. With omegaconf 2.3.0 + hydra 1.3.2 and
those registrations, ``instantiate`` of a ``torch.nn.Linear`` whose sizes were ``${python.eval:...}`` and
``${ieval:evil_mod.x}`` ran both (marker files: the eval'd os.system and the imported module's body).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.analysis.hydra_targets import code_resolver, resolver_issues
from tests.harness import path_verdict


@pytest.mark.parametrize(
    "value",
    [
        "${python.eval:\"__import__('os').system('id') + 2\"}",
        "${ieval:evil_mod.x}",
        "${custom_eval:1+1}",
        "${hydra.utils.get_object:os.system}",
        "${my-eval:1}",
        "${utils.import_module:x}",
        "${get_class:evil_mod.Model}",  # hydra.utils.get_class / get_method registered by diffusion projects
        "${get_method:evil_mod.run}",
        "${hcp.eval:1*2}",
    ],
)
def test_code_resolvers_block(tmp_path: Path, value: str) -> None:
    (tmp_path / "config.yaml").write_text(
        f"model:\n  _target_: torch.nn.Linear\n  in_features: 4\n  out_features: {value}\n"
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    "name",
    ["multiply", "sum", "gpu_name", "now", "hydra", "python_version", "oc.select", "if", "len", "times"],
)
def test_known_benign_resolvers_not_code(name: str) -> None:
    """NeMo's multiply/sum/gpu_name, hydra's now/hydra/python_version and common arithmetic helpers."""
    assert not code_resolver(name)
    assert all(i.rule_id != "CONFIG-TARGET-DANGEROUS" for i in resolver_issues(f"${{{name}:1,2}}"))


# instantiate_from_config (ldm.util / sgm.util: get_obj_from_str(config["target"])(**config.get("params", {}))) reads
# config["target"] after OmegaConf.load resolved it. With omegaconf 2.3.0 and that function copied from ldm/util.py,
# ``target: ${x}`` (x: os.system) and a target built by ``${oc.select:missing,{target: os.system, params: ...}}`` each
# ran os.system (marker files); both files were allowed (only dotted literal targets were collected, and only
# _target_/class_path counted as a dict-literal target).
COMPVIS = "model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("x: os.system\nmodel:\n  target: ${x}\n  params:\n    command: id\n", "CONFIG-TARGET-DANGEROUS"),
        (
            "x: {y: os.system}\n"
            + COMPVIS
            + "    first_stage_config:\n      target: ${x.y}\n      params: {}\n",
            "CONFIG-TARGET-DANGEROUS",
        ),
        (
            COMPVIS + "    cond_stage_config:\n      target: ${oc.env:T}\n      params: {}\n",
            "CONFIG-TARGET-UNLISTED",
        ),
        (
            COMPVIS
            + '    cond_stage_config: "${oc.select:nope,{target: os.system, params: {command: id}}}"\n',
            "CONFIG-TARGET-UNLISTED",
        ),
    ],
)
def test_compvis_interpolated_targets_block(tmp_path: Path, text: str, rule: str) -> None:
    (tmp_path / "v1-inference.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert rule in rules


@pytest.mark.parametrize(
    ("text", "decision", "rule"),
    [
        ("x: os.system\nm:\n  _target_: ${x}\n", "block", "CONFIG-TARGET-DANGEROUS"),
        ("a: ${b}\nb: ${a}\nm:\n  _target_: ${a}\n", "block", "CONFIG-TARGET-UNLISTED"),  # a cycle
        ("m:\n  _target_: ${missing}\n", "block", "CONFIG-TARGET-UNLISTED"),
        (
            "m:\n  _target_: ${.x}\n  x: torch.nn.Linear\n",
            "block",
            "CONFIG-TARGET-UNLISTED",
        ),  # relative: not followed
        # resolved in this file to an allowlisted target: still computed, since hydra composition (a defaults
        # list, a config group whose absolute references name the composed root) can replace what ${cls} names
        (
            "cls: torch.nn.Linear\nm:\n  _target_: ${cls}\n  in_features: 2\n  out_features: 2\n",
            "block",
            "CONFIG-TARGET-UNLISTED",
        ),
    ],
)
def test_hydra_target_node_interpolation_resolved(
    tmp_path: Path, text: str, decision: str, rule: str | None
) -> None:
    (tmp_path / "config.yaml").write_text(text)
    got, rules = path_verdict(tmp_path)
    assert got == decision, rules
    if rule:
        assert rule in rules
