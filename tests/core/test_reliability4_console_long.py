"""Very long attacker-chosen text is shortened on the terminal, visibly, and kept whole in machine formats.

A zip member name may be 64 KiB and a finding message quotes it: before, the console printed every such name
whole, once per finding (a few hundred members made hundreds of MB of terminal output)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from scanner.cli import app
from scanner.report.terminal import terminal_safe
from tests.harness import make_zip

EVIL = b"cos\nsystem\n(S'id'\ntR."
LONG = "m" * 60_000 + "\u202e" + "tail.pkl"


def test_terminal_safe_limit_keeps_start_and_end_and_counts_the_rest() -> None:
    assert terminal_safe("short", 100) == "short"
    out = terminal_safe("a" * 500 + "\x1bEND", 100)
    assert len(out) < 140 and out.startswith("a" * 75) and out.endswith("\\x1bEND"[-25:])
    assert "characters]" in out and "\x1b" not in out
    assert terminal_safe("x" * 5000) == "x" * 5000  # no limit: unchanged


def test_console_shortens_a_64k_member_name_and_json_keeps_it(tmp_path: Path) -> None:
    p = tmp_path / "m.zip"
    p.write_bytes(make_zip({LONG: EVIL, "b/" + LONG: EVIL}))
    res = CliRunner().invoke(app, ["scan", str(p)])
    assert res.exit_code == 1, res.stdout[:500]
    longest = max(len(line) for line in res.stdout.splitlines())
    assert longest < 2500, longest  # before: over 60 000
    assert "characters]" in res.stdout and "tail.pkl" in res.stdout and "\u202e" not in res.stdout
    doc = json.loads(CliRunner().invoke(app, ["scan", str(p), "-f", "json"]).stdout)
    assert any(LONG in f["path"] for fr in doc["files"] for f in fr["findings"])
