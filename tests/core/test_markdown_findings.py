"""The Markdown report people read: severity and message of every finding, grouped by file."""

from __future__ import annotations

from pathlib import Path

from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import load_policy
from scanner.report import render


def test_findings_grouped_with_severity_and_message(tmp_path: Path) -> None:
    (tmp_path / "a.pkl").write_bytes(b"cos\nsystem\n(S'x'\ntR.")
    (tmp_path / "b.pkl").write_bytes(b"cposix\nsystem\n(S'y'\ntR.")
    report = scan_targets([str(tmp_path)], ScanOptions())
    report.verdict = decide(report, load_policy("default"))
    md = render(report, "markdown")
    assert "## Findings" in md
    for name in ("a.pkl", "b.pkl"):
        section = md.split(f"### `{name}`", 1)[1].split("###", 1)[0]
        assert "- **critical** `PICKLE-DANGEROUS-GLOBAL`:" in section and "system" in section
