"""`modelward audit`: the scheduled zoo audit, and `audit diff` / `audit history` over its inventory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from .cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    OutputFormat,
    emit,
    err_console,
    escape,
    fail,
    open_policy,
    selection_flags,
    source_options,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .findings import FileResult
    from .selection import Selection
    from .settings import ScanOptions


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_interspersed_args": True})
    def audit(
        targets: list[str] = typer.Argument(
            ...,
            metavar="TARGET... | diff [RUN_A RUN_B] | history PATH|DIGEST",
            help="Folders, files, hf://, oci://, https://… to audit; or a query.",
        ),
        db: Path | None = typer.Option(
            None, "--db", help="Inventory database (default: XDG data dir; MODELWARD_AUDIT_DB)."
        ),
        policy: str = typer.Option(
            "audit", "--policy", "-p", help="audit (report, exit 0) or a gating policy (exit 1 on block)."
        ),
        workers: int = typer.Option(
            1, "--workers", "-j", min=0, help="Processes for local folders (0: one per core)."
        ),
        dask: str | None = typer.Option(
            None,
            "--dask",
            envvar="MODELWARD_DASK_ADDRESS",
            help="Send per-file inspection to this Dask scheduler (tcp://host:8786).",
        ),
        format: OutputFormat = typer.Option(OutputFormat.console, "--format", "-f", help="Report format."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        rehash: bool = typer.Option(
            False, "--rehash", help="Re-hash and re-inspect every file, unchanged or not."
        ),
        known_bad: bool = typer.Option(
            False, "--known-bad", help="audit export: the blocked files as OSV records."
        ),
        show_source: bool = typer.Option(
            False, "--show-source", help="audit export: name where each file was found (redacted by default)."
        ),
        only_findings: bool = typer.Option(
            False, "--only-findings", help="Console: list only files with findings."
        ),
        include: list[str] = typer.Option(
            [], "--include", help="Only files matching this glob (repeatable)."
        ),
        exclude: list[str] = typer.Option(
            [], "--exclude", help="Leave out files matching this glob (repeatable)."
        ),
        insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// URLs."),
    ) -> None:
        """Audit a model zoo into an inventory: only new or changed files are hashed and inspected.

        Exit 0 when the audit completed (with the audit policy), 1 when a gating policy blocks, 2 when it
        could not complete.
        """
        import sqlite3

        from .audit.inventory import Inventory, InventoryError, default_db_path

        db_path = db or default_db_path()
        if targets[0] in ("diff", "history", "export"):
            if not db_path.exists():  # a mistyped --db: say so, rather than create an empty inventory there
                raise fail(f"{db_path}: no inventory database here (`modelward audit TARGET` creates one)")
            try:
                with Inventory(db_path) as inv:
                    if targets[0] == "export":
                        text = _export(inv, targets[1:], known_bad, show_source)
                    else:
                        text = _diff(inv, targets[1:]) if targets[0] == "diff" else _history(inv, targets[1:])
            except InventoryError as exc:
                raise fail(str(exc)) from None
            except sqlite3.Error as exc:  # found corrupt, locked or full after it opened
                raise _db_failure(db_path, exc) from None
            emit(text, output)
            raise typer.Exit(EXIT_OK)
        _run(
            targets,
            db_path,
            policy,
            workers,
            dask,
            format,
            output,
            rehash,
            only_findings,
            source_options(insecure=insecure, allow_http=allow_http),
            selection_flags(include, exclude, None),
        )


def _run(
    targets: list[str],
    db_path: Path,
    policy: str,
    workers: int,
    dask: str | None,
    format: OutputFormat,
    output: Path | None,
    rehash: bool,
    only_findings: bool,
    sources: dict[str, object],
    selection: Selection | None = None,
) -> None:
    import sqlite3

    from .audit.inventory import InventoryError
    from .audit.report import write_audit_report
    from .audit.runner import AuditOptions, run_audit
    from .cli_support import emit_with, exit_code_for, use_color
    from .parallel import default_workers, executor_for
    from .progress import file_progress
    from .rules import RuleDatabaseError
    from .settings import ScanOptions

    pol = open_policy(policy)
    scan = ScanOptions(source_options=sources, selection=selection)
    executor = executor_for(workers or default_workers(), dask)
    restore = _stop_between_files_on_sigint(scan)
    try:
        with file_progress(scan):
            outcome = run_audit(
                targets, AuditOptions(db=db_path, policy=pol, scan=scan, rehash=rehash, executor=executor)
            )
    except InventoryError as exc:
        raise fail(str(exc)) from None
    except sqlite3.Error as exc:  # what was recorded stays; the run stays marked as not finished
        raise _db_failure(db_path, exc) from None
    except RuleDatabaseError as exc:
        raise fail(f"rule database: {exc}") from None
    finally:
        restore()
    with outcome:
        report, summary, store = outcome.report, outcome.summary, outcome.store
        if report.errors and not store.totals.files:
            for e in report.errors:
                err_console.print(f"[bold red]error:[/] {escape(e)}", soft_wrap=True)
            raise typer.Exit(EXIT_ERROR)
        color = use_color(output, format)

        def write(out: TextIO) -> None:
            write_audit_report(outcome, format.value, out, color=color, only_findings=only_findings)

        try:
            emit_with(write, output)
        except sqlite3.Error as exc:  # the report store's temporary file: a full disk
            raise fail(f"cannot write report: temporary report store: {exc}") from None
        files = summary.files
        err_console.print(
            f"audit run {summary.run}: {files.new} new, {files.changed} changed, {files.unchanged} unchanged, "
            f"{files.removed} removed; {summary.inspected_files} inspected, {summary.reused_files} reused; "
            f"{store.count('new_findings')} new and {store.count('resolved_findings')} resolved findings"
            + (f" (previous run {summary.previous_run})" if summary.previous_run else ""),
            soft_wrap=True,
        )
        for e in report.errors:
            err_console.print(f"[bold red]error:[/] {escape(e)}", soft_wrap=True)
        raise typer.Exit(exit_code_for(report))


def _stop_between_files_on_sigint(scan: ScanOptions) -> Callable[[], None]:
    """Ctrl-C raises KeyboardInterrupt wherever it lands; inside a weakref callback or ``__del__`` Python
    reports it as unraisable (a traceback on stderr) and carries on, and the audit would run to the end. The
    press is also remembered and checked after each judged file, so the audit stops there, and the
    unraisable report of that one interrupt is dropped. Returns what puts the previous handlers back."""
    import signal
    import sys
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return lambda: None  # ignored (a background job) or handled by whoever embeds us: leave it
    pressed: list[int] = []

    def on_sigint(signum: int, frame: object) -> None:
        pressed.append(signum)
        raise KeyboardInterrupt

    previous = scan.on_file

    def check(fr: FileResult) -> None:
        if previous is not None:
            previous(fr)
        if pressed:
            raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def quiet_when_pressed(unraisable: Any) -> None:
        if pressed and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # the press is acted on after the current file
        previous_hook(unraisable)

    signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = quiet_when_pressed
    scan.on_file = check

    def restore() -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = previous_hook
        scan.on_file = previous

    return restore


def _db_failure(db_path: Path, exc: Exception) -> SystemExit:
    """An inventory that opened but then failed: corrupt pages, a lock held past the wait, a full disk."""
    from .audit.inventory import BUSY_SECONDS

    why = str(exc) or type(exc).__name__
    if "locked" in why or "busy" in why:
        why += f" (another process is writing it; waited {BUSY_SECONDS:g} s)"
    return fail(f"{db_path}: inventory database error: {why}")


def _diff(inv: object, args: list[str]) -> str:
    from .audit.inventory import Inventory

    assert isinstance(inv, Inventory)
    runs = [r for r in inv.runs() if r.status == "complete"]
    if len(args) == 2:
        a, b = (_run_id(x) for x in args)
    elif not args and len(runs) >= 2:
        a, b = runs[-2].id, runs[-1].id
    else:
        raise fail("audit diff takes two run ids, or none to compare the last two completed runs")
    for rid in (a, b):
        if inv.run(rid) is None:
            raise fail(f"audit diff: no run {rid} in {inv.path}")
    files_a = {(t, p): d for t, p, d, _s in inv.seen_in(a)}
    files_b = {(t, p): d for t, p, d, _s in inv.seen_in(b)}
    fa, fb = inv.findings_of(a), inv.findings_of(b)
    doc = {
        "from_run": a,
        "to_run": b,
        "added": sorted(f"{t}/{p}" for t, p in files_b.keys() - files_a.keys()),
        "removed": sorted(f"{t}/{p}" for t, p in files_a.keys() - files_b.keys()),
        "changed": sorted(
            f"{t}/{p}" for k, d in files_b.items() if k in files_a and files_a[k] != d for t, p in [k]
        ),
        "new_findings": [
            dict(zip(("path", "rule_id", "severity", "message"), x, strict=True)) for x in sorted(fb - fa)
        ],
        "resolved_findings": [
            dict(zip(("path", "rule_id", "severity", "message"), x, strict=True)) for x in sorted(fa - fb)
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _export(inv: object, args: list[str], known_bad: bool, show_source: bool) -> str:
    from .audit.inventory import Inventory
    from .rules import get_rule_db
    from .rulesdb.feeds import export_records

    assert isinstance(inv, Inventory)
    if not known_bad:
        raise fail("audit export: say what to export (--known-bad)")
    runs = [r for r in inv.runs() if r.status in ("complete", "incomplete")]
    run_id = _run_id(args[0]) if args else (runs[-1].id if runs else None)
    if run_id is None or inv.run(run_id) is None:
        raise fail(f"audit export: no audit run {'' if run_id is None else run_id} in {inv.path}")
    items = [{**row, "where": f"{row['target']}/{row['path']}"} for row in inv.blocked(run_id)]
    return export_records(items, get_rule_db(), show_source=show_source)


def _history(inv: object, args: list[str]) -> str:
    from .audit.inventory import Inventory

    assert isinstance(inv, Inventory)
    if len(args) != 1:
        raise fail("audit history takes one PATH (target/path or a path suffix) or SHA-256 digest")
    return json.dumps({"query": args[0], "observations": inv.history(args[0])}, indent=2) + "\n"


def _run_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise fail(f"audit diff: {text!r} is not a run id") from None
