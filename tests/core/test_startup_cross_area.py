"""Start-up costs whose fix lives outside the start-up area (issue #13, sixth pass; fixed in the seventh): a
local pickle scan runs the repository checks without importing what only other files need."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.core.test_startup import _modules


@pytest.mark.slow
def test_a_local_pickle_scan_imports_no_configparser(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2]}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stderr
    assert "scanner.repo.hf_repo" in loaded  # the repository checks ran
    assert "configparser" not in loaded
