"""`scan -q` writes its verdict line without rich, byte for byte what the rich console writes (plain and colour)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from scanner.findings import Decision
from scanner.report.console import _DEC_STYLE, render_console
from tests.harness import benign_pickle, evil_pickle, scan


def _rich_line(text: str, style: str, color: bool) -> str:
    buf = io.StringIO()
    Console(
        file=buf, force_terminal=color, no_color=not color, width=120, highlight=False, soft_wrap=True
    ).print(Text(text, style=style))
    return buf.getvalue()


@pytest.mark.parametrize("color", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("payload", ["benign", "evil"])
def test_quiet_line_is_what_rich_writes(tmp_path, color: bool, payload: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.pkl"
    path.write_bytes(benign_pickle() if payload == "benign" else evil_pickle())
    report = scan(path)
    verdict = report.verdict
    assert verdict is not None
    assert verdict.decision is (Decision.ALLOW if payload == "benign" else Decision.BLOCK)
    line = f"verdict: {verdict.decision.value.upper()} (policy {verdict.policy}), 1 files"
    expected = _rich_line(line, _DEC_STYLE[verdict.decision], color)
    assert render_console(report, quiet=True, color=color) == expected
