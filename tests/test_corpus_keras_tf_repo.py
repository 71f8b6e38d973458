"""The Keras, TensorFlow and Hugging Face repository corpus: every rule fires on its fixture, benign files stay clean."""

from __future__ import annotations

import pytest

from scanner.findings import Severity
from tests.harness import CANARY, FIXTURES, manifest_entries, rule_ids, scan

ENTRIES = manifest_entries("keras", "tensorflow", "hf-repo")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_fixture(entry: dict) -> None:
    report = scan(FIXTURES / entry["path"])
    found = rule_ids(report)
    assert set(entry["rules"]) <= found, (entry["path"], sorted(found))
    assert report.verdict.decision.value == entry["expect"], [
        (f.severity.value, f.rule_id, f.message[:100]) for f in report.all_findings()
    ]
    worst = max((f.severity for f in report.all_findings()), default=None, key=lambda s: s.rank)
    if entry["expect"] == "allow":
        assert worst is None or worst < Severity.MEDIUM
    if entry["expect"] == "warn":
        assert worst is Severity.MEDIUM
    assert not CANARY.exists()


def test_corpus_covers_every_rule_of_this_group() -> None:
    from scanner.rules import get_rule_db

    db = get_rule_db()
    mine = {r for r in db.rules if r.startswith(("KERAS-", "TF-", "TFLITE-", "HF-", "PY-"))}
    covered = {r for e in ENTRIES for r in e["rules"]}
    # rules exercised by unit tests instead of fixtures
    unit_only = {
        "KERAS-CONFIG-INVALID",
        "KERAS-HDF5-EXTERNAL",
        "KERAS-HDF5-UNREADABLE",
        "TF-NETWORK-OP",
        "TF-PROTOBUF-INVALID",
        "TFLITE-INVALID",
        "HF-REQUIREMENTS",
        "HF-CONFIG-INVALID",
        "PY-UNPARSEABLE",
        "PY-NETWORK-CALL",
        "TF-CHECKPOINT-DATA",
        "TF-JS-WEIGHTS-PATH",  # tests/formats/tensorflow/test_redteam9_tfjs_weights.py
        "PY-LOAD-TIME-SIDE-EFFECT",
    }
    assert mine - covered - unit_only == set()
