"""Red-team round 8: YAML tags spelled without the bytes the text gate looked for.

The per-file walk parsed a text only when it held ``!!python``/``!python``/a HyperPyYAML ``!new:``-style prefix
(or another marker). PyYAML and ruamel resolve tags from a ``%TAG`` directive (``%TAG !p! tag:yaml.org,2002:python/``
then ``!p!object/apply:os.system``), from a verbatim tag (``!<tag:yaml.org,2002:python/object/apply:os.system>``)
and decode URI escapes in a tag (``!!%70ython/...``, ``!appl%79:os.system``): ``yaml.unsafe_load`` (PyYAML 6.0.4)
and ``load_hyperpyyaml`` (HyperPyYAML 1.2.3) called os.system for these (marker files) while the files were allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import path_verdict


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config.yaml", '%TAG !p! tag:yaml.org,2002:python/\n---\nx: !p!object/apply:os.system ["id"]\n'),
        ("config.yaml", 'x: !<tag:yaml.org,2002:python/object/apply:os.system> ["id"]\n'),
        ("config.yaml", 'x: !!%70ython/object/apply:os.system ["id"]\n'),
        ("hparams.txt", '%TAG !p! tag:yaml.org,2002:%70ython/\n---\nx: !p!object/apply:os.system ["id"]\n'),
        ("hyperparams.yaml", "x: !appl%79:os.system\n  - id\n"),
        ("hyperparams.yaml", "x: !%6eew:os.system\n  - id\n"),
        ("hyperparams.yaml", "x: [1, !appl%79:os.system [id]]\n"),
    ],
)
def test_tag_spellings_block(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("notes.txt", "progress: 50% done!\nrate: 3%/day\n"),
        ("config.yaml", "lr: 1e-3\nwarmup: '10%'\nnote: wow! 100%\n"),
        ("hyperparams.yaml", "lr: !ref <base_lr>\nsplit: 80%\n"),
    ],
)
def test_percent_text_allowed(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert path_verdict(tmp_path)[0] == "allow"
