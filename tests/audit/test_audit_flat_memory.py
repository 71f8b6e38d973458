"""A zoo target's results wait on disk for the repository checks (``scanner.repo.results.ResultTable``), its
bookkeeping too (``audit.runner._Ledger``), and its listing is slotted ``Artifact`` objects without closures: an
audit's peak memory no longer grows with the files of one target by what their results cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit.report_golden import EVIL

BIN = Path(sys.executable).with_name("modelward")
TIME = Path("/usr/bin/time")


def _zoo(root: Path, n: int) -> Path:
    """``n`` blocked pickles (each result carries findings and evidence: the heaviest common result)."""
    for i in range(n):
        d = root / f"team{i % 20:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i}.pkl").write_bytes(EVIL)
    return root


def _peak_mb(cmd: list[str]) -> int:
    res = subprocess.run([str(TIME), "-v", *cmd], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr[-2000:]  # every file blocks
    line = next(x for x in res.stderr.splitlines() if "Maximum resident set size" in x)
    return int(line.split(":")[1]) // 1024


@pytest.mark.slow
@pytest.mark.skipif(not TIME.exists() or not BIN.exists(), reason="needs GNU time and the modelward script")
def test_one_target_of_many_files_does_not_hold_its_results(tmp_path: Path) -> None:
    """500 → 6,000 files in one target, JSON report: the code before (every result of the target in memory
    until the repository checks had run, a closure per listed file, a bookkeeping object per file) grew
    19 MB (56 → 76 MB); now 8-9 MB, what SQLite's page caches fill up to (they stop at ~9 MiB in all)."""
    peaks = []
    for n in (500, 6000):
        zoo = _zoo(tmp_path / f"zoo{n}", n)
        db, out = tmp_path / f"{n}.sqlite", tmp_path / f"{n}.json"
        peaks.append(
            _peak_mb(
                [str(BIN), "audit", str(zoo), "--db", str(db), "-p", "default", "-f", "json", "-o", str(out)]
            )
        )
        report = json.loads(out.read_text())
        assert len(report["files"]) == n and report["verdict"]["decision"] == "block"
    assert peaks[1] - peaks[0] < 14, peaks
