"""Known-bad feeds in OSV format: export what an audit blocked, import what others published.

One team's discovery should protect everyone (the CVE model). Records are OSV-schema JSON (the format
osv-scanner and OSV feeds use) with ``MAL-`` ids: OSV has no ecosystem for model files, so a record names
the artifact by its SHA-256 in ``database_specific.modelward`` and leaves ``affected`` out. Where a file
was found is redacted unless the exporter asks otherwise (an internal bucket name is itself sensitive).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from ..io.redaction import redact_url
from .known_bad_store import load_store, save_store

OSV_SCHEMA_VERSION = "1.6.0"
MAX_FEED_RECORDS = 1_000_000


class FeedError(Exception):
    """The feed cannot be read or holds no usable record."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def osv_record(item: dict[str, Any], rules: Any, *, show_source: bool = False) -> dict[str, Any]:
    """One blocked file as an OSV record; ``item`` has sha256, size, format, findings, first_seen, where."""
    findings = sorted(item["findings"], key=lambda f: f[0])
    rule_ids = sorted({f[0] for f in findings})
    atlas = sorted({r.tags.atlas for rid in rule_ids if (r := rules.rules.get(rid)) and r.tags.atlas})
    worst = next((f for f in findings if f[1] == "critical"), findings[0] if findings else None)
    sha = str(item["sha256"])
    return {
        "schema_version": OSV_SCHEMA_VERSION,
        "id": f"MAL-MODELWARD-{sha[:16].upper()}",
        "modified": _now(),
        "published": item.get("first_seen") or _now(),
        "summary": f"Malicious model file ({item.get('format') or 'unknown format'}): {', '.join(rule_ids)}"[
            :200
        ],
        "details": "\n".join(f"{sev} {rid}: {msg}" for rid, sev, msg in findings[:20])[:4000],
        "severity": [],
        "database_specific": {
            "modelward": {
                "sha256": sha,
                "size": item.get("size"),
                "format": item.get("format"),
                "rule_ids": rule_ids,
                "atlas": atlas,
                "evidence": worst[2][:500] if worst else "",
                "first_seen": item.get("first_seen"),
                "source": redact_url(str(item.get("where"))) if show_source else "redacted",
                "rules_version": rules.version,
            }
        },
    }


def export_records(items: Iterable[dict[str, Any]], rules: Any, *, show_source: bool = False) -> str:
    """A JSON array of OSV records, one per distinct digest (content found twice is one record)."""
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        sha = item.get("sha256")
        if not sha or len(str(sha)) != 64 or sha in seen:
            continue
        seen[str(sha)] = osv_record(item, rules, show_source=show_source)
    for rec in seen.values():
        rec.pop("severity", None)  # no CVSS vector for a model file; OSV wants none rather than an empty one
    return json.dumps(list(seen.values()), indent=2) + "\n"


def parse_feed(data: bytes, source: str) -> list[tuple[str, dict[str, str]]]:
    """(sha256, {id, source, summary}) for every usable record of an OSV feed (array, object or {vulns})."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{source}: not JSON ({exc})") from None
    records = doc.get("vulns", [doc]) if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise FeedError(f"{source}: expected OSV records (an array, one record, or {{'vulns': [...]}})")
    if len(records) > MAX_FEED_RECORDS:
        raise FeedError(f"{source}: more than {MAX_FEED_RECORDS} records")
    out: list[tuple[str, dict[str, str]]] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
            raise FeedError(f"{source}: record {i} is not an OSV record with an id")
        if rec.get("withdrawn"):
            continue
        meta = (rec.get("database_specific") or {}).get("modelward") or {}
        sha = str(meta.get("sha256", "")).lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            continue  # not a model-file record: nothing to match by digest
        out.append(
            (
                sha,
                {"id": rec["id"], "source": redact_url(source), "summary": str(rec.get("summary", ""))[:200]},
            )
        )
    if not out:
        raise FeedError(f"{source}: no record names a model file by SHA-256")
    return out


def merge_feed(records: list[tuple[str, dict[str, str]]]) -> tuple[int, int]:
    """Merge into the local known-bad store; returns (added, already known)."""
    store = load_store()
    added = 0
    for sha, rec in records:
        if sha not in store:
            added += 1
        store[sha] = rec
    save_store(store)
    return added, len(records) - added
