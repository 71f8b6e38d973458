"""Per-entry use constraints from the profile audit (signatures/pickle/audit/*.yaml).

Allowlisting a class whose ``__init__`` has side effects (TrainingArguments,
joblib.Memory, accelerate's PartialState) is safe only in the shape the library
writes: ``cls.__new__`` (NEWOBJ) plus BUILD. The audit records that as
``constraint: newobj-only``; stored-only callables are ``data-only``. This
module reads those two constraints; the walker counts how each import is used
and the stream reporter turns a use outside the constraint into a finding.
Other constraint kinds are enforced by gadgets.yaml argument rules.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ...rules import RuleDatabaseError, load_rule_file

AUDIT_DIR = Path("pickle") / "audit"
ENFORCED = ("data-only", "newobj-only")  # strictest first


@functools.lru_cache(maxsize=4)
def load_constraints(root: Path) -> dict[str, tuple[str, str]]:
    """'module:name' -> (constraint, why) for entries the walker can check; the strictest wins."""
    out: dict[str, tuple[str, str]] = {}
    folder = root / AUDIT_DIR
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.yaml")):
        doc = load_rule_file(path) or {}
        for group in doc.get("groups") or () if isinstance(doc, dict) else ():
            if not isinstance(group, dict):
                raise RuleDatabaseError(f"{path}: each group is a mapping")
            kind = group.get("constraint")
            if kind not in ENFORCED:
                continue
            why = " ".join(str(group.get("why", "")).split())
            for g in group.get("globals") or ():
                old = out.get(g)
                if old is None or ENFORCED.index(kind) < ENFORCED.index(old[0]):
                    out[g] = (kind, why)
    return out
