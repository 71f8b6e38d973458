"""Markdown summary, for CI step summaries and audit reports people read."""

from __future__ import annotations

import io
import re
from typing import TextIO

from ..findings import Coverage, ScanReport, Severity
from .terminal import terminal_safe
from .view import MemoryView, ReportView

# What can start markdown in attacker-chosen text: links and images (``[``), raw HTML and autolinks (``<``),
# entities (``&``), code spans, table cells (``|``), emphasis and strikethrough, and the backslash itself
# (so an attacker's ``\\`` cannot cancel an escape). An underscore only starts emphasis at a word edge.
_ACTIVE = re.compile(r"([\\`*\[\]<&|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_PLAIN_CODE = re.compile(r"[^`|]+")  # a backslash is literal in a code span; only before a | is it not


def _visible(s: object) -> str:
    return terminal_safe(str(s).replace("\r\n", " ").replace("\n", " "))


def _cell(s: object) -> str:
    """Attacker-chosen text (a name, a message, an error) for a table cell or a line: control and format
    characters visible (a CI log is a terminal), then every character that could start a link, an image, raw
    HTML, an entity, a code span or emphasis, or end a table cell, backslash-escaped: it renders as written."""
    return _ACTIVE.sub(r"\\\1", _visible(s))


def _code(s: object) -> str:
    """Attacker-chosen text shown as code: a code span when nothing in it can end one or a table cell, else
    ``<code>`` around the escaped text (a backtick closes a span, and a table cell's ``|`` cannot be written in
    one when a backslash precedes it)."""
    text = terminal_safe(s)  # a name's line break shows as \\x0a: "a\\nb" and "a b" are different files
    if _PLAIN_CODE.fullmatch(text) and text.strip() == text:
        return f"`{text}`"
    return "<code>" + _ACTIVE.sub(r"\\\1", text) + "</code>"


def write_markdown(view: ReportView, out: TextIO) -> None:
    head, v = view.head, view.head.verdict
    out.write(f"## modelward: {v.decision.value.upper() if v else 'NO VERDICT'}\n\n")
    out.write(
        f"{view.totals.files} files, rule database {head.rules_version}, policy {_code(v.policy if v else '-')}, "
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
            f"| {decision.value} | {_code(fr.path)} | {_cell(fr.format)} | {fr.coverage.value} | {rules} |\n"
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
        out.write(f"### {_code(fr.path)}\n\n")
        for f in shown[:50]:
            out.write(f"- **{f.severity.value}** `{f.rule_id}`: {_cell(f.message)}\n")
        if len(shown) > 50:
            out.write(f"- … and {len(shown) - 50} more\n")
        out.write("\n")


def render_markdown(report: ScanReport) -> str:
    buf = io.StringIO()
    write_markdown(MemoryView(report), buf)
    return buf.getvalue()
