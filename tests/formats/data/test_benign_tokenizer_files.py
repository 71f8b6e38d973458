"""Tokenizer vocabularies (WordPiece vocab.txt, BPE merges.txt) hold ``{{``, ``}}``, ``{%``, ``__class__`` and
``_target_`` as tokens when the tokenizer was trained on code; the loaders read them token by token
(BertTokenizer.load_vocab, tokenizers' BPE.read_file / GPT2Tokenizer, both checked on such files in a throwaway
venv), nothing renders them as Jinja. Judged as templates they read as SSTI (critical) or, past the template
size cap, failed closed. Only the exact line shape the loader reads is exempt; anything else is judged by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import path_verdict

# tokens a code-aware vocabulary really has, in the order that makes them a renderable-looking template
CODE_TOKENS = [
    "{{",
    "config",
    ".",
    "__class__",
    ".",
    "__init__",
    ".",
    "__globals__",
    "[",
    "os",
    "]",
    "}}",
    "{%",
    "for",
    "%}",
    "_target_",
    "the",
    "##s",
]
MERGES = [
    "#version: 0.2",
    "Ġ t",
    "h e",
    "{ {",
    "} }",
    "{{ {",
    "}} }",
    "_ _",
    "__ class",
    "__class __",
    "__class__ .",
    "__globals__ [",
    "{ %",
    "% }",
    "_target _",
]


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_wordpiece_vocab_with_code_tokens_is_allowed(tmp_path: Path) -> None:
    lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CODE_TOKENS]
    decision, rules = path_verdict(_write(tmp_path, "vocab.txt", lines))
    assert decision == "allow", rules
    assert not [r for r in rules if r.startswith(("TEMPLATE-", "CONFIG-"))], rules


def test_bpe_merges_with_code_tokens_is_allowed(tmp_path: Path) -> None:
    decision, rules = path_verdict(_write(tmp_path, "merges.txt", MERGES))
    assert decision == "allow", rules
    assert not [r for r in rules if r.startswith(("TEMPLATE-", "CONFIG-"))], rules


def test_crlf_vocab_is_a_token_list(tmp_path: Path) -> None:
    p = tmp_path / "vocab.txt"
    p.write_bytes("\r\n".join(["[PAD]", *CODE_TOKENS]).encode())
    decision, rules = path_verdict(p)
    assert decision == "allow", rules


@pytest.mark.slow
def test_large_merges_past_the_template_cap_is_allowed_in_full(tmp_path: Path) -> None:
    body = [f"t{i} x{i}" for i in range(600_000)]  # ~6 MB: over the 4 MiB a text with Jinja markers may have
    decision, rules = path_verdict(_write(tmp_path, "merges.txt", [MERGES[0], *body, *MERGES[1:]]))
    assert decision == "allow", rules
    assert "TEMPLATE-OVERSIZE" not in rules


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        ("tokens.txt", ["[PAD]", *CODE_TOKENS]),  # same tokens under another name: judged by content
        (
            "vocab.txt",
            ["{{ config.__class__.__init__.__globals__['os'] }}"],
        ),  # a line with spaces: not WordPiece
        (
            "merges.txt",
            ["#version: 0.2", "{{ config.__class__.__init__.__globals__ }}"],
        ),  # not one pair per line
        ("merges.txt", ["h e", "#version: 0.2", "{{", "__class__ }}"]),  # a header past the first line
    ],
)
def test_template_in_other_shapes_is_still_judged(tmp_path: Path, name: str, lines: list[str]) -> None:
    decision, rules = path_verdict(_write(tmp_path, name, lines))
    assert decision == "block", rules
    assert "TEMPLATE-SSTI" in rules, rules
