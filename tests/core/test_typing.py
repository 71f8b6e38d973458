"""scanner/ stays type-clean: mypy (configured in pyproject.toml) reports no error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.harness import REPO


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed (test extra)")
def test_mypy_reports_no_error() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "scanner"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, res.stdout[-4000:]
