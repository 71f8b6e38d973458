"""The ONNX, safetensors, GGUF and chat-template corpus: benign entries carry nothing above low, every rule file of this group is exercised."""

from __future__ import annotations

import pytest
import yaml

from scanner.findings import Severity
from scanner.resources import signatures_dir
from tests.harness import FIXTURES, manifest_entries, rule_ids, scan

MANIFEST = manifest_entries("gguf", "onnx", "safetensors", "chat-templates")
BENIGN = [e for e in MANIFEST if e["expect"] == "allow"]


@pytest.mark.parametrize("entry", BENIGN, ids=[e["path"] for e in BENIGN])
def test_benign_fixtures_have_no_finding_at_or_above_medium(entry) -> None:
    report = scan(FIXTURES / entry["path"])
    loud = [
        f"{f.rule_id}:{f.message}"
        for f in report.all_findings()
        if f.severity >= Severity.MEDIUM and not f.rule_id.startswith("JSON-")
    ]
    assert not loud
    assert all(fr.coverage.value == "full" for fr in report.files)


def test_every_rule_of_this_group_is_proved_by_a_fixture_or_test() -> None:
    ids = set()
    for name in ("onnx.yaml", "safetensors.yaml", "gguf.yaml", "template.yaml"):
        ids |= {r["id"] for r in yaml.safe_load((signatures_dir() / "rules" / name).read_text())["rules"]}
    in_manifest = {r for e in MANIFEST for r in e["rules"]}
    covered_by_unit_tests = {
        "ONNX-EXTENSIONS-OP",
        "ONNX-METADATA-LARGE",
        "TEMPLATE-INVALID",
        "TEMPLATE-OVERSIZE",
        "TEMPLATE-UNLISTED",
    }
    assert ids - in_manifest <= covered_by_unit_tests, sorted(ids - in_manifest)


def test_malicious_fixtures_name_their_rule_in_the_report() -> None:
    report = scan(FIXTURES / "gguf" / "ssti_template.gguf")
    f = next(f for f in report.all_findings() if f.rule_id == "TEMPLATE-SSTI")
    assert f.severity is Severity.CRITICAL and f.evidence["key"] == "tokenizer.chat_template"
    assert "TEMPLATE-SSTI" in rule_ids(report) and report.verdict.decision.value == "block"
