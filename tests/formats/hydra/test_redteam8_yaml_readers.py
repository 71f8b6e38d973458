"""Red-team round 8: libyaml and PyYAML read a byte-order mark inside the text differently.

libyaml (``CSafeLoader``, which modelward read every config with) skips a U+FEFF at the start of any line, so
``\\ufeff#: {...}`` is a comment to it; PyYAML's own reader, which OmegaConf's loader subclasses (hydra, NeMo) and
``yaml.safe_load`` uses (MLflow's ``Model.load``), strips one only at the start of the stream and reads any other
as text: the same line is a key holding a mapping. hydra 1.3.2 / omegaconf 2.3.0 ``instantiate`` of
``_target_: torch.nn.Identity`` plus such a line instantiated the hidden ``os.system`` target first (recursive
instantiation of every nested node), marker file written, while the file was allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.analysis.config_yaml import READERS_DIFFER, parse_yaml_config
from tests.harness import make_tar, path_verdict

HIDDEN = "_target_: torch.nn.Identity\n\ufeff#: {_target_: os.system, _args_: ['touch /tmp/pwn']}\n"


@pytest.mark.parametrize(
    "text",
    [
        HIDDEN,
        # after a comment line, in a nested mapping, and an unlisted (not denylisted) target
        "# model\nmodel:\n  _target_: torch.nn.Identity\n\ufeff#: {x: {_target_: evil_pkg.run}}\n",
        # a stream-start BOM is stripped once by PyYAML: a second one is text to it
        "\ufeff\ufeff#: {_target_: os.system}\nm: 1\n",
    ],
)
def test_bom_hidden_targets_block(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert {"CONFIG-TARGET-DANGEROUS", "CONFIG-TARGET-UNLISTED"} & set(rules)


def test_bom_hidden_remote_code_flag_blocks(tmp_path: Path) -> None:
    """The repository check of trust_remote_code reads the config with one reader: disagreement fails closed."""
    text = (
        "tokenizer:\n  _target_: nemo.collections.common.tokenizers.AutoTokenizer\n"
        "\ufeff#: {t: {_target_: nemo.collections.common.tokenizers.AutoTokenizer, trust_remote_code: 'no'}}\n"
    )
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNREADABLE" in rules


def test_parse_yaml_config_fails_closed_when_readers_disagree() -> None:
    cfg = parse_yaml_config(HIDDEN.encode())
    assert cfg.error == READERS_DIFFER
    # a BOM both readers read alike (stream start, inside a quoted scalar) is no disagreement
    assert parse_yaml_config(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}
    assert parse_yaml_config('a: "x\ufeffy"\n'.encode()).data == {"a": "x\ufeffy"}


def test_nemo_config_with_hidden_line_blocks(tmp_path: Path) -> None:
    cfg = (
        "target: nemo.collections.tts.models.FastPitchModel\n\ufeff#: {preprocessor: {_target_: os.system}}\n"
    ).encode()
    p = tmp_path / "m.nemo"
    p.write_bytes(make_tar([("./model_config.yaml", cfg), ("./tokenizer.vocab", b"a\nb\n")]))
    decision, rules = path_verdict(p)
    assert decision == "block", rules
    assert "CARRIER-CONFIG-INVALID" in rules


def test_mlmodel_with_hidden_line_fails_closed(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
        "\ufeff#: {loader_module: evil}\n",
        encoding="utf-8",
    )
    decision, rules = path_verdict(d)
    assert decision == "block", rules
    assert "CARRIER-CONFIG-INVALID" in rules


def test_yaml_libyaml_refuses_but_pyyaml_reads_is_judged(tmp_path: Path) -> None:
    """``[_target_:]`` is a ScannerError to libyaml and a one-pair mapping to PyYAML (OmegaConf): the targets of a
    .yaml file libyaml refuses are judged as PyYAML reads them (before: only 'does not parse')."""
    (tmp_path / "conf.yaml").write_text("[{_target_: os.system}, _target_:]\n")
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-DANGEROUS" in rules


def test_benign_bom_config_allowed(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "\ufeffmodel:\n  _target_: torch.nn.Linear\n  in_features: 4\n  out_features: 2\n", encoding="utf-8"
    )
    assert path_verdict(tmp_path)[0] == "allow"
