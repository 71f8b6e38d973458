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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...rules import RuleDatabaseError, load_rule_file

AUDIT_DIR = Path("pickle") / "audit"
GADGETS = Path("pickle") / "gadgets.yaml"  # its ``kept_values`` section
ENFORCED = ("data-only", "newobj-only")  # strictest first
KEPT = "#kept"  # table key suffix: 'module:name#kept' -> ('kept', attribute names a library keeps the class under)


@functools.lru_cache(maxsize=4)
def load_constraints(root: Path) -> dict[str, tuple[str, str]]:
    """'module:name' -> (constraint, why) for entries the walker can check; the strictest wins. The built table
    is kept between runs (``table_cache``: addressed by every file's bytes and this code, MACed)."""
    folder = root / AUDIT_DIR
    if not folder.is_dir():
        return {}
    from .table_cache import cached_table

    try:  # sorted(folder.glob("*.yaml")) without compiling a glob pattern at every start (issue #13)
        files = [folder / n for n in sorted(os.listdir(folder)) if n.endswith(".yaml")]
    except OSError as exc:
        raise RuleDatabaseError(f"{folder}: cannot list: {exc.strerror}") from None
    if (root / GADGETS).is_file():
        files.append(root / GADGETS)
    return cached_table("constraints", files, lambda: _build(files), _encode, _decode, (__file__,))


def _encode(table: dict[str, tuple[str, str]]) -> Any:
    """JSON data of a built table (each distinct (constraint, why) once); ``_decode`` gives an equal table back."""
    values: dict[tuple[str, str], int] = {}
    rows = [[g, values.setdefault(v, len(values))] for g, v in table.items()]
    return [[list(v) for v in values], rows]


def _decode(data: Any) -> dict[str, tuple[str, str]]:
    values, rows = data
    pairs = [(kind, why) for kind, why in values]
    return {g: pairs[i] for g, i in rows}


def kept_slots(table: Mapping[str, tuple[str, str]], path: str) -> frozenset[str]:
    """The attribute names under which real libraries keep the newobj-only class ``path`` as a value (measured)."""
    entry = table.get(path + KEPT)
    return frozenset(entry[1].split()) if entry else frozenset()


def _kept(path: Path, doc: Any, out: dict[str, tuple[str, str]]) -> None:
    """gadgets.yaml ``kept_values``: {attribute: {why, globals: [...]}}."""
    section = doc.get("kept_values") if isinstance(doc, dict) else None
    if section is None:
        return
    if not isinstance(section, dict):
        raise RuleDatabaseError(f"{path}: kept_values maps an attribute name to {{why, globals}}")
    names: dict[str, set[str]] = {}
    for attr, spec in section.items():
        globs = spec.get("globals") if isinstance(spec, dict) else None
        if not (
            isinstance(attr, str) and attr.isidentifier() and isinstance(globs, list) and spec.get("why")
        ):
            raise RuleDatabaseError(f"{path}: kept_values.{attr}: an identifier mapping to {{why, globals}}")
        for g in globs:
            if not (isinstance(g, str) and g.count(":") == 1):
                raise RuleDatabaseError(f"{path}: kept_values.{attr}: globals are 'module:name'")
            names.setdefault(g, set()).add(attr)
    for g, attrs in names.items():
        out[g + KEPT] = ("kept", " ".join(sorted(attrs)))


def _build(files: list[Path]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in files:
        doc = load_rule_file(path) or {}
        if path.name == GADGETS.name:
            _kept(path, doc, out)
            continue
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
