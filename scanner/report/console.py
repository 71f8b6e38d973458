"""Human-readable terminal report (rich): one verdict line per file, then what was found and why."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, TextIO

from ..findings import Coverage, Decision, FileResult, ScanReport, Severity
from .terminal import terminal_safe
from .view import MemoryView, ReportView

if TYPE_CHECKING:
    from rich.console import Console

_SEV_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
NAME_LIMIT = 1000  # characters of a path or member name shown on the terminal (JSON keeps them whole)
TEXT_LIMIT = 2000  # of a message, a coverage note or a line of decompiled code
_DEC_STYLE = {Decision.BLOCK: "bold red", Decision.WARN: "bold yellow", Decision.ALLOW: "bold green"}
_DEC_ANSI = {
    Decision.BLOCK: "1;31",
    Decision.WARN: "1;33",
    Decision.ALLOW: "1;32",
}  # what rich writes for them


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _file_block(console: Console, fr: FileResult, decision: Decision | None) -> None:
    """One verdict line, then coverage notes and findings; lines never wrap (paths and messages stay greppable)."""
    from rich.text import Text

    line = Text()
    if decision is not None:
        line.append(f"{decision.value.upper():5} ", style=_DEC_STYLE[decision])
    line.append(terminal_safe(fr.path, NAME_LIMIT), style="bold")
    line.append(f"  [{terminal_safe(fr.format)}, {_human(fr.size)}", style="dim")
    if fr.size and fr.bytes_read < fr.size:
        line.append(f", read {_human(fr.bytes_read)}", style="dim")
    line.append("]", style="dim")
    if fr.coverage is not Coverage.FULL:
        line.append(f"  coverage: {fr.coverage.value}", style="bold magenta")
    if fr.signature:
        sig = terminal_safe(fr.signature)
        line.append(f"  signature: {sig}", style="green" if fr.signature == "verified" else "red")
    console.print(line)
    for note in fr.coverage_notes:
        console.print(Text(f"      not analyzed: {terminal_safe(note, TEXT_LIMIT)}", style="magenta"))
    shown = [
        f
        for f in fr.findings
        if f.severity is not Severity.INFO or fr.coverage is not Coverage.FULL or fr.format == "note"
    ]
    for f in sorted(shown, key=lambda f: -f.severity.rank):
        t = Text("      ")
        t.append(f" {f.severity.value.upper()} ", style=_SEV_STYLE[f.severity])
        t.append(f" {f.rule_id} ", style="bold")
        t.append(terminal_safe(f.message, TEXT_LIMIT))
        if "!" in f.path:
            t.append(f"  (in {terminal_safe(f.path.split('!', 1)[1], NAME_LIMIT)})", style="dim")
        console.print(t)
        code = f.evidence.get("decompiled")
        if code:
            console.print(
                Text(
                    "\n".join(
                        "          " + terminal_safe(ln, TEXT_LIMIT) for ln in str(code).splitlines()[:12]
                    ),
                    style="dim",
                )
            )


def _quiet_file(fr: FileResult, decision: Decision | None) -> bool:
    """A file with nothing to say: allowed, fully analyzed, no finding above info."""
    return (
        decision in (None, Decision.ALLOW)
        and fr.coverage is Coverage.FULL
        and all(f.severity is Severity.INFO for f in fr.findings)
    )


def render_console(
    report: ScanReport,
    *,
    color: bool = False,
    width: int | None = None,
    only_findings: bool = False,
    quiet: bool = False,
) -> str:
    """The terminal report as one string (see ``write_console``)."""
    buf = io.StringIO()
    write_console(MemoryView(report), buf, color=color, width=width, only_findings=only_findings, quiet=quiet)
    return buf.getvalue()


def write_console(
    view: ReportView,
    out: TextIO,
    *,
    color: bool = False,
    width: int | None = None,
    only_findings: bool = False,
    quiet: bool = False,
) -> None:
    """The terminal report.

    ``only_findings`` collapses files with nothing to say into one count (zoo scans print thousands);
    ``quiet`` prints the verdict line alone. A scan that could not complete (report.errors) prints no
    summary and no verdict: its errors go to stderr from the CLI, and a partial result is not a verdict.
    """
    report, totals = view.head, view.totals
    verdict = report.verdict
    if quiet:  # the verdict line alone, written without rich: `-q` is what scripts and hooks run
        if report.errors or verdict is None:
            return
        line = f"verdict: {verdict.decision.value.upper()} (policy {terminal_safe(verdict.policy)}), {totals.files} files"
        out.write((f"\x1b[{_DEC_ANSI[verdict.decision]}m{line}\x1b[0m" if color else line) + "\n")
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(
        file=out,
        force_terminal=color,
        no_color=not color,
        width=width or 120,
        highlight=False,
        soft_wrap=True,
    )
    hidden = 0
    for fr, decision in view.files():
        if only_findings and _quiet_file(fr, decision):
            hidden += 1
            continue
        _file_block(console, fr, decision)
    if report.errors:
        return
    if hidden:
        console.print(Text(f"{hidden} more files allowed with no findings", style="dim"))
    counts = totals.severities
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("files", str(totals.files))
    partial = totals.coverage[Coverage.PARTIAL]
    none = totals.coverage[Coverage.NONE]
    table.add_row(
        "coverage", f"{totals.files - partial - none} full, {partial} partial, {none} not analyzable"
    )
    table.add_row("findings", ", ".join(f"{counts[s]} {s.value}" for s in Severity if counts[s]) or "none")
    table.add_row("bytes read", f"{_human(report.bytes_read)} of {_human(report.total_size)}")
    table.add_row("rules", f"modelward {report.scanner_version}, rule database {report.rules_version}")
    console.print()
    console.print(table)
    if verdict:
        console.print(
            Text(
                f"verdict: {verdict.decision.value.upper()} (policy {terminal_safe(verdict.policy)})",
                style=_DEC_STYLE[verdict.decision],
            )
        )
        for r in view.reasons():  # reasons about the scan as a whole, not one file (e.g. a rule DB too old)
            if r.path is None and r.decision is not Decision.ALLOW and r.message not in report.errors:
                ref = f" ({r.policy_ref})" if r.policy_ref else ""
                text = terminal_safe(f"  {r.decision.value}: {r.message}{ref}")
                console.print(Text(text, style=_DEC_STYLE[r.decision]))
