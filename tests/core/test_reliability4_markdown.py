"""The Markdown report (a CI step summary, an audit page people read) renders attacker-chosen text as text.

File and member names, finding messages and errors come from the artifact. Before, a name was put in a code
span as is: a backtick in it closed the span, and what followed rendered as raw HTML (``<img onerror>``), a link
(``[x](https:evil)``) or, inside the table, new cells (``\\|`` cannot be written in a table code span). Messages
and errors were written raw. Each is parsed here by a real CommonMark + GFM-table parser (markdown-it-py).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from typer.testing import CliRunner

from scanner.cli import app
from scanner.findings import Decision, FileResult, Finding, ScanReport, Severity, Verdict
from scanner.report import render

HOSTILE = [
    "a`<img src=x onerror=alert(1)>`b.pkl",
    "x`[click here](https://evil.example/steal)`.pkl",
    "``<script>alert(1)</script>``.pkl",
    "back\\|slash | allow | ok.pkl",
    "trail\\",
    "&lt;script&gt;alert(1)&lt;/script&gt;.pkl",
    "*bold* ~~struck~~ _under_ ![i](https://evil.example/i.png)",
    "<https://evil.example>",
    " spaced ",
]
OWN_HTML = {"<code>", "</code>"}


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for t in tokens:
        yield t
        yield from _walk(t.children or [])


def _parse(md: str) -> list[Token]:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(md)


def _assert_inert(md: str) -> None:
    """No link, image, raw HTML (but the report's own ``<code>``), emphasis or strikethrough, and every table
    row has the header's five cells."""
    tokens = list(_walk(_parse(md)))
    assert not [
        t.type for t in tokens if t.type in ("link_open", "image", "html_block", "em_open", "s_open")
    ], md
    bad = [t.content for t in tokens if t.type == "html_inline" and t.content not in OWN_HTML]
    assert not bad, md
    # the only bold text is the report's own severity words
    strong = [
        tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "strong_open" and i + 1 < len(tokens)
    ]
    assert all(s in {x.value for x in Severity} | {"error"} for s in strong), (strong, md)
    rows, cells = 0, 0
    for t in tokens:
        if t.type == "tr_open":
            if rows:
                assert cells == 5, md
            rows, cells = rows + 1, 0
        elif t.type in ("td_open", "th_open"):
            cells += 1
    if rows:
        assert cells == 5, md


def _report(name: str) -> ScanReport:
    f = Finding(
        rule_id="PICKLE-DANGEROUS-GLOBAL",
        severity=Severity.CRITICAL,
        message=f"{name} (command-execution) is called",
        path=f"{name}!{name}",
    )
    fr = FileResult(path=name, size=1, format="pickle", findings=[f])
    return ScanReport(
        scanner_version="0",
        rules_version="0",
        targets=[name],
        files=[fr],
        errors=[f"cannot read {name}"],
        verdict=Verdict(decision=Decision.BLOCK, policy=name, file_decisions={name: Decision.BLOCK}),
    )


def _text(md: str) -> str:
    """What a reader sees: the rendered text content (code spans and text), joined."""
    return "".join(t.content for t in _walk(_parse(md)) if t.type in ("text", "code_inline"))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_renders_as_itself(name: str) -> None:
    md = render(_report(name), "markdown")
    _assert_inert(md)
    seen = _text(md)
    # the name is shown as written (in the table, the heading, the message, the error and the policy)
    assert seen.count(name.strip()) >= 5, md


def test_control_characters_stay_visible_and_cannot_forge_a_row() -> None:
    name = "evil.pkl\n| allow | `fine.pkl` | pickle | full | |\r\x1b[2K"
    md = render(_report(name), "markdown")
    _assert_inert(md)
    assert "\x1b" not in md and "\r" not in md
    assert "\\x0a" in _text(md)  # the name's line break is shown, not taken


def test_cli_markdown_of_a_folder_with_hostile_names(tmp_path: Path) -> None:
    evil = b"cos\nsystem\n(S'id'\ntR."
    names = ["a`<img src=x onerror=alert(1)>`b.pkl", "c\\|d | allow | e.pkl", "`[x](https:evil.example)`.pkl"]
    for n in names:
        (tmp_path / n).write_bytes(evil)
    (tmp_path / "fine.pkl").write_bytes(pickle.dumps([1, 2]))
    res = CliRunner().invoke(app, ["scan", str(tmp_path), "-f", "markdown"])
    assert res.exit_code == 1, res.output
    _assert_inert(res.stdout)
    seen = _text(res.stdout)
    assert all(n in seen for n in names), res.stdout
