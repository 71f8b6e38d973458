"""Every command's --help names values with words (<path>, <N>, <glob>, TARGET), never Python types (issue #13)."""

from __future__ import annotations

import re

import typer.main
from typer.testing import CliRunner

from scanner.cli import app

_TYPE_METAVAR = re.compile(
    r"<(?:int|float|str|bool|text range|int range|float range)>|<list\[|<tuple\[|<Path>"
)


def _command_paths() -> list[list[str]]:
    """Every command and sub-command of the real CLI, walked from the click tree typer builds."""
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(p) for p in _command_paths()}
    assert {"", "scan", "pull", "check", "lock", "audit", "rules", "sign", "verify", "version"} <= names
    assert any(n.startswith("rules ") for n in names)  # sub-commands of a group are walked too


def test_no_python_type_metavars_in_any_help() -> None:
    runner = CliRunner()
    bad: dict[str, list[str]] = {}
    for path in _command_paths():
        res = runner.invoke(app, [*path, "--help"], catch_exceptions=False)
        assert res.exit_code == 0, (path, res.output)
        hits = [ln.strip() for ln in res.stdout.splitlines() if _TYPE_METAVAR.search(ln)]
        if hits:
            bad[" ".join(path) or "modelward"] = hits
    assert not bad, f"type metavars in --help: {bad}"


def test_words_replace_types_where_they_say_more() -> None:
    res = CliRunner().invoke(app, ["scan", "--help"], catch_exceptions=False)
    out = res.stdout
    assert re.search(r"-j, --workers <N>", out)
    assert re.search(r"--include <glob>", out)
    assert re.search(r"--key <path>", out)
    assert re.search(r"-p, --policy <name\|file>", out)
    assert "TARGET..." in out and "TARGET... <" not in out  # an argument's name is not followed by a type
