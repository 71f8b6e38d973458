"""A hostile name cannot drive the terminal: escape sequences, carriage returns and bidi overrides in file and
member names print as visible escapes in the console report, its -q line, the markdown report and error lines.

A name holding ``ESC [1A ESC [2K`` would otherwise erase the BLOCK line printed before it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.report.terminal import terminal_safe

EVIL = b"cos\nsystem\n(S'touch /tmp/modelward-canary'\ntR."
HOSTILE = "ok\x1b[1A\x1b[2K\rALLOW\u202eenil.pkl"


def test_terminal_safe_escapes_every_non_printable_character() -> None:
    assert terminal_safe("plain name.pkl") == "plain name.pkl"
    assert terminal_safe("a\x1b[2Kb\rc\x7f\x85\u2028\u202e") == "a\\x1b[2Kb\\x0dc\\x7f\\x85\\u2028\\u202e"
    assert terminal_safe("caf\u00e9 \u6a21\u578b") == "caf\u00e9 \u6a21\u578b"  # printable text is kept


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / HOSTILE).write_bytes(EVIL)
    (tmp_path / "fine.pkl").write_bytes(pickle.dumps([1, 2]))
    return tmp_path


@pytest.mark.parametrize("args", [[], ["-f", "markdown"]])
def test_reports_print_no_control_character(folder: Path, args: list[str]) -> None:
    res = CliRunner().invoke(app, ["scan", str(folder), *args])
    assert res.exit_code == 1
    assert not any(c in res.stdout for c in "\x1b\r\u202e"), repr(res.stdout)
    assert "ok\\x1b[1A\\x1b[2K\\x0dALLOW\\u202eenil.pkl" in res.stdout


def test_an_error_line_prints_no_control_character(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["scan", str(tmp_path / "missing\x1b[2K")])
    assert res.exit_code == 2
    assert "\x1b" not in res.stderr and "missing\\x1b[2K" in res.stderr
