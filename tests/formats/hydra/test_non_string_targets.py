"""A `_target_` whose value is a number imports nothing (a tokenizer vocabulary mapping the token to its id); a
container, null or an unread value still blocks.

hydra 1.3.2's _resolve_target raises InstantiationException for every non-str target (int, float, bool, None,
DictConfig, ListConfig: checked in a throwaway venv); detectron2's instantiate builds a mapping target and calls the
result, so containers keep blocking.
"""

from __future__ import annotations

import json

import pytest

from scanner.analysis.hydra_targets import judge_target
from scanner.rules import get_rule_db
from tests.harness import inspect_bytes, rule_ids

DB = get_rule_db()
_BLOCKING = {"CONFIG-TARGET-UNLISTED", "CONFIG-TARGET-DANGEROUS"}


@pytest.mark.parametrize("value", [0, 1, 50256, -1, 1.5, True, False])
@pytest.mark.parametrize("key", ["_target_", "class_path"])
def test_number_target_imports_nothing(value: object, key: str) -> None:
    assert judge_target(value, key, DB) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"_target_": "builtins.dict"},
        ["os.getcwd"],
        {},
        [],
        "os.system",
        "not.listed.Thing",
        b"os.system",
    ],
)
def test_non_number_target_still_blocks(value: object) -> None:
    issue = judge_target(value, "_target_", DB)
    assert issue is not None and issue.rule_id in _BLOCKING


class _IntLike(int):
    pass


def test_int_subclass_target_still_blocks() -> None:
    # only the exact JSON/YAML scalar types: a parser's own node type (tagged values) is not a number to hydra
    assert judge_target(_IntLike(1), "_target_", DB) is not None


def _vocab(extra: dict[str, object]) -> dict[str, object]:
    return {"<|endoftext|>": 0, "_target_": 1, "Ġthe": 2, "os": 3, **extra}


@pytest.mark.parametrize("name", ["vocab.json", "tokenizer.json", "config.json", "model_config.json"])
def test_vocabulary_target_token_is_allowed(name: str) -> None:
    doc = {"version": "1.0", "model": {"type": "BPE", "vocab": _vocab({}), "merges": []}}
    assert not rule_ids(inspect_bytes(json.dumps(doc).encode(), name)) & _BLOCKING


@pytest.mark.parametrize(
    "target",
    [
        {
            "_target_": "builtins.getattr",
            "_args_": ["os", "system"],
        },  # detectron2 instantiates it, then calls it
        ["os.system"],
        None,
        "os.system",
        "pkg.unlisted.Factory",
    ],
)
@pytest.mark.parametrize("name", ["vocab.json", "tokenizer.json"])
def test_vocabulary_named_file_with_a_real_target_still_blocks(name: str, target: object) -> None:
    # the file name exempts nothing: a hydra/detectron2 loader can be pointed at any path
    doc = {"model": {"_target_": target, "vocab": _vocab({})}}
    assert rule_ids(inspect_bytes(json.dumps(doc).encode(), name)) & _BLOCKING


def test_yaml_config_number_target_is_allowed() -> None:
    assert not rule_ids(inspect_bytes(b"model:\n  _target_: 3\n  x: 1\n", "config.yaml")) & _BLOCKING


@pytest.mark.slow
def test_big_tokenizer_json_with_target_token_is_allowed() -> None:
    vocab = {f"tok{i:07d}": i for i in range(260_000)}
    vocab["_target_"] = len(vocab)
    doc = {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    raw = json.dumps(doc).encode()
    assert len(raw) > 4 << 20
    assert not rule_ids(inspect_bytes(raw, "tokenizer.json")) & _BLOCKING


def _big(target_json: bytes) -> bytes:
    """A >4 MB JSON (judged literal by literal) whose '_target_' key holds ``target_json`` verbatim."""
    vocab = json.dumps({f"tok{i:07d}": i for i in range(260_000)}).encode()
    raw = b'{"model": {"vocab": ' + vocab + b', "_target_": ' + target_json + b', "x": 1}}'
    assert len(raw) > 4 << 20
    return raw


@pytest.mark.slow
@pytest.mark.parametrize("number", [b"260000", b"-3", b"2.5e3", b"true", b"0"])
def test_big_json_number_target_is_allowed(number: bytes) -> None:
    assert not rule_ids(inspect_bytes(_big(number), "tokenizer.json")) & _BLOCKING


@pytest.mark.slow
@pytest.mark.parametrize(
    "target", [b'"os.system"', b"null", b'["os.system"]', b'{"a": 1}', b"1" * 5000, b"12x"]
)
def test_big_json_non_number_target_still_blocks(target: bytes) -> None:
    # a 5,000-digit number or "12x" is not JSON any reader loads: JSON-INVALID (high) blocks it
    assert rule_ids(inspect_bytes(_big(target), "config.json")) & (_BLOCKING | {"JSON-INVALID"})
