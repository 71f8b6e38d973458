"""The local known-bad list merged from feeds (``$XDG_DATA_HOME/modelward/known_bad.json``).

Kept apart from the shipped ``known_bad_sha256.yaml`` so a rule-database update never loses what a
team imported, and read by the rule loader on every start: a match names the feed record's id and source.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..io.atomic_file import write_atomic

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def store_path() -> Path:
    env = os.environ.get("MODELWARD_KNOWN_BAD")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "modelward" / "known_bad.json"


def load_store() -> dict[str, dict[str, str]]:
    """sha256 -> {id, source, summary}; an unreadable store is empty (the shipped list still applies)."""
    try:
        doc = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, dict):
        return {}
    return {
        k: v for k, v in records.items() if isinstance(k, str) and _SHA256.match(k) and isinstance(v, dict)
    }


def save_store(records: dict[str, dict[str, str]]) -> None:
    path = store_path()
    write_atomic(path, json.dumps({"records": dict(sorted(records.items()))}, indent=1) + "\n")


def imported_known_bad() -> Iterator[tuple[str, str, str]]:
    """(sha256, record id, source) for every imported record."""
    for sha, rec in load_store().items():
        yield sha, str(rec.get("id") or "imported"), str(rec.get("source") or "")
