"""The rule database is data; these checks keep code and data from drifting apart."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from scanner.rules import RuleDatabaseError, load_rule_db
from tests.harness import REPO

ID_IN_CODE = re.compile(
    r"""(?:\.add|\.finding|limit_rule|rule_id\s*=)\(?\s*["']([A-Z][A-Z0-9]+(?:-[A-Z0-9]+)+)["']"""
)


def test_every_rule_is_complete():
    db = load_rule_db()
    assert db.version
    for r in db.rules.values():
        assert r.title and r.rationale, r.id
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)+", r.id), r.id


def test_every_rule_id_used_in_code_exists():
    db = load_rule_db()
    missing = {}
    for py in (REPO / "scanner").rglob("*.py"):
        for m in ID_IN_CODE.finditer(py.read_text()):
            if m.group(1) not in db.rules:
                missing.setdefault(m.group(1), str(py.relative_to(REPO)))
    assert not missing, f"rule ids used in code but absent from signatures/: {missing}"


def test_profiles_and_denylist_load():
    db = load_rule_db()
    for p in db.profiles.values():
        assert p.exact or p.patterns, p.name


def _copy_db(tmp_path: Path) -> Path:
    dst = tmp_path / "sig"
    shutil.copytree(REPO / "signatures", dst)
    return dst


def test_malformed_rule_file_names_file_and_line(tmp_path):
    root = _copy_db(tmp_path)
    bad = root / "rules" / "zz.yaml"
    bad.write_text("rules:\n  - id: X-Y\n    severity: [\n")
    with pytest.raises(RuleDatabaseError) as e:
        load_rule_db(root)
    assert "zz.yaml:" in str(e.value)


def test_unknown_severity_is_rejected(tmp_path):
    root = _copy_db(tmp_path)
    (root / "rules" / "zz.yaml").write_text(
        "rules:\n  - id: X-Y\n    severity: apocalyptic\n    title: t\n    rationale: r\n"
    )
    with pytest.raises(RuleDatabaseError) as e:
        load_rule_db(root)
    assert "zz.yaml" in str(e.value)


def test_duplicate_rule_id_is_rejected(tmp_path):
    root = _copy_db(tmp_path)
    (root / "rules" / "zz.yaml").write_text(
        "rules:\n  - id: FILE-EMPTY\n    severity: low\n    title: t\n    rationale: r\n"
    )
    with pytest.raises(RuleDatabaseError, match="duplicate rule id FILE-EMPTY"):
        load_rule_db(root)


def test_new_rule_needs_no_code_change(tmp_path):
    root = _copy_db(tmp_path)
    (root / "rules" / "zz.yaml").write_text(
        "rules:\n  - id: TEAM-CUSTOM\n    severity: low\n    title: t\n    rationale: r\n"
    )
    db = load_rule_db(root)
    f = db.finding("TEAM-CUSTOM", "m", "p")
    assert f.severity.value == "low"


def test_published_rule_catalog_is_current(cli):
    res = cli("rules", "--format", "markdown")
    assert res.exit_code == 0
    assert (REPO / "docs" / "rules.md").read_text() == res.stdout, (
        "regenerate docs/rules.md: modelward rules -f markdown"
    )


def test_rules_command_filters_by_severity(cli):
    import json

    everything = json.loads(cli("rules", "--format", "json").stdout)["rules"]
    critical = cli("rules", "--min-severity", "critical").stdout
    assert all(r["id"] in critical for r in everything if r["severity"] == "critical")
    assert not any(f"{r['id']} " in critical for r in everything if r["severity"] == "info")
    assert cli("rules", "--min-severity", "apocalyptic").exit_code == 2
