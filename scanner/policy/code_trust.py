"""Policy ``trusted_code``: the only way code a loader runs (CODE-EXECUTED-BY-LOADER) is allowed.

Absence of suspicious findings does not make code safe, so trust is an explicit,
reviewed statement: the exact file digest (a changed file blocks again) or a
source pattern (optionally narrowed by a path glob), always with a reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ..findings import Finding
from .model import TrustedCode

RULE = "CODE-EXECUTED-BY-LOADER"


@dataclass
class TrustMatch:
    index: int
    entry: TrustedCode
    expired: bool


def _entry_matches(entry: TrustedCode, sha256: str, source: str | None, paths: list[str]) -> bool:
    if entry.sha256 is not None and (not sha256 or entry.sha256.lower() != sha256.lower()):
        return False
    if entry.source is not None and (source is None or not fnmatch.fnmatchcase(source, entry.source)):
        return False
    return entry.path is None or any(fnmatch.fnmatchcase(p, entry.path) for p in paths)


def find_trust(
    entries: Sequence[TrustedCode], finding: Finding, source: str | None, paths: list[str], today: date
) -> TrustMatch | None:
    """The first unexpired entry trusting this finding's code, else the first expired one, else None."""
    if finding.rule_id != RULE:
        return None
    sha = str(finding.evidence.get("sha256") or "")
    expired: TrustMatch | None = None
    for i, entry in enumerate(entries):
        if not _entry_matches(entry, sha, source, paths):
            continue
        if entry.expires is not None and entry.expires < today:
            expired = expired or TrustMatch(i, entry, True)
            continue
        return TrustMatch(i, entry, False)
    return expired


def member_paths(path: str) -> list[str]:
    """A finding path and, inside containers (``archive!member``), the innermost member too."""
    out = [path]
    if "!" in path:
        out.append(path.rsplit("!", 1)[-1])
    return out
