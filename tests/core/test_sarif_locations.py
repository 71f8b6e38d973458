"""SARIF that GitHub code scanning can place: repository-relative paths that exist, rule help links."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest

from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import load_policy
from scanner.report.sarif import render_sarif

REPO = Path(__file__).resolve().parents[2]
EVIL = b"cos\nsystem\n(S'true'\ntR."


def _scan(*targets: str):
    report = scan_targets(list(targets), ScanOptions())
    report.verdict = decide(report, load_policy("default"))
    return report


@pytest.mark.parametrize("layout", ["folder", "file", "two-targets"])
def test_local_results_point_at_existing_repository_paths(tmp_path: Path, monkeypatch, layout: str) -> None:
    models = tmp_path / "models" / "team"
    models.mkdir(parents=True)
    (models / "evil.pkl").write_bytes(EVIL)
    (models / "ok.pkl").write_bytes(pickle.dumps([1]))
    monkeypatch.chdir(tmp_path)
    targets = {
        "folder": ["models"],
        "file": ["models/team/evil.pkl"],
        "two-targets": [str(models / "evil.pkl"), "models/team/ok.pkl"],
    }[layout]
    doc = json.loads(render_sarif(_scan(*targets), root=tmp_path))
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    results = [r for r in run["results"] if r["ruleId"].startswith("PICKLE")]
    assert results
    for r in results:
        art = r["locations"][0]["physicalLocation"]["artifactLocation"]
        assert art["uriBaseId"] == "%SRCROOT%"
        assert art["uri"] == "models/team/evil.pkl"
        assert (tmp_path / art["uri"]).is_file()


def test_remote_model_points_at_the_declaring_line(tmp_path: Path) -> None:
    report = _scan(str(_write(tmp_path / "evil.pkl", EVIL)))
    for fr in report.files:
        fr.source = "hf://acme/model@main"
    doc = json.loads(
        render_sarif(report, anchors={"hf://acme/model@main": ("modelward.toml", 7)}, root=tmp_path)
    )
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "modelward.toml", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 7}


def test_every_rule_links_to_its_section_of_the_catalog(tmp_path: Path) -> None:
    doc = json.loads(render_sarif(_scan(str(_write(tmp_path / "evil.pkl", EVIL))), root=tmp_path))
    headings = {
        ln[3:].strip().lower()
        for ln in (REPO / "docs" / "rules.md").read_text().splitlines()
        if ln.startswith("## ")
    }
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules
    for rule in rules:
        anchor = re.search(r"docs/rules\.md#(.+)$", rule["helpUri"]).group(1)
        assert anchor in headings
        assert rule["help"]["markdown"].startswith("**")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
