"""Lightning checkpoints whose hyper-parameters are an OmegaConf container (benign sweep 4).

Lightning stores ``type(hparams)`` under ``hparams_type`` and calls it on load with the loaded hyper-parameters
(``saving._convert_loaded_hparams``: ``DictConfig(hparams)``). The class is kept as a value, so the walker judges it
as a later call: only the classes ``gadgets.yaml`` ``kept_values`` lists under that key are accepted there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import FIXTURES, rule_ids, scan_file, scan_on_disk, verdict

SAMPLE = FIXTURES / "ecosystem" / "lightning" / "hparams_config_itself.ckpt"


def test_lightning_checkpoint_with_config_hparams_is_allowed() -> None:
    fr = scan_file(SAMPLE)
    assert verdict(fr).value == "allow", sorted(rule_ids(fr))


def _kept(key: str, module: str, name: str) -> bytes:
    k = key.encode()
    return b"\x80\x02}X" + len(k).to_bytes(4, "little") + k + b"c" + f"{module}\n{name}\n".encode() + b"s."


@pytest.mark.parametrize(
    ("key", "glob"),
    [
        ("hparams_type", ("joblib.memory", "Memory")),  # another newobj-only class under the measured key
        ("hparams_type", ("torch.nn.modules.linear", "Linear")),
        ("hparams_kind", ("omegaconf.dictconfig", "DictConfig")),  # the measured class under another key
    ],
)
def test_other_classes_or_keys_still_block(tmp_path: Path, key: str, glob: tuple[str, str]) -> None:
    fr = scan_on_disk(tmp_path, _kept(key, *glob), "steered.ckpt")
    assert verdict(fr).value == "block", sorted(rule_ids(fr))
