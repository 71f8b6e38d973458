"""Start-up (issue #13, seventh pass): a pickle that imports nothing never looks up a gadget or constraint, so
its scan builds neither table (``stream.LazyTable``); a pickle with a global still does."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.core.test_startup import _modules


@pytest.mark.slow
def test_a_plain_data_pickle_scan_loads_no_gadget_or_constraint_table(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stderr
    assert "scanner.formats.pickle.stream" in loaded  # the pickle walk ran
    assert "scanner.formats.pickle.table_cache" not in loaded


@pytest.mark.slow
def test_a_pickle_with_a_global_still_loads_the_tables(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"when": __import__("datetime").date(2026, 1, 2)}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stderr
    assert "scanner.formats.pickle.table_cache" in loaded
