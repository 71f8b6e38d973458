"""``cli.app_for``: the process builds only the command it runs (start-up, issue #13). Whatever a user types must
behave exactly as with the whole app: same help, same errors and suggestions, same parsing of the main options."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import typer
from typer.main import get_command_name
from typer.testing import CliRunner

from scanner.cli import app, app_for

ALL = sorted(
    [c.name or get_command_name(c.callback.__name__) for c in app.registered_commands if c.callback]
    + [g.name for g in app.registered_groups if g.name]
)


@pytest.fixture(autouse=True)
def _keep_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-color sets NO_COLOR in this process: put the variable back as it was after each test."""
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.delenv("NO_COLOR")


def _run(target: typer.Typer, argv: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(target, argv)
    return res.exit_code, res.stdout, res.stderr


def test_every_command_is_found() -> None:
    assert len(ALL) >= 9 and {"scan", "check", "audit", "pull", "rules"} <= set(ALL)
    for name in ALL:
        only = app_for([name])
        assert only is not app, name
        assert len(only.registered_commands) + len(only.registered_groups) == 1, name
    assert len(app.registered_commands) + len(app.registered_groups) == len(ALL)  # the original is untouched


@pytest.mark.parametrize("name", ALL)
def test_a_command_s_help_is_the_same(name: str) -> None:
    assert _run(app_for([name, "--help"]), [name, "--help"]) == _run(app, [name, "--help"])


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["-h", "scan"],
        ["--version"],
        ["scna", "x"],  # the suggestion needs every command
        ["--no-color", "nosuch"],
        ["scan"],  # missing argument
        ["scan", "--nosuch", "x"],
        ["rules", "nosuch"],
    ],
)
def test_what_a_user_types_behaves_the_same(argv: list[str]) -> None:
    assert _run(app_for(argv), argv) == _run(app, argv)


def test_main_options_before_the_command_still_parse(tmp_path: Path) -> None:
    small = tmp_path / "m.pkl"
    small.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    argv = ["--no-color", "scan", "-q", str(small)]
    code, out, _ = _run(app_for(argv), argv)
    assert code == 0 and out.startswith("verdict: ALLOW")
