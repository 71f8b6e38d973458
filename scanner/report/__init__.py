"""Renderers: one module per output format, each writing a ``ReportView`` to a text stream."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, TextIO

from ..findings import ScanReport

if TYPE_CHECKING:
    from .view import ReportView

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
    buf = io.StringIO()
    write_report(report, fmt, buf, color=color, width=width, only_findings=only_findings, quiet=quiet)
    return buf.getvalue()


def write_report(
    report: ScanReport,
    fmt: str,
    out: TextIO,
    *,
    color: bool = False,
    width: int | None = None,
    only_findings: bool = False,
    quiet: bool = False,
) -> None:
    """``render``, written to ``out`` piece by piece instead of built as one string."""
    from .view import MemoryView

    # undecodable names never crash a renderer or the UTF-8 file it is written to
    write_view(
        MemoryView(report.printable()),
        fmt,
        out,
        color=color,
        width=width,
        only_findings=only_findings,
        quiet=quiet,
    )


def write_view(
    view: ReportView,
    fmt: str,
    out: TextIO,
    *,
    color: bool = False,
    width: int | None = None,
    only_findings: bool = False,
    quiet: bool = False,
) -> None:
    """``write_report`` of a ``ReportView``: a printable report in memory, or a scan's ``ReportStore``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "json":
        from .json_report import write_json

        write_json(view, out)
    elif fmt == "sarif":
        from .sarif import write_sarif

        write_sarif(view, out)
    elif fmt == "markdown":
        from .markdown import write_markdown

        write_markdown(view, out)
    elif fmt == "html":
        from .html import write_html

        write_html(view, out)
    elif fmt == "cyclonedx":
        from .cyclonedx import write_cyclonedx

        write_cyclonedx(view, out)
    else:
        from .console import write_console

        write_console(view, out, color=color, width=width, only_findings=only_findings, quiet=quiet)
