"""Markdown summary, for CI step summaries and audit reports people read."""

from __future__ import annotations

from ..findings import Coverage, ScanReport, Severity


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ScanReport) -> str:
    v = report.verdict
    lines = [f"## modelward: {v.decision.value.upper() if v else 'NO VERDICT'}", ""]
    lines.append(
        f"{len(report.files)} files, rule database {report.rules_version}, policy `{v.policy if v else '-'}`, "
        f"{report.bytes_read} of {report.total_size} bytes read."
    )
    lines.append("")
    rows = []
    for fr in report.files:
        worst = max(
            (f.severity for f in fr.findings if f.severity is not Severity.INFO),
            default=None,
            key=lambda s: s.rank,
        )
        decision = v.file_decisions.get(fr.path) if v else None
        if decision is None or (decision.value == "allow" and fr.coverage is Coverage.FULL and worst is None):
            continue
        rules = ", ".join(sorted({f.rule_id for f in fr.findings if f.severity is not Severity.INFO}))
        rows.append(
            f"| {decision.value} | `{_cell(fr.path)}` | {fr.format} | {fr.coverage.value} | {_cell(rules)} |"
        )
    if rows:
        lines += ["| decision | file | format | coverage | rules |", "|---|---|---|---|---|", *rows, ""]
    else:
        lines += ["No findings above info.", ""]
    lines += _findings_by_file(report)
    for e in report.errors:
        lines.append(f"- **error**: {_cell(e)}")
    return "\n".join(lines) + "\n"


def _findings_by_file(report: ScanReport) -> list[str]:
    """Every finding above info with its severity and message, grouped by file, worst first."""
    out: list[str] = []
    for fr in report.files:
        shown = sorted(
            (f for f in fr.findings if f.severity is not Severity.INFO), key=lambda f: -f.severity.rank
        )
        if not shown:
            continue
        out += [f"### `{_cell(fr.path)}`", ""]
        out += [f"- **{f.severity.value}** `{f.rule_id}`: {_cell(f.message)}" for f in shown[:50]]
        if len(shown) > 50:
            out.append(f"- … and {len(shown) - 50} more")
        out.append("")
    return ["## Findings", "", *out] if out else []
