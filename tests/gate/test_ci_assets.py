"""The CI conventions we ship must point at commands that exist."""

from __future__ import annotations

import yaml

from scanner.cli import app
from tests.harness import REPO


def _commands() -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands}


def test_pre_commit_hooks_run_real_commands():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"modelward-check", "modelward-scan"}
    for h in hooks:
        prog, sub = h["entry"].split()[:2]
        assert prog == "modelward" and sub in _commands()
        assert h["language"] == "python"


def test_action_runs_check_and_propagates_exit_code():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    gate = next(s for s in steps if s.get("id") == "gate")
    assert "args=(check" in gate["run"] and "--format sarif" in gate["run"]
    assert steps[-1]["run"].strip() == "exit ${{ steps.gate.outputs.exit-code }}"
    assert "check" in _commands()


def test_ci_runs_the_readme_test_command_on_every_core():
    """.ci/run runs README's "Run the tests" command verbatim, and that command spreads the suite over the cores."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("Run the tests:", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0].strip()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert block in ci
    assert "-m pytest" in block and " -n " in block and "-m " not in block.split("pytest", 1)[1]
