"""Text that starts with '[' or '{' is JSON only when it is JSON; a file named .json must parse (fail closed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.formats.data_files import json_prefix_ok
from tests.harness import path_verdict, path_worst

TEXT_NOT_JSON = {
    "vocab.txt": "[PAD]\n[unused0]\n[unused1]\n[UNK]\n[CLS]\nhello\n##lo\n",
    "vocab_big.txt": "[PAD]\n" + "".join(f"[unused{i}]\n" for i in range(2000)) + "the\n",
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n\n[project]\nname = "m"\n',
    "tables.toml": '[[models]]\nname = "a"\n[[models]]\nname = "b"\n',
    "setup.cfg": "[metadata]\nname = m\n[options]\npackages = find:\n",
    "tox.ini": "[tox]\nenvlist = py311\n",
    "rows.jsonl": '{"a": 1}\n{"a": 2}\n',
    "numbered.txt": "[1] first\n[2] second\n",
    "list.txt": "[1, 2]\nnot json after\n",
}


@pytest.mark.parametrize("name", sorted(TEXT_NOT_JSON))
def test_text_that_starts_like_json_is_text(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_text(TEXT_NOT_JSON[name])
    decision, rules = path_verdict(p)
    assert decision == "allow", rules
    assert "JSON-INVALID" not in rules
    assert path_worst(p) in (None, "info", "low")


@pytest.mark.parametrize(
    "body",
    [
        "[PAD]\n[UNK]\n",
        '{"a": 1,',
        '{"a": 1}\n{"b": 2}\n',
        "[tool]\nx = 1\n",
        '{"a": ' * 3000 + "1" + "}" * 3000,
        '{"a": [1, 2]]',
    ],
)
def test_named_json_that_does_not_parse_fails_closed(tmp_path: Path, body: str) -> None:
    p = tmp_path / "config.json"
    p.write_text(body)
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "JSON-INVALID" in rules


def test_real_json_still_parsed(tmp_path: Path) -> None:
    p = tmp_path / "tokenizer_config.json"
    p.write_text('{"model_max_length": 512, "added_tokens_decoder": {"0": {"content": "[PAD]"}}}')
    assert path_verdict(p)[0] == "allow"


def test_json_like_unnamed_file_that_breaks_late_is_reported(tmp_path: Path) -> None:
    # a valid JSON head of > 4 KiB that breaks later: parsed as JSON, a low finding, not silence
    p = tmp_path / "data.txt"
    p.write_text('{"k": "' + "x" * 5000 + '", oops}')
    _, rules = path_verdict(p)
    assert "JSON-INVALID" in rules


@pytest.mark.parametrize(
    ("text", "complete", "expected"),
    [
        ('{"a": [1, -2.5e3, true, false, null, "s\\u00e9"]}', True, True),
        ("[]", True, True),
        ("  {}  ", True, True),
        ("[NaN, Infinity, -Infinity]", True, True),
        ('{"a": 1,}', True, False),
        ("[1 2]", True, False),
        ('{"a" 1}', True, False),
        ('{"a": 1} {"b": 2}', True, False),
        ("[PAD]", True, False),
        ("[section]\nkey = value", True, False),
        ('{"a": "unterminated', False, True),
        ('{"abc": tr', False, True),
        ("[12", False, True),
        ("[PA", False, False),
        ('{"a": 1, "b', False, True),
        ("[\n  1,\n  2", False, True),
    ],
)
def test_json_prefix_grammar(text: str, complete: bool, expected: bool) -> None:
    assert json_prefix_ok(text, complete) is expected
