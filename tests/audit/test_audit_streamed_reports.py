"""Audit reports are streamed from a temporary store: same content as before, bounded memory, whole-or-nothing."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.audit import identity
from scanner.cli import app
from scanner.findings import Decision, FileResult
from scanner.report.store import ReportStore
from tests.audit.report_golden import EVIL, FORMATS, run_all

GOLDEN = Path(__file__).parent / "data" / "golden"
BIN = Path(sys.executable).with_name("modelward")
TIME = Path("/usr/bin/time")


def test_every_format_is_what_modelward_wrote_before_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden files were written by the in-memory renderers (before this change) for the same two runs."""
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 10**18)  # every file racy: run 2 re-inspects, as then
    got = run_all(tmp_path)
    assert sorted(got) == sorted(p.name for p in GOLDEN.iterdir())
    for name, text in got.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), name


def _zoo(root: Path, n: int, evil: int = 1) -> Path:
    for i in range(n):
        d = root / f"team{i % 20:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [i, i / 7]}, protocol=4))
    for k in range(evil):
        (root / "team00" / f"m{k * 20}.pkl").write_bytes(EVIL)
    return root


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_blocked_file_among_many_exits_1(tmp_path: Path, fmt: str) -> None:
    zoo, out = _zoo(tmp_path / "zoo", 300), tmp_path / f"report.{fmt}"
    args = ["audit", str(zoo), "--db", str(tmp_path / "i.sqlite"), "--policy", "default", "-f", fmt]
    res = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert res.exit_code == 1, res.output
    if fmt == "json":
        doc = json.loads(out.read_text())
        decisions = doc["verdict"]["file_decisions"]
        assert doc["verdict"]["decision"] == "block" and len(doc["files"]) == len(decisions) == 300
        assert [p for p, d in decisions.items() if d == "block"] == [f"{zoo}/team00/m0.pkl"]
        assert len(doc["audit"]["new_paths"]) == 300
    res = CliRunner().invoke(app, [*args[:-2], "-f", fmt, "-o", str(out), "--policy", "audit"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("existing", [False, True])
def test_a_render_that_fails_half_way_leaves_no_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    zoo, out = _zoo(tmp_path / "zoo", 40), tmp_path / "report.json"
    if existing:
        out.write_text("the previous report\n")
    real = ReportStore.files

    def disk_full(self: ReportStore) -> Iterator[tuple[FileResult, Decision | None]]:
        rows = real(self)
        yield next(rows)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ReportStore, "files", disk_full)
    res = CliRunner().invoke(
        app, ["audit", str(zoo), "--db", str(tmp_path / "i.sqlite"), "-f", "json", "-o", str(out)]
    )
    assert res.exit_code == 2 and "cannot write report: No space left on device" in res.output
    assert "Traceback" not in res.output
    assert (out.read_text() == "the previous report\n") if existing else not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def _peak_mb(cmd: list[str]) -> int:
    res = subprocess.run([str(TIME), "-v", *cmd], capture_output=True, text=True, timeout=300)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    line = next(x for x in res.stderr.splitlines() if "Maximum resident set size" in x)
    return int(line.split(":")[1]) // 1024


@pytest.mark.slow
@pytest.mark.skipif(not TIME.exists() or not BIN.exists(), reason="needs GNU time and the modelward script")
def test_peak_memory_hardly_grows_with_the_zoo(tmp_path: Path) -> None:
    """400 → 4,000 files: the old code's peak grew 27 MB (every result and the whole CycloneDX text in memory,
    80 MB at 4,000 files); streamed from the store it grows by what one target's listing and results cost."""
    peaks = []
    for n in (400, 4000):
        zoo = _zoo(tmp_path / f"zoo{n}", n)
        db, out = tmp_path / f"{n}.sqlite", tmp_path / f"{n}.cdx.json"
        peaks.append(
            _peak_mb([str(BIN), "audit", str(zoo), "--db", str(db), "-f", "cyclonedx", "-o", str(out)])
        )
        assert len(json.loads(out.read_text())["components"]) == n
        shutil.rmtree(zoo)
    assert peaks[1] - peaks[0] < 18, peaks
