"""The rule database in the CI gate: the lock records its version, a policy can require a minimum, and
`check --rules-dir` says which verdicts a candidate database would change."""

from __future__ import annotations

import hashlib
import shutil
import textwrap
from pathlib import Path

from scanner.gate.lockfile import read_lock
from scanner.resources import packaged_signatures_dir
from scanner.rules import get_rule_db

EVIL_LOOKING = b"(dp0\nS'a'\np1\nI1\ns."  # a benign dict pickle, until a database marks its digest known-bad


def _project(tmp_path: Path, policy_extra: str = "") -> Path:
    proj = tmp_path / "proj"
    (proj / "models" / "m").mkdir(parents=True)
    (proj / "models" / "m" / "weights.pkl").write_bytes(EVIL_LOOKING)
    (proj / "p.yaml").write_text("version: 1\nextends: default\n" + policy_extra)
    (proj / "modelward.toml").write_text('policy = "p.yaml"\n[models]\nm = "models/m"\n')
    return proj


def test_lock_records_the_rule_database_version(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    proj = _project(tmp_path)
    assert cli("lock", "--project", str(proj)).exit_code == 0
    assert read_lock(proj / "modelward.lock").rules_version == get_rule_db().version


def test_policy_minimum_rules_version_blocks_an_old_database(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    proj = _project(tmp_path, "rules:\n  min_version: '9999.1.1.1'\n")
    res = cli("scan", str(proj / "models" / "m"), "--policy", str(proj / "p.yaml"))
    assert res.exit_code == 1 and "older than the policy's minimum 9999.1.1.1" in res.stdout + res.output
    (proj / "p.yaml").write_text("version: 1\nextends: default\nrules:\n  min_version: '2000.1.1'\n")
    assert cli("scan", str(proj / "models" / "m"), "--policy", str(proj / "p.yaml")).exit_code == 0


def test_check_says_what_a_candidate_database_would_change(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    proj = _project(tmp_path)
    assert cli("lock", "--project", str(proj)).exit_code == 0
    candidate = tmp_path / "candidate"
    shutil.copytree(
        packaged_signatures_dir(), candidate, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    (candidate / "VERSION").write_text("2099.1.1.1\n")
    (candidate / "known_bad_sha256.yaml").write_text(
        textwrap.dedent(f"""
        digests:
          - {{sha256: {hashlib.sha256(EVIL_LOOKING).hexdigest()}, name: sample-1, reference: https://example.org/a}}
    """)
    )
    res = cli("check", "--project", str(proj), "--rules-dir", str(candidate))
    assert res.exit_code == 0, res.output  # the active database decides the exit code
    assert "2099.1.1.1 (candidate)" in res.stderr and "1 verdict(s) would change" in res.stderr
    assert "m/weights.pkl: allow -> block" in res.stderr
