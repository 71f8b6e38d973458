"""SARIF 2.1.0 for code-scanning UIs.

GitHub places a result only when its location is a path that exists in the
repository, relative to ``%SRCROOT%``: a local file's real path, relative to the
working directory. A remote model has no file in the repository, so it points at
the line of the project file that declares or pins it (``anchors``, given by
``check``), else at nothing but its logical location. Container members have no
URI of their own: a result points at the top-level file and names the member in
a logical location and in its properties.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from .. import __version__
from ..findings import Coverage, Finding, ScanReport, Severity
from ..rules import get_rule_db
from .json_report import write_list
from .view import MemoryView, ReportView

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


INFORMATION_URI = "https://github.com/modelward/modelward"
RULES_DOC = INFORMATION_URI + "/blob/main/docs/rules.md"
SRCROOT = "%SRCROOT%"

Anchor = tuple[str, int]  # (repository-relative file, 1-based line) that declares a remote model


def _uri(path: str) -> str:
    return quote(path.split("!", 1)[0], safe="/:@-._~")


class _Locator:
    """Maps a report path to a SARIF artifact location GitHub can place."""

    def __init__(self, view: ReportView, anchors: dict[str, Anchor] | None, root: Path) -> None:
        self.root = root
        self.anchors = anchors or {}
        self.source_of = view.source_of

    def _local_file(self, path: str) -> Path | None:
        top = path.split("!", 1)[0]
        src = self.source_of(top)
        if src is None or not src.startswith("file://"):
            candidate = Path(top)
            return candidate.resolve() if candidate.exists() else None
        base = Path(src[len("file://") :])
        if base.is_file():
            return base
        for candidate in (
            base / top,
            base.parent / top,
            base / top.split("/", 1)[-1],
        ):  # check prefixes model names
            if candidate.exists():
                return candidate
        return None

    def physical(self, path: str) -> dict:
        top = path.split("!", 1)[0]
        src = self.source_of(top) or ""
        anchor = self.anchors.get(src) or self.anchors.get(top)
        if anchor is not None:
            return {
                "artifactLocation": {"uri": _uri(anchor[0]), "uriBaseId": SRCROOT},
                "region": {"startLine": max(1, anchor[1])},
            }
        local = self._local_file(path)
        if local is not None:
            try:
                rel = local.resolve().relative_to(self.root)
                return {"artifactLocation": {"uri": _uri(rel.as_posix()), "uriBaseId": SRCROOT}}
            except ValueError:
                return {"artifactLocation": {"uri": local.resolve().as_uri()}}
        return {"artifactLocation": {"uri": _uri(path)}}


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
        "help": {
            "text": r.rationale + ("\nReferences: " + ", ".join(r.references) if r.references else ""),
            "markdown": f"**{r.severity.value}** — {r.title}\n\n{r.rationale}"
            + ("\n\nReferences: " + ", ".join(f"<{u}>" for u in r.references) if r.references else "")
            + f"\n\n[Rule documentation]({RULES_DOC}#{r.id.lower()})",
        },
        "helpUri": f"{RULES_DOC}#{r.id.lower()}",
        "defaultConfiguration": {"level": _LEVEL[r.severity]},
        "properties": {
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY[r.severity],
            "precision": "high",
        },
    }
    return desc


def _result(f: Finding, rule_index: int, loc: _Locator) -> dict:
    res: dict = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": loc.physical(f.path),
                "logicalLocations": [
                    {"fullyQualifiedName": f.path, "kind": "member" if "!" in f.path else "module"}
                ],
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


def render_sarif(
    report: ScanReport, anchors: dict[str, Anchor] | None = None, root: Path | None = None
) -> str:
    """``anchors`` maps a remote source URI to the project-file line that declares it; ``root`` is %SRCROOT%."""
    buf = io.StringIO()
    write_sarif(MemoryView(report), buf, anchors, root)
    return buf.getvalue()


def write_sarif(
    view: ReportView, out: TextIO, anchors: dict[str, Anchor] | None = None, root: Path | None = None
) -> None:
    """The SARIF document, its notifications, artifacts and results written one at a time."""
    report = view.head
    root = (root or Path(os.getcwd())).resolve()
    loc = _Locator(view, anchors, root)
    rule_ids = sorted(view.totals.rule_ids)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    slot = {name: f"\0{secrets.token_hex(8)}{name}" for name in ("notifications", "artifacts", "results")}

    def notifications() -> Iterator[dict]:
        for fr, _d in view.files():
            if fr.coverage is not Coverage.FULL:
                note = f"{fr.path}: not fully analyzed ({fr.coverage.value}): {'; '.join(fr.coverage_notes)}"
                yield {
                    "level": "error",
                    "message": {"text": note},
                    "locations": [{"physicalLocation": loc.physical(fr.path)}],
                }
        for e in report.errors:
            yield {"level": "error", "message": {"text": e}}

    def artifacts() -> Iterator[dict]:
        for fr, _d in view.files():
            if "!" not in fr.path:
                yield {
                    "location": loc.physical(fr.path)["artifactLocation"],
                    "length": fr.size,
                    **({"hashes": {"sha-256": fr.sha256}} if fr.sha256 else {}),
                }

    def results() -> Iterator[dict]:
        for fr, _d in view.files():
            for f in fr.findings:
                yield _result(f, index[f.rule_id], loc)

    run: dict = {
        "tool": {
            "driver": {
                "name": "modelward",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(r) for r in rule_ids],
                "properties": {"rulesVersion": report.rules_version},
            }
        },
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": slot["notifications"],
            }
        ],
        "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
        "artifacts": slot["artifacts"],
        "results": slot["results"],
        "properties": {"verdict": report.verdict.decision.value if report.verdict else None},
    }
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }
    text = json.dumps(doc, indent=2)
    for name, items, indent in (
        ("notifications", notifications(), " " * 10),
        ("artifacts", artifacts(), " " * 8),
        ("results", results(), " " * 8),
    ):
        before, text = text.split(json.dumps(slot[name]), 1)
        out.write(before)
        write_list(out, (json.dumps(x, indent=2) for x in items), indent)
    out.write(text + "\n")
