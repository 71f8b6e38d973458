"""The rule database as a document: what each rule id means, for people reading reports and writing policies."""

from __future__ import annotations

import json

from ..findings import Severity
from ..rules import RuleDB


def _order(db: RuleDB) -> list:
    return sorted(db.rules.values(), key=lambda r: (r.id.split("-")[0], -r.severity.rank, r.id))


def catalog_markdown(db: RuleDB) -> str:
    lines = [
        "# modelward rule catalog",
        "",
        f"Rule database version {db.version}. Generated from `signatures/` by `modelward rules --format markdown`;",
        "edit the YAML there, not this file. Severity is the default; policies may override it per rule.",
        "",
        "| id | severity | title | failure mode | ATLAS | CIA |",
        "|---|---|---|---|---|---|",
    ]
    for r in _order(db):
        lines.append(
            f"| `{r.id}` | {r.severity.value} | {r.title} | {r.tags.failure_mode or ''} | {r.tags.atlas or ''} | "
            f"{', '.join(r.tags.cia)} |"
        )
    lines.append("")
    for r in _order(db):
        lines += [f"## {r.id}", "", f"**{r.severity.value}** — {r.title}", "", r.rationale, ""]
        if r.references:
            lines += ["References: " + ", ".join(r.references), ""]
    profiles = sorted(db.profiles.values(), key=lambda p: p.name)
    lines += [
        "# Pickle allowlist profiles",
        "",
        "| profile | default | globals | description |",
        "|---|---|---|---|",
    ]
    for p in profiles:
        lines.append(
            f"| `{p.name}` | {'yes' if p.default else 'no'} | {len(p.exact) + len(p.patterns)} | {p.description} |"
        )
    return "\n".join(lines) + "\n"


def catalog_json(db: RuleDB) -> str:
    doc = {
        "rules_version": db.version,
        "rules": [
            {
                "id": r.id,
                "severity": r.severity.value,
                "title": r.title,
                "rationale": r.rationale,
                "references": list(r.references),
                "tags": r.tags.model_dump(),
            }
            for r in _order(db)
        ],
        "profiles": [
            {"name": p.name, "default": p.default, "description": p.description}
            for p in sorted(db.profiles.values(), key=lambda p: p.name)
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def catalog_console(db: RuleDB, min_severity: Severity | None = None) -> str:
    rows = [r for r in _order(db) if min_severity is None or r.severity >= min_severity]
    width = max(len(r.id) for r in rows) if rows else 10
    out = [f"{r.id:<{width}}  {r.severity.value:<8}  {r.title}" for r in rows]
    out.append(f"\n{len(rows)} rules, rule database {db.version}")
    return "\n".join(out) + "\n"
