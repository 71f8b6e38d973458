"""An audit run's report in each format, written as a stream from its ``ReportStore``.

The scan report's formats (``scanner.report``) plus what the audit adds: the JSON ``audit`` section, the HTML
cards and new findings, the markdown "since the last audit" section. Paths and findings lists come from the
store one at a time, so the report's size never has to fit in memory.
"""

from __future__ import annotations

import json
from typing import TextIO

from ..report.json_report import write_list
from .runner import AuditOutcome, AuditSummary

_LISTS = ("changed_paths", "new_paths", "removed_paths", "new_findings", "resolved_findings")


def write_audit_report(
    outcome: AuditOutcome, fmt: str, out: TextIO, *, color: bool = False, only_findings: bool = False
) -> None:
    store = outcome.store
    if fmt == "json":
        from ..report.json_report import write_json

        write_json(store, out, tail=lambda o: _audit_section(outcome, o))
    elif fmt == "html":
        from ..report.html import AuditCards, write_html

        new = (json.loads(x) for x in store.items("new_findings", 500))
        cards = AuditCards(outcome.summary.files.model_dump(), store.count("new_findings"), new)
        write_html(store, out, cards)
    elif fmt == "markdown":
        from ..report.markdown import write_markdown

        write_markdown(store, out)
        _summary_markdown(outcome, out)
    elif fmt == "console":
        from ..report.console import write_console

        write_console(store, out, color=color, only_findings=only_findings)
    elif fmt == "sarif":
        from ..report.sarif import write_sarif

        write_sarif(store, out)
    elif fmt == "cyclonedx":
        from ..report.cyclonedx import write_cyclonedx

        write_cyclonedx(store, out)
    else:
        raise ValueError(f"unknown report format {fmt!r}")


def _audit_section(outcome: AuditOutcome, out: TextIO) -> None:
    """``,\\n  "audit": {...}``: the summary as ``json.dumps(indent=2)`` lays it out, nested one level, with its
    lists filled in from the store."""
    text = json.dumps(json.loads(outcome.summary.model_dump_json()), indent=2).replace("\n", "\n  ")
    out.write(',\n  "audit": ')
    for name in _LISTS:
        before, text = text.split(f'\n    "{name}": []', 1)
        out.write(before + f'\n    "{name}": ')
        write_list(out, outcome.store.items(name), " " * 6)
    out.write(text)


def _summary_markdown(outcome: AuditOutcome, out: TextIO) -> None:
    summary: AuditSummary = outcome.summary
    f = summary.files
    out.write(
        "\n### Since the last audit\n\n"
        f"Run {summary.run} (previous: {summary.previous_run or 'none'}): {f.new} new, {f.changed} changed, "
        f"{f.unchanged} unchanged, {f.removed} removed files; {summary.hashed_bytes} bytes hashed.\n\n"
    )
    for title, name in (("New findings", "new_findings"), ("Resolved findings", "resolved_findings")):
        first = True
        for body in outcome.store.items(name, 1000):
            if first:
                out.write(f"**{title}**\n\n")
                first = False
            x = json.loads(body)
            out.write(f"- **{x['severity']}** `{x['rule_id']}` `{x['path']}`: {x['message']}\n")
        if not first:
            out.write("\n")
