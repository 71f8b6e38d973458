"""The ``scan`` command's body, free of typer: the typer command in ``cli`` runs it, and so does the console
script straight from ``scan_argv`` when a command line uses only options that parser knows (issue #13: typer's
import and command building were an eighth of a one-file scan)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .cli_support import (
    EXIT_ERROR,
    OutputFormat,
    emit,
    emit_with,
    err_console,
    escape,
    exit_code_for,
    fail,
    keyless_flags,
    known_bad_records,
    open_policy,
    registry_login,
    selection_flags,
    source_options,
    use_color,
)

if TYPE_CHECKING:
    from .findings import ScanReport
    from .report.view import ReportView


def run_scan(
    *,
    targets: list[str],
    format: OutputFormat,
    output: Path | None,
    no_hash: bool,
    policy: str,
    signature: Path | None,
    key: list[Path],
    chain: list[Path],
    cache: bool,
    workers: int,
    insecure: bool,
    allow_http: bool,
    platform: str | None,
    artifact_type: str | None,
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    trust_config: Path | None,
    username: str | None,
    password_stdin: bool,
    include: list[str],
    exclude: list[str],
    ignore_file: Path | None,
    export_known_bad: Path | None,
    quiet: bool,
    only_findings: bool,
) -> NoReturn:
    """Scan model files and folders; exit 0 allowed, 1 blocked, 2 could not complete."""
    from .audit.judge import ScanFiles
    from .cache import ResultCache
    from .parallel import default_workers, executor_for
    from .pipeline import new_report, scan_targets
    from .policy.scan_settings import compile_scan_settings
    from .progress import file_progress
    from .report import write_view
    from .rules import RuleDatabaseError, get_rule_db
    from .settings import ScanOptions

    pol = open_policy(policy)
    for p in [*key, *chain, *([signature] if signature else [])]:
        if not p.is_file():
            raise fail(f"{p}: no such file")
    opts = ScanOptions(
        compute_sha256=not no_hash,
        scoped=compile_scan_settings(pol),
        signature=str(signature) if signature else None,
        signature_keys=[str(k) for k in key],
        signature_chains=[str(c) for c in chain],
        signature_identities=keyless_flags(identity, identity_regex, issuer, trust_config),
        selection=selection_flags(include, exclude, ignore_file),
        cache=ResultCache() if cache else None,
        source_options=source_options(
            **registry_login(username, password_stdin),
            insecure=insecure,
            allow_http=allow_http,
            platform=platform,
            artifact_type=artifact_type,
        ),
    )
    try:
        rules = get_rule_db(opts.rules_root)
        # files kept in memory, or past ScanFiles' threshold each judged on its own into an on-disk store
        files = ScanFiles(new_report(targets, rules), pol, rules)
    except RuleDatabaseError as exc:
        raise fail(f"rule database: {exc}") from None
    with files:
        try:
            with file_progress(opts):
                report = scan_targets(targets, opts, executor_for(workers or default_workers()), files.add)
        except RuleDatabaseError as exc:
            raise fail(f"rule database: {exc}") from None
        view = files.finish(report)  # report.verdict set
        if report.errors and not view.totals.files:  # nothing was judged: an error, not a verdict
            for e in report.errors:
                err_console.print(f"[bold red]error:[/] {escape(e)}", soft_wrap=True)
            raise SystemExit(EXIT_ERROR)
        color = use_color(output, format)
        emit_with(  # written as it is rendered: the report's text is never all in memory
            lambda out: write_view(
                view, format.value, out, color=color, only_findings=only_findings, quiet=quiet
            ),
            output,
        )
        if export_known_bad is not None:
            emit(known_bad_records(_blocked(report, view)), export_known_bad)
    assert report.verdict is not None
    if output is not None and format is not OutputFormat.console and not report.errors:
        err_console.print(f"verdict: {report.verdict.decision.value} — report written to {output}")
    for e in report.errors:
        err_console.print(f"[bold red]error:[/] {escape(e)}", soft_wrap=True)
    raise SystemExit(exit_code_for(report))


def _blocked(report: ScanReport, view: ReportView) -> ScanReport:
    """``report`` as ``known_bad_records`` reads it: its blocked files (from memory or the store) only."""
    from dataclasses import replace

    from .findings import Decision, Verdict

    if report.files or report.verdict is None:
        return report
    blocked = [fr for fr, d in view.files() if d is Decision.BLOCK and fr.sha256]
    verdict = Verdict(
        decision=report.verdict.decision,
        policy=report.verdict.policy,
        file_decisions={fr.path: Decision.BLOCK for fr in blocked},
    )
    return replace(report, files=blocked, verdict=verdict)


def run_scan_console(kwargs: dict[str, Any]) -> NoReturn:
    """``run_scan`` for the console script's typer-free path, ending as typer's main would: an interrupt exits
    130, end of input prints ``Aborted!`` and exits 1, a closed stdout (``| head``) exits 1 quietly."""
    try:
        run_scan(**kwargs)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - what is left to flush goes nowhere
        sys.exit(1)
