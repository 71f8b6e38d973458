"""The in-project fuzz harness: saved crash inputs replay cleanly, and a short coverage-guided run finds nothing.

The long run is ``scripts/fuzz.py`` (see its docstring); crashes it finds go to ``tests/fuzz/regressions/``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import targets as t

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", sorted(t.TARGETS))
def test_every_target_has_seeds_from_fixtures(target: str) -> None:
    got = t.seeds(target)
    assert len(got) >= 2, f"{target}: too few seeds"
    for s in got[:10]:
        t.judge(target, s)


INPUTS = t.regression_inputs()


@pytest.mark.parametrize("target,path", INPUTS, ids=[f"{a}/{p.name}" for a, p in INPUTS])
def test_saved_regression_inputs_yield_a_bounded_report(target: str, path: Path) -> None:
    fr = t.replay(target, path.read_bytes())
    if fr.coverage.value != "full":  # what could not be judged must fail closed
        assert fr.max_severity is not None and fr.max_severity.value in ("high", "critical"), fr.findings


def test_regression_corpus_is_not_empty() -> None:
    assert len(INPUTS) >= 5, "tests/fuzz/regressions/ lost its inputs"


def test_invariant_catches_an_escaping_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself must be able to fail: an exception out of inspection is a crash."""

    def boom(*a: object, **k: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(t, "inspect_bytes", boom)
    with pytest.raises(t.InvariantBroken, match="escaped inspection"):
        t.judge("pickle", b"\x80\x02N.")


@pytest.mark.fuzz
@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None, reason="atheris not installed (pip install atheris)"
)
def test_short_coverage_guided_run_finds_no_crash(tmp_path: Path) -> None:
    crashes = tmp_path / "crashes"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            "all",
            "--corpus",
            str(tmp_path / "corpus"),
            "--seeds",
            "4",
            "-max_total_time=3",
            "-max_len=16384",
            "-rss_limit_mb=1024",  # the fuzzer process (instrumented); product memory bounds are tested on bombs
            "-timeout=30",
            f"-artifact_prefix={crashes}/",
            "-seed=1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = sorted(crashes.glob("*")) if crashes.exists() else []
    assert proc.returncode == 0 and not found, (
        f"fuzzing found a crash: save {found} under tests/fuzz/regressions/<target>/ and fix it\n"
        + proc.stderr[-3000:]
    )
    assert "DONE" in proc.stderr and "cov:" in proc.stderr
