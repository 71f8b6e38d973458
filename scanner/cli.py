"""Thin typer layer: parse arguments, call the engine, render, choose the exit code.

Exit codes: 0 allowed (or warned), 1 blocked by policy, 2 could not complete.
User errors print one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from . import __version__
from .cli_support import (  # noqa: F401 - re-exported for sub-command modules
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_OK,
    OutputFormat,
    PlainHelpGroup,
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

# Commands import what they run, inside their bodies: `--help`, `--version` and every other command start
# without the engine, the format handlers, the rule database or pydantic (issue #13, tests/core/test_startup.py).
_app = typer.Typer(
    name="modelward",
    help="Static ML supply-chain scanner: inspect model files without loading them, verify integrity, apply policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no boxes, no truncated option names, no type metavars
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=PlainHelpGroup,  # words, not Python types, as metavars in every command's help
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"modelward {__version__}")
        raise typer.Exit(0)


@_app.callback()
def _main_options(
    version: bool = typer.Option(
        False, "--version", "-V", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
    no_color: bool = typer.Option(
        False, "--no-color", help="No colours (also: NO_COLOR set in the environment)."
    ),
) -> None:
    """Static ML supply-chain scanner: inspect model files without loading them, verify integrity, apply policy."""
    if no_color:
        os.environ["NO_COLOR"] = "1"


@_app.command()
def scan(
    targets: list[str] = typer.Argument(
        ..., metavar="TARGET...", help="Files, folders, file://, hf://org/name[@rev], oci://…, https://…"
    ),
    format: OutputFormat = typer.Option(OutputFormat.console, "--format", "-f", help="Report format."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    no_hash: bool = typer.Option(False, "--no-hash", help="Skip SHA-256 of local files."),
    policy: str = typer.Option(
        "default", "--policy", "-p", help="Shipped policy (default, strict, audit) or a policy file."
    ),
    signature: Path | None = typer.Option(
        None, "--signature", help="model-signing bundle (default: model.sig beside the model)."
    ),
    key: list[Path] = typer.Option(
        [], "--key", help="PEM public key to verify the signature with (repeatable)."
    ),
    chain: list[Path] = typer.Option(
        [], "--chain", help="PEM certificate chain / trust anchors (repeatable)."
    ),
    cache: bool = typer.Option(
        False,
        "--cache",
        help="Reuse results for files whose SHA-256 was scanned before "
        "with the same rules (incremental audits; MODELWARD_CACHE_DIR).",
    ),
    workers: int = typer.Option(
        1, "--workers", "-j", min=0, help="Processes for local folders (0: one per core)."
    ),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
    allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// URLs."),
    platform: str | None = typer.Option(
        None,
        "--platform",
        help="OCI image index: scan only this platform, e.g. linux/amd64 or linux/arm64/v8.",
    ),
    artifact_type: str | None = typer.Option(
        None, "--artifact-type", help="OCI image index: scan only this artifactType."
    ),
    identity: str | None = typer.Option(
        None, "--identity", help="Sigstore keyless: the signer's e-mail/URI identity."
    ),
    identity_regex: str | None = typer.Option(
        None, "--identity-regex", help="Sigstore keyless: identity regex."
    ),
    issuer: str | None = typer.Option(
        None, "--issuer", help="Sigstore keyless: the signer's OIDC issuer URL."
    ),
    trust_config: Path | None = typer.Option(
        None, "--trust-config", help="Sigstore client trust config (private instance)."
    ),
    username: str | None = typer.Option(
        None, "--username", help="OCI registry user (with --password-stdin)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the OCI registry password from stdin."
    ),
    include: list[str] = typer.Option([], "--include", help="Only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Leave out files matching this glob (repeatable)."
    ),
    ignore_file: Path | None = typer.Option(
        None, "--ignore-file", help="Globs to leave out, one a line (default ./.modelwardignore)."
    ),
    export_known_bad: Path | None = typer.Option(
        None, "--export-known-bad", help="Write the blocked files as OSV known-bad records to this file."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict line (and errors)."),
    only_findings: bool = typer.Option(
        False, "--only-findings", help="List only files with findings; count the rest."
    ),
) -> None:
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
            raise typer.Exit(EXIT_ERROR)
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
    raise typer.Exit(exit_code_for(report))


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


@_app.command()
def version() -> None:
    """Print the scanner and rule-database versions."""
    from .rules import RuleDatabaseError, get_rule_db

    try:
        db = get_rule_db()
    except RuleDatabaseError as exc:
        raise fail(f"rule database: {exc}") from None
    typer.echo(f"modelward {__version__}, rule database {db.version}")


# Sub-command groups living in their own packages, in help order, with the command names each one adds (all
# ship with the package: a missing one is an installation error, never a silently absent command).
_OPTIONAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("integrity.cli", ("sign", "verify")),
    ("gate.cli", ("lock", "check")),
    ("pull_cli", ("pull",)),
    ("audit_cli", ("audit",)),
    ("rules_cli", ("rules",)),
)
_mounted: set[str] = set()


def _register_optional(command: str | None = None) -> None:
    """Mount the sub-command groups (``command``: only the one that adds it, so a process that runs one command
    imports one of them), keeping the commands in help order whatever was mounted first."""
    from importlib import import_module

    for module, names in _OPTIONAL:
        if module not in _mounted and (command is None or command in names):
            import_module(f".{module}", __package__).register(_app)
            _mounted.add(module)
    rank = {n: i for i, (_, names) in enumerate(_OPTIONAL) for n in names}
    _app.registered_commands.sort(key=lambda c: rank.get(_command_name(c), -1))
    _app.registered_groups.sort(key=lambda g: rank.get(g.name or "", -1))


def _command_name(c: typer.models.CommandInfo) -> str:
    from typer.main import get_command_name

    return c.name or (get_command_name(c.callback.__name__) if c.callback is not None else "")


def __getattr__(name: str) -> typer.Typer:
    """``app``: the whole application, every sub-command mounted (tests, ``typer`` tooling)."""
    if name == "app":
        _register_optional()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def app_for(argv: list[str]) -> typer.Typer:
    """The application with only the command ``argv`` runs. typer builds a click command, with every option,
    for each registered command at every start, and the sub-command modules cost their imports: together about
    a tenth of a local pickle scan (issue #13). The main options are flags, so the first word that is not an
    option names the command; help before it, an unknown or ambiguous name, or no name at all get the whole
    app, so their messages and suggestions are unchanged."""
    from copy import copy

    name = next((a for a in argv if not a.startswith("-")), None)
    if name is None or {"-h", "--help"} & set(argv[: argv.index(name)]):
        _register_optional()
        return _app
    _register_optional(name)
    commands = [c for c in _app.registered_commands if c.callback is not None and _command_name(c) == name]
    groups = [g for g in _app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        _register_optional()
        return _app
    only = copy(_app)
    only.registered_commands, only.registered_groups = commands, groups
    return only


def main() -> None:
    try:
        app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
