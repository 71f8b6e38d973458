"""The code stays lint-clean and formatted: ``ruff check`` and ``ruff format --check`` (configured in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.harness import REPO

PATHS = ["scanner", "tests", "benchmarks", "fixtures"]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None, reason="ruff not installed (test extra)"
)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_reports_nothing(command: list[str]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
