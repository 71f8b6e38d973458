"""An installed wheel carries the rule database and the shipped policies (they live outside the package)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.harness import REPO


@pytest.mark.slow
def test_wheel_ships_signatures_and_policies(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(REPO), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("modelward-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "scanner/_data/signatures/VERSION",
        "scanner/_data/signatures/rules/pickle.yaml",
        "scanner/_data/signatures/pickle/profiles/torch-weights-only.yaml",
        "scanner/_data/policies/default.yaml",
        "scanner/_data/policies/policy.schema.json",
        "scanner/cli.py",
        "scanner/formats/pickle/walker.py",
    ):
        assert required in names, required
