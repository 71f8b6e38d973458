"""The shell experience: version/help flags, quiet and collapsed output, errors that are not verdicts."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from scanner import __version__
from scanner.cli import app

runner = CliRunner()


def _benign(tmp: Path, n: int) -> Path:
    d = tmp / "zoo"
    d.mkdir()
    for i in range(n):
        (d / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [i, i + 1]}, protocol=4))
    return d


def test_version_and_short_help() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"modelward {__version__}"
    res = runner.invoke(app, ["scan", "-h"])
    assert res.exit_code == 0
    assert "--only-findings" in res.stdout and "--quiet" in res.stdout
    assert "<bool>" not in res.stdout and "╭" not in res.stdout  # plain help, no boxes, no type metavars


def test_missing_path_is_one_error_line_without_verdict(tmp_path: Path) -> None:
    res = runner.invoke(app, ["scan", str(tmp_path / "typo.pkl")])
    assert res.exit_code == 2
    assert "verdict" not in res.output.lower() and "files" not in res.stdout
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "typo.pkl" in errors[0]


def test_policy_typo_suggests_the_shipped_name(tmp_path: Path) -> None:
    d = _benign(tmp_path, 1)
    res = runner.invoke(app, ["scan", "--policy", "stricct", str(d)])
    assert res.exit_code == 2
    assert "did you mean 'strict'" in res.output and "default" in res.output


def test_only_findings_collapses_clean_files(tmp_path: Path) -> None:
    d = _benign(tmp_path, 30)
    (d / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    res = runner.invoke(app, ["scan", "--only-findings", str(d)])
    assert res.exit_code == 1
    assert "evil.pkl" in res.stdout and "m3.pkl" not in res.stdout
    assert "30 more files allowed with no findings" in res.stdout


def test_quiet_prints_the_verdict_line_only(tmp_path: Path) -> None:
    d = _benign(tmp_path, 5)
    res = runner.invoke(app, ["scan", "-q", str(d)])
    assert res.exit_code == 0
    assert res.stdout.strip().splitlines() == ["verdict: ALLOW (policy default), 5 files"]


def test_no_color_and_no_wrapping_when_piped(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 6)
    deep.mkdir()
    (deep / "evil.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    (deep / "ok.pkl").write_bytes(pickle.dumps([1, 2]))
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from scanner.cli import main; main()",
            "scan",
            str(deep / "evil.pkl"),
            str(deep / "ok.pkl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert res.returncode == 1
    assert "\x1b[" not in res.stdout
    line = next(ln for ln in res.stdout.splitlines() if "evil.pkl" in ln)
    assert str(deep) in line and len(line) > 120  # one line, not wrapped at the terminal width
