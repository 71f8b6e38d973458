"""Every fixture gets the verdict its manifest promises, with the rules that prove the payload was understood.

Manifests are written by fixtures/generate.py; malicious fixtures carry harmless
payloads that would only create the canary file, which must never appear.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import CANARY, FIXTURES, rule_ids, scan


def _entries() -> list[tuple[str, Path, dict]]:
    out = []
    for manifest in sorted(FIXTURES.glob("*/manifest.json")):
        doc = json.loads(manifest.read_text())
        for e in doc["files"]:
            out.append((f"{doc['group']}/{e['path']}", manifest.parent / e["path"], e))
    return out


ENTRIES = _entries()


@pytest.mark.parametrize(("name", "path", "entry"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_fixture_verdict(name: str, path: Path, entry: dict) -> None:
    report = scan(path)
    found = rule_ids(report)
    missing = set(entry.get("rules", [])) - found
    verdict = report.verdict.decision.value
    detail = sorted(f"{f.severity.value}:{f.rule_id}:{f.message[:80]}" for f in report.all_findings())
    assert not missing, f"{name}: expected rules {sorted(missing)} not found; got {detail}"
    assert verdict == entry["expect"], f"{name}: expected {entry['expect']}, got {verdict}; findings {detail}"
    assert not CANARY.exists(), f"{name}: scanning executed the payload"


def test_corpus_size() -> None:
    groups: dict[str, dict[str, int]] = {}
    for name, _path, entry in ENTRIES:
        g = groups.setdefault(name.split("/")[0], {"block": 0, "allow": 0, "warn": 0})
        g[entry["expect"]] += 1
    pickle = groups.get("pickle", {"block": 0, "allow": 0})
    assert pickle["block"] >= 40, groups
    assert pickle["allow"] >= 25, groups
