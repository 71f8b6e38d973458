"""Lightning checkpoints whose hyper-parameters are an OmegaConf config: a gap owned by the pickle analyzer.

When ``save_hyperparameters(cfg)`` is given a DictConfig (Hydra/NeMo-style training scripts), Lightning 1.x-2.x
(``checkpoint_connector.dump_checkpoint``) stores the config under ``hyper_parameters`` and the class itself,
``type(hparams)``, under ``hparams_type`` (``datamodule_hparams_type`` for a datamodule). On load
``saving._convert_loaded_hparams`` calls it with the loaded hyper-parameters: ``DictConfig(hparams)``, which only
rebuilds the config from values the pickle already judged. The omegaconf profile allows DictConfig newobj-only, so
the class kept as a value is PICKLE-CONSTRAINT-VIOLATION today. The fix is a ``kept_values`` entry in
``signatures/pickle/gadgets.yaml`` (pickle analyzer's file):

    hparams_type / datamodule_hparams_type:
      globals: ["omegaconf.dictconfig:DictConfig", "omegaconf.listconfig:ListConfig"]

The sample is fixtures/ecosystem/lightning/hparams_config_itself.ckpt (lightning 2.4.0, omegaconf 2.3.0; loads
with torch.load(weights_only=False) and _convert_loaded_hparams in a throwaway venv). When the fix lands, update its
``GAPS`` entry in fixtures/gen/ecosystem.py and the manifest, and drop the xfail.
"""

from __future__ import annotations

import pytest

from tests.harness import FIXTURES, rule_ids, scan_file, verdict

SAMPLE = FIXTURES / "ecosystem" / "lightning" / "hparams_config_itself.ckpt"


def test_the_sample_is_the_recorded_gap() -> None:
    fr = scan_file(SAMPLE)
    assert "PICKLE-CONSTRAINT-VIOLATION" in rule_ids(fr)
    assert not rule_ids(fr) & {"PICKLE-IMPORT-UNLISTED", "PICKLE-CALL-UNLISTED", "PICKLE-DYNAMIC-IMPORT"}


@pytest.mark.xfail(
    strict=True,
    reason="gadgets.yaml kept_values has no hparams_type entry: Lightning keeps type(hparams) (DictConfig) as a "
    "value and calls it on load with the loaded hparams (pickle analyzer's area)",
)
def test_lightning_checkpoint_with_config_hparams_is_allowed() -> None:
    fr = scan_file(SAMPLE)
    assert verdict(fr).value == "allow", sorted(rule_ids(fr))
    assert "PICKLE-CONSTRAINT-VIOLATION" not in rule_ids(fr)
