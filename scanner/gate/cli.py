"""`modelward lock` and `modelward check` (the CI gate)."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..cli_support import (
    EXIT_OK,
    OutputFormat,
    emit,
    err_console,
    escape,
    exit_code_for,
    fail,
    source_options,
)

if TYPE_CHECKING:  # the commands import what they run: `modelward scan` starts without the gate (issue #13)
    from ..findings import Decision, ScanReport
    from .config import ProjectConfig


def register(app: typer.Typer) -> None:
    @app.command()
    def lock(
        upgrade: list[str] = typer.Option(
            None, "--upgrade", help="Move the pin of model NAME deliberately (repeatable)."
        ),
        upgrade_all: bool = typer.Option(False, "--upgrade-all", help="Re-resolve every declared model."),
        project: Path = typer.Option(
            Path("."), "--project", help="Project folder holding modelward.toml or pyproject.toml."
        ),
        config: Path | None = typer.Option(
            None, "--config", help="Explicit modelward.toml or pyproject.toml."
        ),
        insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// URLs."),
    ) -> None:
        """Pin every declared model dependency to an immutable reference and per-file SHA-256 in modelward.lock."""
        from ..policy.loader import PolicyError
        from ..rules import RuleDatabaseError
        from .check import GateOptions, run_lock
        from .config import ConfigError, load_config

        try:
            cfg = load_config(project, config)
            wanted = set() if upgrade_all else (set(upgrade) if upgrade else None)
            opts = GateOptions(source_options=source_options(insecure=insecure, allow_http=allow_http))
            lk, messages = run_lock(cfg, upgrade=wanted, opts=opts)
        except (ConfigError, PolicyError, RuleDatabaseError) as exc:
            raise fail(str(exc)) from None
        for m in messages:
            err_console.print(m)
        err_console.print(f"wrote {lk.path} ({len(lk.models)} models)")
        raise typer.Exit(EXIT_OK)

    @app.command()
    def check(
        format: OutputFormat = typer.Option(OutputFormat.console, "--format", "-f", help="Report format."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        policy: str | None = typer.Option(None, "--policy", "-p", help="Override every dependency's policy."),
        project: Path = typer.Option(
            Path("."), "--project", help="Project folder holding modelward.toml or pyproject.toml."
        ),
        config: Path | None = typer.Option(
            None, "--config", help="Explicit modelward.toml or pyproject.toml."
        ),
        no_cache: bool = typer.Option(
            False, "--no-cache", help="Rescan everything instead of reusing results by digest."
        ),
        insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// URLs."),
        rules_dir: Path | None = typer.Option(
            None,
            "--rules-dir",
            help="Also judge with this candidate rule database and say what would change.",
        ),
    ) -> None:
        """CI gate: verify the lock against declarations and registries, scan, apply policy; exit 0/1/2."""
        from ..cache import ResultCache
        from ..policy.loader import PolicyError
        from ..report import render
        from ..rules import RuleDatabaseError
        from .check import GateOptions, run_check
        from .config import ConfigError, load_config

        try:
            cfg = load_config(project, config)
            opts = GateOptions(
                source_options=source_options(insecure=insecure, allow_http=allow_http),
                cache=None if no_cache else ResultCache(),
                policy_override=policy,
            )
            report = run_check(cfg, opts)
            candidate = run_check(cfg, replace(opts, rules_root=rules_dir)) if rules_dir else None
        except (ConfigError, PolicyError, RuleDatabaseError) as exc:
            raise fail(str(exc)) from None
        if candidate is not None:
            for line in verdict_changes(report, candidate):
                err_console.print(line, soft_wrap=True, markup=False)
        if (
            format is OutputFormat.sarif
        ):  # remote models point at the line of the project file that declares them
            from ..report.sarif import render_sarif

            emit(render_sarif(report, anchors=declaration_anchors(cfg, report)), output)
        else:
            emit(render(report, format.value), output)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as fh:
                    fh.write(render(report, "markdown"))
            except OSError as exc:
                err_console.print(f"warning: cannot append to GITHUB_STEP_SUMMARY: {exc.strerror}")
        if output is not None:
            assert report.verdict is not None  # run_check always judges
            err_console.print(f"verdict: {report.verdict.decision.value} — report written to {output}")
        for e in report.errors:
            err_console.print(f"[bold red]error:[/] {escape(e)}", soft_wrap=True)
        raise typer.Exit(exit_code_for(report))


def declaration_anchors(cfg: ProjectConfig, report: ScanReport) -> dict[str, tuple[str, int]]:
    """Report paths and remote sources -> (project file relative to the working directory, declaring line)."""
    try:
        lines = cfg.path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    try:
        shown = cfg.path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        shown = cfg.path.name
    start = next((i for i, ln in enumerate(lines) if re.match(r"\s*\[(tool\.modelward\.)?models\]", ln)), 0)
    where: dict[str, tuple[str, int]] = {}
    for name in cfg.models:
        pat = re.compile(rf"\s*[\"']?{re.escape(name)}[\"']?\s*=")
        line = next((i + 1 for i, ln in enumerate(lines[start:], start) if pat.match(ln)), start + 1)
        where[name] = (shown, line)
    anchors = dict(where)
    for fr in report.files:
        name = fr.path.split("/", 1)[0]
        if name in where and fr.source and not fr.source.startswith("file://"):
            anchors[fr.source] = where[name]
    return anchors


def verdict_changes(current: ScanReport, candidate: ScanReport) -> list[str]:
    """What a candidate rule database would decide differently (``check --rules-dir``)."""
    now = current.verdict.file_decisions if current.verdict else {}
    then = candidate.verdict.file_decisions if candidate.verdict else {}

    def shown(decision: Decision | None) -> str:
        return decision.value if decision else "-"

    changed = [
        f"  {p}: {shown(now.get(p))} -> {shown(then.get(p))}"
        for p in sorted(set(now) | set(then))
        if now.get(p) != then.get(p)
    ]
    head = f"rule database {candidate.rules_version} (candidate) vs {current.rules_version}: "
    if not changed:
        return [head + "no verdict would change"]
    return [head + f"{len(changed)} verdict(s) would change", *changed]
