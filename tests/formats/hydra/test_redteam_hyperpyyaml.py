"""Red-team: SpeechBrain hyperparams.yaml (HyperPyYAML). ``load_hyperpyyaml`` pydoc.locates the dotted name of
every ``!new:``, ``!apply:``, ``!applyref:``, ``!name:`` and ``!module:`` tag and instantiates, calls, partially
applies or imports it while loading: the same judgement as a hydra ``_target_``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import path_verdict

ECAPA = """\
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
  n_mels: !ref <n_mels>
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
  input_size: !ref <n_mels>
  channels: [1024, 1024, 1024, 1024, 3072]
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
  norm_type: sentence
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
  loadables:
    embedding_model: !ref <embedding_model>
  paths:
    embedding_model: speechbrain/spkrec-ecapa-voxceleb/embedding_model.ckpt
"""


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('x: !apply:os.system ["touch /tmp/modelward-canary"]\n', "CONFIG-TARGET-DANGEROUS"),
        ("x: !applyref:subprocess.run [[id]]\n", "CONFIG-TARGET-DANGEROUS"),
        ("x: !name:builtins.exec\n", "CONFIG-TARGET-DANGEROUS"),
        ("x: !module:os\n", "CONFIG-TARGET-DANGEROUS"),
        ("x: !new:speechbrain.lobes.models.ECAPA_TDNN.os.system\n", "CONFIG-TARGET-DANGEROUS"),
        ("x: !new:evilpkg.Boom\n  a: 1\n", "CONFIG-TARGET-UNLISTED"),
        ("x: !apply:speechbrain.utils.fetching.fetch [a, b]\n", "CONFIG-TARGET-UNLISTED"),
    ],
)
def test_hyperpyyaml_tags_are_targets(tmp_path: Path, text: str, rule: str) -> None:
    p = tmp_path / "hyperparams.yaml"
    p.write_text(text)
    decision, rules = path_verdict(p)
    assert decision == "block", rules
    assert rule in rules


def test_hyperpyyaml_in_a_model_repo(tmp_path: Path) -> None:
    (tmp_path / "hyperparams.yaml").write_text(ECAPA + 'seed: !apply:os.system ["id"]\n')
    (tmp_path / "config.json").write_text('{"speechbrain_interface": "EncoderClassifier"}')
    decision, rules = path_verdict(tmp_path)
    assert decision == "block"


def test_speechbrain_model_classes_allowed(tmp_path: Path) -> None:
    p = tmp_path / "hyperparams.yaml"
    p.write_text(ECAPA)
    decision, rules = path_verdict(p)
    assert decision == "allow", rules
