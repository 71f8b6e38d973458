"""The composite action and pre-commit hook behave as CI users expect (inputs, caches, forks, triggers)."""

from __future__ import annotations

import re

import yaml

from tests.harness import REPO


def _action() -> dict:
    return yaml.safe_load((REPO / "action.yml").read_text())


def test_action_inputs_cover_version_args_and_working_directory():
    inputs = _action()["inputs"]
    assert {"version", "args", "working-directory", "python-version", "project", "policy"} <= set(inputs)
    steps = _action()["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert "~/.cache/huggingface" in cache["with"]["path"] and "~/.cache/modelward" in cache["with"]["path"]
    install = next(s for s in steps if s.get("name") == "Install modelward")
    assert "modelward==$MW_VERSION" in install["run"]  # a released version, not the action's checkout
    gate = next(s for s in steps if s.get("id") == "gate")
    assert gate["working-directory"] == "${{ inputs.working-directory }}" and "MW_ARGS" in gate["run"]


def test_sarif_upload_is_skipped_for_fork_pull_requests():
    upload = next(
        s for s in _action()["runs"]["steps"] if s.get("uses", "").startswith("github/codeql-action")
    )
    assert "head.repo.fork" in upload["if"]
    assert "security-events: write" in _action()["inputs"]["upload-sarif"]["description"]


def test_check_hook_runs_when_a_pinned_model_file_changes():
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    pattern = re.compile(hooks["modelward-check"]["files"])
    for changed in (
        "modelward.lock",
        "sub/pyproject.toml",
        "models/classifier.pkl",
        "weights/model.safetensors",
    ):
        assert pattern.search(changed), changed
    assert not pattern.search("src/app.py")
