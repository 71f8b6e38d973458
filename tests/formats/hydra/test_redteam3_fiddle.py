"""Red-team round 3: fiddle JSON serialization (NeMo 2 checkpoints' ``context/io.json``).

``fiddle.experimental.serialization.load_json`` turns every ``{"type": "pyref", "module": M, "name": N}`` into
``importlib.import_module(M)`` plus a getattr walk of ``N`` (its default policy allows any import), and
``fdl.build`` then calls the Buildables they type: each pyref is judged like a hydra target.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import path_verdict


def _pyref(module: str, name: str) -> dict:
    return {"type": "pyref", "module": module, "name": name}


def _io_json(fn_module: str, fn_name: str) -> dict:
    """The shape fiddle writes for fdl.Config(fn, arg=1) under a tuple root."""
    return {
        "root": {"type": "ref", "key": "tuple_1"},
        "objects": {
            "tuple_1": {
                "type": _pyref("builtins", "tuple"),
                "items": [["Index(index=0)", {"type": "ref", "key": "config_1"}]],
                "metadata": None,
                "paths": ["<root>"],
            },
            "config_1": {
                "type": _pyref("fiddle._src.config", "Config"),
                "items": [["Attr(name='arg')", {"type": "leaf", "value": 1, "paths": ["<root>[0].arg"]}]],
                "metadata": {
                    "type": _pyref("fiddle._src.config", "BuildableTraverserMetadata"),
                    "items": [],
                    "metadata": None,
                    "fn_or_cls": _pyref(fn_module, fn_name),
                },
                "paths": ["<root>[0]"],
            },
        },
        "refcounts": {"tuple_1": 1, "config_1": 1},
        "version": "0.0.1",
    }


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("subprocess", "Popen"),
        ("os", "system"),  # rejected by fiddle's default policy (a builtin module's value) but imported first
        ("evilpkg.model", "Builder"),
        ("torch", "serialization.os.system"),  # a dotted symbol walks attributes
    ],
)
def test_pyrefs_are_judged(tmp_path: Path, module: str, name: str) -> None:
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "io.json").write_text(json.dumps(_io_json(module, name)))
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert {"CONFIG-TARGET-DANGEROUS", "CONFIG-TARGET-UNLISTED"} & set(rules)


def test_fiddle_containers_and_buildables_alone_are_allowed(tmp_path: Path) -> None:
    """Only the callable a Config wraps decides: torch.nn.Linear is on the hydra allowlist."""
    doc = _io_json("torch.nn", "Linear")
    (tmp_path / "io.json").write_text(json.dumps(doc))
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


def test_oversized_json_with_pyrefs_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.analysis import template_carriers

    monkeypatch.setattr(template_carriers, "MAX_JSON_TREE_BYTES", 64)
    (tmp_path / "io.json").write_text(json.dumps(_io_json("torch.nn", "Linear")))
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNREADABLE" in rules
