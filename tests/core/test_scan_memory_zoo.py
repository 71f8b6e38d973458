"""``modelward scan`` of a zoo of many small files: its peak RSS grows by what its listing costs, not by what its
results cost (issue: 161 MB at 100k files, over the 150 MB goal). Past ``judge.STORE_AT`` files each finished
result is judged on its own into an on-disk ``ReportStore``, as ``audit`` does, and the results a repository
check loads (one per shell script here) are dropped once the check lets go of them."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

from tests import bombs

MODELWARD = str(Path(sys.executable).with_name("modelward"))
EVIL = b"cos\nsystem\n(S'echo modelward'\ntR."


def _zoo(root: Path, n: int) -> Path:
    """``n`` files: two small benign pickles for each shell script (a repository check loads every script's
    result and adds a finding to it), one malicious pickle."""
    for i in range(n):
        d = root / f"team{i % 40:02d}" / f"project{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        if i % 3 == 2:
            (d / f"run_{i}.sh").write_text(f"echo {i}\n")
        else:
            (d / f"model_{i}.pkl").write_bytes(pickle.dumps({"coef": [i, i / 7], "id": i}, protocol=4))
    (root / "team00" / "project0" / "model_0.pkl").write_bytes(EVIL)
    return root


@pytest.mark.slow
def test_scan_peak_grows_by_the_listing_not_the_results(tmp_path: Path) -> None:
    """3,000 → 30,000 files, JSON report. The code before held every result until the verdict and every shell
    script's result once the repository check had loaded it: it grew 28 MB (47 → 75 MB); now 13 MB (51 → 64),
    the listing (~0.35 KB a file) and SQLite's page caches filling up."""
    if not Path(MODELWARD).exists():
        pytest.skip("modelward entry point not installed beside the interpreter")
    peaks = []
    for n in (3_000, 30_000):
        zoo, out = _zoo(tmp_path / f"zoo{n}", n), tmp_path / f"{n}.json"
        measured = bombs.cli_peak(["scan", str(zoo), "-f", "json", "-o", str(out)], MODELWARD)
        if measured is None:
            pytest.skip("GNU time not installed")
        code, peak, wall = measured
        assert code == 1, code  # the malicious pickle blocks
        report = json.loads(out.read_text())
        assert len(report["files"]) == len(report["verdict"]["file_decisions"]) == n
        assert sum(d == "block" for d in report["verdict"]["file_decisions"].values()) == 1
        assert (
            sum(any(f["rule_id"] == "HF-SHELL-SCRIPT" for f in fr["findings"]) for fr in report["files"])
            == n // 3
        )
        peaks.append(peak >> 20)
    assert peaks[1] - peaks[0] < 21, peaks
