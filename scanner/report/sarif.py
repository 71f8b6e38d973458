"""SARIF 2.1.0 for code-scanning UIs.

Container members have no URI of their own, so a result points at the top-level
file and names the member in a logical location and in its properties.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from .. import __version__
from ..findings import Coverage, Finding, ScanReport, Severity
from ..rules import get_rule_db

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.8",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(path: str) -> str:
    return quote(path.split("!", 1)[0], safe="/:@-._~")


def _rule_descriptor(rule_id: str) -> dict:
    db = get_rule_db()
    r = db.rules.get(rule_id)
    if r is None:
        return {"id": rule_id, "shortDescription": {"text": rule_id}}
    tags = ["security"] + [t for t in (r.tags.failure_mode, r.tags.atlas) if t] + list(r.tags.cia)
    desc: dict = {
        "id": r.id,
        "name": "".join(p.capitalize() for p in r.id.lower().split("-")),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rationale},
        "help": {"text": r.rationale + ("\nReferences: " + ", ".join(r.references) if r.references else "")},
        "defaultConfiguration": {"level": _LEVEL[r.severity]},
        "properties": {"tags": tags, "security-severity": _SECURITY_SEVERITY[r.severity], "precision": "high"},
    }
    return desc


def _result(f: Finding, rule_index: int) -> dict:
    res: dict = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": _uri(f.path)}},
                "logicalLocations": [{"fullyQualifiedName": f.path, "kind": "member" if "!" in f.path else "module"}],
            }
        ],
        "partialFingerprints": {
            "modelward/v1": hashlib.sha256(f"{f.rule_id}|{f.path}|{f.message}".encode()).hexdigest()[:32]
        },
        "properties": {"severity": f.severity.value, "security-severity": _SECURITY_SEVERITY[f.severity]},
    }
    if f.offset is not None:
        res["properties"]["offset"] = f.offset
    if f.opcode_index is not None:
        res["properties"]["opcodeIndex"] = f.opcode_index
    if f.evidence:
        res["properties"]["evidence"] = f.evidence
    return res


def render_sarif(report: ScanReport) -> str:
    findings = report.all_findings()
    rule_ids = sorted({f.rule_id for f in findings})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{fr.path}: not fully analyzed ({fr.coverage.value}): {'; '.join(fr.coverage_notes)}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(fr.path)}}}],
        }
        for fr in report.files
        if fr.coverage is not Coverage.FULL
    ] + [{"level": "error", "message": {"text": e}} for e in report.errors]
    run: dict = {
        "tool": {
            "driver": {
                "name": "modelward",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://github.com/modelward/modelward",
                "rules": [_rule_descriptor(r) for r in rule_ids],
                "properties": {"rulesVersion": report.rules_version},
            }
        },
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": notifications,
            }
        ],
        "artifacts": [
            {
                "location": {"uri": _uri(fr.path)},
                "length": fr.size,
                **({"hashes": {"sha-256": fr.sha256}} if fr.sha256 else {}),
            }
            for fr in report.files
            if "!" not in fr.path
        ],
        "results": [_result(f, index[f.rule_id]) for f in findings],
        "properties": {"verdict": report.verdict.decision.value if report.verdict else None},
    }
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }
    return json.dumps(doc, indent=2) + "\n"
