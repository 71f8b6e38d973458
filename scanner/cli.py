"""Thin typer layer: parse arguments, call the engine, render, choose the exit code.

Exit codes: 0 allowed (or warned), 1 blocked by policy, 2 could not complete.
User errors print one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from . import __version__
from .cli_help import PlainHelpGroup
from .cli_support import OutputFormat, err_console, fail

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
    from .scan_command import run_scan

    run_scan(
        targets=targets,
        format=format,
        output=output,
        no_hash=no_hash,
        policy=policy,
        signature=signature,
        key=key,
        chain=chain,
        cache=cache,
        workers=workers,
        insecure=insecure,
        allow_http=allow_http,
        platform=platform,
        artifact_type=artifact_type,
        identity=identity,
        identity_regex=identity_regex,
        issuer=issuer,
        trust_config=trust_config,
        username=username,
        password_stdin=password_stdin,
        include=include,
        exclude=exclude,
        ignore_file=ignore_file,
        export_known_bad=export_known_bad,
        quiet=quiet,
        only_findings=only_findings,
    )


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
