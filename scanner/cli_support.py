"""What every sub-command shares: output formats, exit codes, one-line errors, atomic report writes."""

from __future__ import annotations

import difflib
import os
import stat
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .findings import Decision, ScanReport

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from .integrity.trust import KeylessTrust
    from .policy.loader import Policy
    from .selection import Selection

EXIT_OK, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2


def escape(text: str) -> str:
    """A message for the terminal: control characters escaped (a hostile file name cannot drive the terminal)
    and rich's markup escaped (rich is imported when a message is printed: start-up, issue #13)."""
    from rich.markup import escape as rich_escape

    from .report.terminal import terminal_safe

    return rich_escape(terminal_safe(text))


class _ErrConsole:
    """The stderr console, made on first use: importing rich costs every command start-up, and
    NO_COLOR/--no-color are read when the first line is printed, after the options are parsed."""

    _console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                stderr=True,
                highlight=False,
                soft_wrap=True,
                no_color=bool(os.environ.get("NO_COLOR")) or None,
            )
        return getattr(self._console, name)


err_console: Console = _ErrConsole()  # type: ignore[assignment]


class OutputFormat(str, Enum):
    console = "console"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"
    html = "html"
    cyclonedx = "cyclonedx"


def fail(message: str, code: int = EXIT_ERROR) -> SystemExit:
    """Print one clear line and return the exit to raise (``SystemExit``: click lets it through with its code, and
    the scan command's typer-free path needs no typer to end, see ``scan_argv``)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return SystemExit(code)


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` to stdout, or all of it to ``output`` or nothing: a report killed half-way never sits there.

    It goes to a new file beside ``output`` (an exclusive, unpredictable name: a link planted at a fixed
    ``.part`` name is never written through, and two runs never share one) that is flushed to disk, then
    renamed over ``output``.
    """
    if output is None:
        sys.stdout.write(text)
        return
    from .io.atomic_file import write_atomic

    try:
        if not _regular_or_absent(output):  # /dev/null, /dev/stdout, a FIFO: a rename would replace it
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
            return
        write_atomic(Path(os.path.realpath(output)), text)  # through a link: replace the file it names
    except (OSError, UnicodeError) as exc:
        raise fail(f"{output}: cannot write report: {getattr(exc, 'strerror', None) or exc}") from None


def emit_with(write: Callable[[TextIO], None], output: Path | None) -> None:
    """``emit`` for a report written piece by piece: ``write(stream)`` goes to stdout, or to a new file that
    replaces ``output`` only once ``write`` returned, so a failed or interrupted report leaves no file."""
    if output is None:
        write(sys.stdout)
        sys.stdout.flush()
        return
    from .io.atomic_file import replacing_text

    try:
        if not _regular_or_absent(output):  # /dev/null, /dev/stdout, a FIFO: a rename would replace it
            with open(output, "w", encoding="utf-8", newline="") as f:
                write(f)
            return
        with replacing_text(Path(os.path.realpath(output))) as f:  # through a link: replace the file it names
            write(f)
    except (OSError, UnicodeError) as exc:
        raise fail(f"{output}: cannot write report: {getattr(exc, 'strerror', None) or exc}") from None


def _regular_or_absent(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return True  # reported when the folder is made


def open_policy(spec: str) -> Policy:
    from .policy.loader import PolicyError, load_policy

    try:
        return load_policy(spec)
    except PolicyError as exc:
        raise fail(f"policy: {exc}{_policy_hint(spec)}") from None


def _policy_hint(spec: str) -> str:
    """For a name that is neither a shipped policy nor a file: the closest shipped name and the list."""
    if Path(spec).exists() or "/" in spec or spec.endswith((".yaml", ".yml")):
        return ""
    from .resources import shipped_policy_names

    names = shipped_policy_names()
    close = difflib.get_close_matches(spec, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; shipped policies: {', '.join(names)}"


def use_color(output: Path | None, fmt: OutputFormat) -> bool:
    """Colour only for a console report on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return (
        output is None
        and fmt is OutputFormat.console
        and sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
    )


def exit_code_for(report: ScanReport) -> int:
    """A scan that could not complete is 2 even when what it did scan was blocked: it is not a verdict."""
    if report.errors:
        return EXIT_ERROR
    if report.verdict and report.verdict.decision is Decision.BLOCK:
        return EXIT_BLOCKED
    return EXIT_OK


def source_options(**flags: object) -> dict[str, object]:
    """Source options from CLI flags; unset flags are left out so each source keeps its defaults."""
    return {k: v for k, v in flags.items() if v not in (None, False)}


def keyless_flags(
    identity: str | None, identity_regex: str | None, issuer: str | None, trust_config: Path | None
) -> list[KeylessTrust]:
    """--identity/--identity-regex/--issuer/--trust-config as one Sigstore signer (none when unset)."""
    if identity is None and identity_regex is None and issuer is None:
        return []
    from .integrity.errors import IntegrityError
    from .integrity.trust import KeylessTrust

    try:
        return [
            KeylessTrust(
                issuer=issuer or "",
                identity=identity,
                identity_regex=identity_regex,
                trust_config=trust_config,
            )
        ]
    except IntegrityError as exc:
        raise fail(str(exc)) from None


def known_bad_records(report: ScanReport) -> str:
    """The files a scan blocked, as OSV known-bad records (``--export-known-bad``)."""
    import time

    from .rules import get_rule_db
    from .rulesdb.feeds import export_records

    v = report.verdict
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    items = [
        {
            "sha256": fr.sha256,
            "size": fr.size,
            "format": fr.format,
            "first_seen": now,
            "where": f"{fr.source or ''} {fr.path}".strip(),
            "findings": [(f.rule_id, f.severity.value, f.message) for f in fr.findings],
        }
        for fr in report.files
        if v is not None and v.file_decisions.get(fr.path) is Decision.BLOCK and fr.sha256
    ]
    return export_records(items, get_rule_db())


def selection_flags(
    include: list[str], exclude: list[str], ignore_file: Path | None, *, local_ignore_file: bool = True
) -> Selection | None:
    """--include/--exclude/--ignore-file (and ./.modelwardignore for scans) as a Selection, or None for all."""
    from .selection import Selection, build

    if ignore_file is not None and not ignore_file.is_file():
        raise fail(f"{ignore_file}: no such ignore file")
    sel = (
        build(include, exclude, ignore_file)
        if local_ignore_file
        else Selection(tuple(include), tuple(exclude))
    )
    return sel or None


def registry_login(username: str | None, password_stdin: bool) -> dict[str, object]:
    """--username/--password-stdin as source options (the password never on the command line)."""
    if username is None and not password_stdin:
        return {}
    if username is None or not password_stdin:
        raise fail("--username and --password-stdin go together")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail("--password-stdin: no password on standard input")
    return {"username": username, "password": password}
