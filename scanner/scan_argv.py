"""The ``scan`` command line read without typer, when it uses only the plain forms of its options (issue #13).

Importing typer and building its click command cost about an eighth of a one-file scan, more than the start-up
goal left. This parser accepts a command line only where it can say exactly what typer would hand the
command: ``[--no-color] scan`` followed by targets and options written as ``--name value``, ``--name=value``,
``-x value`` or a flag. Anything else (help, ``--version``, ``--``, joined short options, a value that looks
like an option, a repeated single-valued option, an unknown name, a value typer would reject, completion)
returns None, and typer parses the line as before: its messages and errors are unchanged.
``tests/core/test_scan_argv.py`` checks the table below against the typer command's own parameters and
compares both parsers over generated command lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cli_support import OutputFormat


def _text(value: str) -> str:
    return value


def _format(value: str) -> OutputFormat:
    return OutputFormat(value)  # ValueError outside the choices: typer's message then


def _workers(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise ValueError(value)
    return int(value)


Convert = Callable[[str], Any]

# option name -> (parameter, conversion); a parameter listed in REPEATED collects every value
VALUED: dict[str, tuple[str, Convert]] = {
    "-f": ("format", _format),
    "--format": ("format", _format),
    "-o": ("output", Path),
    "--output": ("output", Path),
    "-p": ("policy", _text),
    "--policy": ("policy", _text),
    "--signature": ("signature", Path),
    "--key": ("key", Path),
    "--chain": ("chain", Path),
    "-j": ("workers", _workers),
    "--workers": ("workers", _workers),
    "--platform": ("platform", _text),
    "--artifact-type": ("artifact_type", _text),
    "--identity": ("identity", _text),
    "--identity-regex": ("identity_regex", _text),
    "--issuer": ("issuer", _text),
    "--trust-config": ("trust_config", Path),
    "--username": ("username", _text),
    "--include": ("include", _text),
    "--exclude": ("exclude", _text),
    "--ignore-file": ("ignore_file", Path),
    "--export-known-bad": ("export_known_bad", Path),
}
FLAGS: dict[str, str] = {
    "--no-hash": "no_hash",
    "--cache": "cache",
    "--insecure": "insecure",
    "--allow-http": "allow_http",
    "--password-stdin": "password_stdin",
    "-q": "quiet",
    "--quiet": "quiet",
    "--only-findings": "only_findings",
}
REPEATED = frozenset({"key", "chain", "include", "exclude"})
DEFAULTS: dict[str, Any] = {
    "format": OutputFormat.console,
    "output": None,
    "no_hash": False,
    "policy": "default",
    "signature": None,
    "key": [],
    "chain": [],
    "cache": False,
    "workers": 1,
    "insecure": False,
    "allow_http": False,
    "platform": None,
    "artifact_type": None,
    "identity": None,
    "identity_regex": None,
    "issuer": None,
    "trust_config": None,
    "username": None,
    "password_stdin": False,
    "include": [],
    "exclude": [],
    "ignore_file": None,
    "export_known_bad": None,
    "quiet": False,
    "only_findings": False,
}
COMPLETION_VAR = "_MODELWARD_COMPLETE"  # click answers shell completion when this is set


def scan_arguments(argv: list[str]) -> dict[str, Any] | None:
    """The keyword arguments typer would give ``run_scan`` for ``argv`` (the words after the program name), or
    None where typer must read the line. ``--no-color`` before ``scan`` is applied here, as the root callback
    applies it."""
    if COMPLETION_VAR in os.environ:
        return None
    at = 0
    while at < len(argv) and argv[at] == "--no-color":
        at += 1
    if at >= len(argv) or argv[at] != "scan":
        return None
    params = _scan_options(argv[at + 1 :])
    if params is None:
        return None
    if at:
        os.environ["NO_COLOR"] = "1"
    return params


def _scan_options(words: list[str]) -> dict[str, Any] | None:
    seen: set[str] = set()
    out: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()}
    targets: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            targets.append(word)
            continue
        name, joined, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in FLAGS and not joined:
            out[FLAGS[name]] = True
            continue
        if name not in VALUED:
            return None  # help, --, -qf, -fjson, unknown: typer's parser and messages
        if not joined:
            if i >= len(words):
                return None
            value = words[i]
            i += 1
        param, convert = VALUED[name]
        if not value or value.startswith("-") or (param in seen and param not in REPEATED):
            return None
        seen.add(param)
        try:
            converted = convert(value)
        except ValueError:
            return None
        if param in REPEATED:
            out[param].append(converted)
        else:
            out[param] = converted
    if not targets:
        return None
    out["targets"] = targets
    return out
