"""Markdown summary, for CI step summaries and audit reports people read."""

from __future__ import annotations

import io
from typing import TextIO

from ..findings import Coverage, ScanReport, Severity
from .terminal import terminal_safe
from .view import MemoryView, ReportView


def _cell(s: str) -> str:
    """Text for a table cell or a line: pipes escaped, control characters visible (a CI log is a terminal)."""
    return terminal_safe(s.replace("|", "\\|").replace("\n", " "))


def write_markdown(view: ReportView, out: TextIO) -> None:
    head, v = view.head, view.head.verdict
    out.write(f"## modelward: {v.decision.value.upper() if v else 'NO VERDICT'}\n\n")
    out.write(
        f"{view.totals.files} files, rule database {head.rules_version}, policy `{v.policy if v else '-'}`, "
        f"{head.bytes_read} of {head.total_size} bytes read.\n\n"
    )
    rows = 0
    for fr, decision in view.files():
        worst = max(
            (f.severity for f in fr.findings if f.severity is not Severity.INFO),
            default=None,
            key=lambda s: s.rank,
        )
        if decision is None or (decision.value == "allow" and fr.coverage is Coverage.FULL and worst is None):
            continue
        if not rows:
            out.write("| decision | file | format | coverage | rules |\n|---|---|---|---|---|\n")
        rows += 1
        rules = ", ".join(sorted({f.rule_id for f in fr.findings if f.severity is not Severity.INFO}))
        out.write(
            f"| {decision.value} | `{_cell(fr.path)}` | {fr.format} | {fr.coverage.value} | {_cell(rules)} |\n"
        )
    out.write("\n" if rows else "No findings above info.\n\n")
    _findings_by_file(view, out)
    for e in head.errors:
        out.write(f"- **error**: {_cell(e)}\n")


def _findings_by_file(view: ReportView, out: TextIO) -> None:
    """Every finding above info with its severity and message, grouped by file, worst first."""
    first = True
    for fr, _decision in view.files():
        shown = sorted(
            (f for f in fr.findings if f.severity is not Severity.INFO), key=lambda f: -f.severity.rank
        )
        if not shown:
            continue
        if first:
            out.write("## Findings\n\n")
            first = False
        out.write(f"### `{_cell(fr.path)}`\n\n")
        for f in shown[:50]:
            out.write(f"- **{f.severity.value}** `{f.rule_id}`: {_cell(f.message)}\n")
        if len(shown) > 50:
            out.write(f"- … and {len(shown) - 50} more\n")
        out.write("\n")


def render_markdown(report: ScanReport) -> str:
    buf = io.StringIO()
    write_markdown(MemoryView(report), buf)
    return buf.getvalue()
