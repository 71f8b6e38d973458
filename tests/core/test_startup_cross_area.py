"""Start-up costs whose fix lives outside the start-up area (issue #13, sixth pass): strict xfails that turn
into failures when the fix lands, so the marker is removed with it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.core.test_startup import _modules


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="scanner/repo/hf_repo.py _check_entry_points imports configparser before it looks for a "
    "*.dist-info/entry_points.txt (8 M instructions of a local pickle scan): import it inside the loop",
)
def test_a_local_pickle_scan_imports_no_configparser(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2]}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stderr
    assert "scanner.repo.hf_repo" in loaded  # the repository checks ran
    assert "configparser" not in loaded
