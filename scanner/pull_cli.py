"""The ``modelward pull`` command: a thin layer over scanner.pull (parse, call, render, exit code)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .cli_support import (
    EXIT_BLOCKED,
    EXIT_OK,
    OutputFormat,
    emit,
    err_console,
    fail,
    keyless_flags,
    open_policy,
    registry_login,
    selection_flags,
    source_options,
)

if TYPE_CHECKING:
    from .gate.lockfile import LockedModel


def _pin_for(target: str, lock: Path | None) -> LockedModel | None:
    """The lockfile entry whose declared source is TARGET; an explicit --lock must pin it."""
    from .gate.config import LOCK_NAME, ConfigError
    from .gate.lockfile import read_lock

    path = lock or Path(LOCK_NAME)
    if lock is None and not path.is_file():
        return None
    try:
        entries = read_lock(path).models.values()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    for m in entries:
        if m.source == target:
            return m
    if lock is not None:
        raise fail(f"{path}: no model with source {target!r} is pinned there")
    return None


def register(app: typer.Typer) -> None:
    @app.command()
    def pull(
        target: str = typer.Argument(
            ..., help="hf://org/name[@revision], oci://host/repo[:tag|@digest], https://…/file[#sha256=<hex>]"
        ),
        to: Path | None = typer.Option(
            None, "--to", help="Install into this plain folder instead of the HF cache."
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Hugging Face cache root (default $HF_HUB_CACHE or $HF_HOME/hub)."
        ),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow plain http:// URLs."),
        insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
        revision: str | None = typer.Option(None, "--revision", help="Branch, tag or commit (same as @rev)."),
        policy: str = typer.Option(
            "default", "--policy", "-p", help="Shipped policy (default, strict, audit) or a policy file."
        ),
        format: OutputFormat = typer.Option(OutputFormat.console, "--format", "-f", help="Report format."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        lock: Path | None = typer.Option(
            None,
            "--lock",
            help="modelward.lock whose pin for TARGET must hold "
            "(default: ./modelward.lock when it pins TARGET).",
        ),
        signature: Path | None = typer.Option(
            None, "--signature", help="model-signing bundle (default: model.sig in the model)."
        ),
        key: list[Path] = typer.Option([], "--key", help="PEM public key to verify the signature with."),
        chain: list[Path] = typer.Option([], "--chain", help="PEM certificate chain / trust anchors."),
        identity: str | None = typer.Option(
            None, "--identity", help="Sigstore keyless: the signer's identity."
        ),
        identity_regex: str | None = typer.Option(
            None, "--identity-regex", help="Sigstore keyless: identity regex."
        ),
        issuer: str | None = typer.Option(
            None, "--issuer", help="Sigstore keyless: the signer's OIDC issuer."
        ),
        trust_config: Path | None = typer.Option(
            None, "--trust-config", help="Sigstore client trust config."
        ),
        username: str | None = typer.Option(
            None, "--username", help="OCI registry user (with --password-stdin)."
        ),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the OCI registry password from stdin."
        ),
        include: list[str] = typer.Option([], "--include", help="Only download files matching this glob."),
        exclude: list[str] = typer.Option([], "--exclude", help="Do not download files matching this glob."),
    ) -> None:
        """Download, verify every byte against the registry's claims, scan, and install only what passed.

        Exit 0 installed, 1 blocked (nothing installed), 2 could not complete (nothing installed).
        """
        from .findings import Decision
        from .io.redaction import redact
        from .pull import PullError, PullOptions
        from .pull import pull as do_pull
        from .report import render
        from .rules import RuleDatabaseError
        from .settings import ScanOptions

        pol = open_policy(policy)
        for p in [*key, *chain, *([signature] if signature else [])]:
            if not p.is_file():
                raise fail(f"{p}: no such file")
        scan_opts = ScanOptions(
            signature=str(signature.resolve()) if signature else None,
            signature_keys=[str(k) for k in key],
            signature_chains=[str(c) for c in chain],
            signature_identities=keyless_flags(identity, identity_regex, issuer, trust_config),
            selection=selection_flags(include, exclude, None, local_ignore_file=False),
        )
        opts = PullOptions(
            to=to,
            cache_dir=cache_dir,
            policy=pol,
            locked=_pin_for(target, lock),
            scan=scan_opts,
            source_options=source_options(
                allow_http=allow_http,
                insecure=insecure,
                revision=revision,
                **registry_login(username, password_stdin),
            ),
        )
        if opts.locked is not None:
            err_console.print(f"pinned by lockfile: {opts.locked.name} at {opts.locked.resolved}")
        try:
            outcome = do_pull(target, opts)
        except PullError as exc:
            raise fail(redact(f"pull failed, nothing was installed: {exc}")) from None
        except RuleDatabaseError as exc:
            raise fail(f"rule database: {exc}") from None
        report = outcome.report
        color = output is None and format is OutputFormat.console and sys.stdout.isatty()
        emit(render(report, format.value, color=color), output)
        verdict = report.verdict
        if verdict is not None and verdict.decision is Decision.BLOCK:
            err_console.print(
                f"[bold red]blocked:[/] nothing was installed ({len(verdict.reasons)} reason(s) above)"
            )
            raise typer.Exit(EXIT_BLOCKED)
        err_console.print(redact(outcome.message), soft_wrap=True)
        raise typer.Exit(EXIT_OK)
