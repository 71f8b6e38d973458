"""Renderers: one module per output format, all taking a finished ScanReport."""

from __future__ import annotations

from ..findings import ScanReport

FORMATS = ("console", "json", "sarif", "markdown", "html", "cyclonedx")


def render(
    report: ScanReport,
    fmt: str,
    *,
    color: bool = False,
    width: int | None = None,
    only_findings: bool = False,
    quiet: bool = False,
) -> str:
    """``only_findings``/``quiet`` shape the console report only; machine formats always carry every file."""
    report = report.printable()  # undecodable names never crash a renderer or the UTF-8 file it is written to
    if fmt == "json":
        from .json_report import render_json

        return render_json(report)
    if fmt == "sarif":
        from .sarif import render_sarif

        return render_sarif(report)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    if fmt == "cyclonedx":
        from .cyclonedx import render_cyclonedx

        return render_cyclonedx(report)
    if fmt == "console":
        from .console import render_console

        return render_console(report, color=color, width=width, only_findings=only_findings, quiet=quiet)
    raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")
