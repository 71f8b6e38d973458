"""Red-team round 7: fiddle ``trust_remote_code`` judged by Python truthiness, as ``fdl.build`` passes it.

fiddle serializes the value as written: the string ``"False"``, a one-item list ``[0]`` or a mapping reach
``AutoTokenizer.from_pretrained(..., trust_remote_code=...)`` unchanged, and transformers only tests
``if trust_remote_code``. Confirmed with fiddle 0.3.1 ``serialization.load_json`` + ``fdl.build`` and transformers
4.57.6 (NeMo 2.7.3's): each of these ran the tokenizer folder's ``tok.py`` while only a literal ``true`` was
reported. The documents below have the shape ``serialization.dump_json(fdl.Config(...))`` wrote there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import path_verdict, rule_ids, scan

NEMO_TOKENIZER = ("nemo.collections.common.tokenizers.huggingface.auto_tokenizer", "AutoTokenizer")


def _pyref(module: str, name: str) -> dict:
    return {"type": "pyref", "module": module, "name": name}


def _container(kind: str, items: list, path: str) -> dict:
    return {"type": _pyref("builtins", kind), "items": items, "metadata": None, "paths": [path]}


def _io_json(value: Any) -> dict:
    """fdl.Config(AutoTokenizer, "tok", trust_remote_code=<value>) as fiddle 0.3.1 dumps it; lists and dicts
    become objects referenced from the argument, scalars leaves."""
    objects: dict[str, Any] = {
        "tuple_1": {
            "type": _pyref("builtins", "tuple"),
            "items": [
                ["Index(index=0)", "pretrained_model_name"],
                ["Index(index=1)", "trust_remote_code"],
            ],
            "metadata": None,
        },
        "buildable_traverser_metadata_1": {
            "type": _pyref("fiddle._src.config", "BuildableTraverserMetadata"),
            "items": [
                ["Attr(name='fn_or_cls')", _pyref(*NEMO_TOKENIZER)],
                ["Attr(name='argument_names')", {"type": "ref", "key": "tuple_1"}],
            ],
            "metadata": _pyref("fiddle._src.config", "BuildableTraverserMetadata"),
        },
    }
    arg: Any
    if isinstance(value, list):
        objects["list_1"] = _container(
            "list",
            [[f"Index(index={i})", {"type": "leaf", "value": v, "paths": []}] for i, v in enumerate(value)],
            "<root>.trust_remote_code",
        )
        arg = {"type": "ref", "key": "list_1"}
    elif isinstance(value, dict):
        objects["dict_9"] = _container(
            "dict",
            [[f"Key(key={k!r})", {"type": "leaf", "value": v, "paths": []}] for k, v in value.items()],
            "<root>.trust_remote_code",
        )
        arg = {"type": "ref", "key": "dict_9"}
    elif value == "<buildable>":
        objects["config_2"] = {
            "type": _pyref("fiddle._src.config", "Config"),
            "items": [],
            "metadata": {"type": "ref", "key": "buildable_traverser_metadata_1"},
            "paths": ["<root>.trust_remote_code"],
        }
        arg = {"type": "ref", "key": "config_2"}
    else:
        arg = {"type": "leaf", "value": value, "paths": ["<root>.trust_remote_code"]}
    objects["auto_tokenizer_1"] = {
        "type": _pyref("fiddle._src.config", "Config"),
        "items": [
            ["Attr(name='pretrained_model_name')", {"type": "leaf", "value": "tok", "paths": []}],
            ["Attr(name='trust_remote_code')", arg],
        ],
        "metadata": {"type": "ref", "key": "buildable_traverser_metadata_1"},
        "paths": ["<root>"],
    }
    return {
        "root": {"type": "ref", "key": "auto_tokenizer_1"},
        "objects": objects,
        "refcounts": {k: 1 for k in objects},
        "version": "0.0.1",
    }


def _write(tmp_path: Path, value: Any) -> Path:
    p = tmp_path / "context" / "io.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(_io_json(value)))
    return p


@pytest.mark.parametrize("value", ["False", "no", "0", [0], [False], {"a": 0}, "<buildable>", 1, True])
def test_fiddle_remote_code_true_as_built_blocks(tmp_path: Path, value: Any) -> None:
    report = scan(_write(tmp_path, value))
    assert "CONFIG-TARGET-UNLISTED" in rule_ids(report)
    assert report.verdict.decision.value == "block"


@pytest.mark.parametrize("value", [False, None, 0, "", [], {}])
def test_fiddle_remote_code_false_as_built_allowed(tmp_path: Path, value: Any) -> None:
    assert path_verdict(_write(tmp_path, value))[0] == "allow"
