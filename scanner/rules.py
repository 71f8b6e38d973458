"""The rule database (``signatures/``), loaded once and typed.

Rules are data: adding a rule, an allowlisted global or a known-bad digest is
an edit under ``signatures/`` and needs no code change. Code refers to rules
only by id; an id missing from the database is a programming error and fails
loudly at load-time checks in the test suite.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .findings import Finding, Severity, Tags
from .resources import signatures_dir
from .rulesdb.known_bad_store import imported_known_bad
from .yaml_cache import parse_cached


class RuleDatabaseError(Exception):
    """The rule database on disk is malformed; names the file."""


# The data files' shapes, checked by `_check` below. Hand-written rather than pydantic models: validating
# 71 files through pydantic (and importing it) was a third of a local scan's start-up (issue #13).
# A spec maps a key to (kind, required); unknown keys are errors, like pydantic's extra="forbid".
_Spec = dict[str, tuple[Any, bool]]
_TAGS: _Spec = {"failure_mode": ("str?", False), "cia": ("list[str]", False), "atlas": ("str?", False)}
_RULE: _Spec = {
    "id": ("str", True),
    "severity": ("severity", True),
    "title": ("str", True),
    "rationale": ("str", True),
    "references": ("list[str]", False),
    "tags": ("tags", False),
}
_RULES_FILE: _Spec = {"rules": ([_RULE], True)}
_PROFILE: _Spec = {
    "name": ("str", True),
    "description": ("str", True),
    "measured_on": ("str?", False),
    "default": ("bool", False),
    "globals": ("list[str]", False),  # exact 'module:name' entries
    "patterns": ("list[str]", False),  # 'module-glob:name-glob'; the name glob never matches a dotted name
}
_DENY_ENTRY: _Spec = {
    "match": ("str", True),
    "category": ("str", True),
    "rule": ("str?", False),
    "note": ("str?", False),
}
_DENY_FILE: _Spec = {
    "entries": ([_DENY_ENTRY], True),
    "aliases": ("dict[str,str]", False),
}  # aliases: re-export -> public
_KNOWN_BAD: _Spec = {"sha256": ("str", True), "name": ("str", True), "reference": ("str?", False)}
_KNOWN_BAD_FILE: _Spec = {"digests": ([_KNOWN_BAD], False)}


class _Invalid(Exception):
    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def _check_value(kind: Any, value: Any, loc: tuple[str | int, ...]) -> Any:
    if isinstance(kind, list):  # a list of records
        if not isinstance(value, list):
            raise _Invalid(loc, "Input should be a valid list")
        return [_check(kind[0], v, (*loc, i)) for i, v in enumerate(value)]
    if kind in ("str", "str?"):
        if value is None and kind == "str?":
            return None
        if not isinstance(value, str):
            raise _Invalid(loc, "Input should be a valid string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Invalid(loc, "Input should be a valid boolean")
        return value
    if kind == "list[str]":
        if not isinstance(value, list):
            raise _Invalid(loc, "Input should be a valid list")
        return [_check_value("str", v, (*loc, i)) for i, v in enumerate(value)]
    if kind == "dict[str,str]":
        if not isinstance(value, dict):
            raise _Invalid(loc, "Input should be a valid dictionary")
        return {
            _check_value("str", k, (*loc, "[key]")): _check_value("str", v, (*loc, k))
            for k, v in value.items()
        }
    if kind == "severity":
        if isinstance(value, str) and value in Severity._value2member_map_:
            return Severity(value)
        *head, last = (repr(s.value) for s in Severity)
        raise _Invalid(loc, f"Input should be {', '.join(head)} or {last}")
    if kind == "tags":
        if not isinstance(value, dict):
            raise _Invalid(loc, "Input should be a valid dictionary")
        known = {k: v for k, v in value.items() if k in _TAGS}  # Tags ignores unknown keys
        return Tags(**_check(_TAGS, known, loc))
    raise AssertionError(f"unknown kind {kind!r}")


def _check(spec: _Spec, data: Any, loc: tuple[str | int, ...] = ()) -> dict[str, Any]:
    """The record with every key of `spec` checked; absent optional keys are left out (callers default them)."""
    if not isinstance(data, dict):
        raise _Invalid(loc, "Input should be a valid dictionary")
    for key in data:
        if key not in spec:
            raise _Invalid((*loc, key), "Extra inputs are not permitted")
    out: dict[str, Any] = {}
    for key, (kind, required) in spec.items():
        if key in data:
            out[key] = _check_value(kind, data[key], (*loc, key))
        elif required:
            raise _Invalid((*loc, key), "Field required")
    return out


@dataclass(frozen=True)
class _DenyEntry:
    match: str
    category: str
    rule: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class _KnownBad:
    sha256: str
    name: str
    reference: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    rationale: str
    references: tuple[str, ...]
    tags: Tags


@dataclass(frozen=True)
class PickleProfile:
    """A named set of globals a benign loader of one library accepts."""

    name: str
    description: str
    default: bool
    exact: frozenset[tuple[str, str]]
    patterns: tuple[tuple[str, str], ...]

    def allows(self, module: str, name: str) -> bool:
        if (module, name) in self.exact:
            return True
        if "." in name:
            return False
        return any(fnmatch.fnmatchcase(module, m) and fnmatch.fnmatchcase(name, n) for m, n in self.patterns)


@dataclass(frozen=True)
class DenyHit:
    match: str
    category: str
    rule: str | None
    note: str | None = None  # why the entry is dangerous (signatures/pickle/denylist.yaml)


@dataclass
class Denylist:
    """Raises severity only; the allowlist decides what is a finding at all."""

    modules: dict[str, _DenyEntry] = field(default_factory=dict)
    names: dict[tuple[str, str], _DenyEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # module spelling -> public module it re-exports

    def lookup(self, module: str, name: str) -> DenyHit | None:
        """Match a module (and its submodules) or a module:name (and attributes reached through it)."""
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            e = self.modules.get(prefix)
            if e is not None:
                return DenyHit(e.match, e.category, e.rule, e.note)
        name_parts = name.split(".")
        for i in range(len(name_parts), 0, -1):
            e = self.names.get((module, ".".join(name_parts[:i])))
            if e is not None:
                return DenyHit(e.match, e.category, e.rule, e.note)
        return None


@dataclass
class RuleDB:
    version: str
    root: Path
    rules: dict[str, Rule]
    profiles: dict[str, PickleProfile]
    denylist: Denylist
    known_bad: dict[str, _KnownBad]
    # signatures/hydra/*.yaml: callables hydra/OmegaConf `_target_` configs may name (same format as pickle profiles)
    hydra_profiles: dict[str, PickleProfile] = field(default_factory=dict)
    # signatures/templates/*.yaml: the measured chat-template language, typed by scanner.analysis.template_language
    template_data: dict[str, Any] = field(default_factory=dict)

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise KeyError(f"rule id {rule_id!r} is not in the rule database at {self.root}") from None

    def finding(
        self,
        rule_id: str,
        message: str,
        path: str,
        *,
        severity: Severity | None = None,
        offset: int | None = None,
        opcode_index: int | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        r = self.rule(rule_id)
        return Finding(
            rule_id=r.id,
            severity=severity or r.severity,
            message=message,
            path=path,
            offset=offset,
            opcode_index=opcode_index,
            evidence=evidence or {},
            tags=r.tags,
            title=r.title,
        )

    def default_profiles(self) -> list[PickleProfile]:
        return [p for p in self.profiles.values() if p.default]


def load_data_yaml(text: str | bytes) -> Any:
    """Safe YAML for the rule database's own data files (libyaml when the wheel has it)."""
    import yaml  # only on a compiled-cache miss: importing PyYAML is ~20 ms of start-up

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def _parse_rule_yaml(raw: bytes, path: Path) -> Any:
    import yaml

    try:
        return load_data_yaml(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise RuleDatabaseError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def load_rule_file(path: Path) -> Any:
    """One YAML file of the rule database, parsed (or its verified compiled copy); errors name the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleDatabaseError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_cached(raw, lambda b: _parse_rule_yaml(b, path))


def _validate(spec: _Spec, data: Any, path: Path) -> dict[str, Any]:
    try:
        return _check(spec, data)
    except _Invalid as exc:
        loc = ".".join(str(p) for p in exc.loc)
        raise RuleDatabaseError(f"{path}: {loc}: {exc.msg}") from None


def _profile(spec: dict[str, Any], path: Path) -> PickleProfile:
    return PickleProfile(
        name=spec["name"],
        description=spec["description"],
        default=spec.get("default", True),
        exact=frozenset(_split_global(g, path) for g in spec.get("globals", [])),
        patterns=tuple(_split_global(g, path) for g in spec.get("patterns", [])),
    )


def _split_global(entry: str, path: Path) -> tuple[str, str]:
    if entry.count(":") != 1:
        raise RuleDatabaseError(f"{path}: allowlist entry {entry!r} must be 'module:name'")
    module, name = entry.split(":")
    return module, name


def load_rule_db(root: Path | None = None) -> RuleDB:
    root = Path(root) if root else signatures_dir()
    if not root.is_dir():
        raise RuleDatabaseError(f"{root}: rule database directory not found")
    version_file = root / "VERSION"
    try:
        version = version_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise RuleDatabaseError(f"{version_file}: missing rule database version") from None

    rules: dict[str, Rule] = {}
    for f in sorted((root / "rules").glob("*.yaml")):
        for r in _validate(_RULES_FILE, load_rule_file(f), f)["rules"]:
            if r["id"] in rules:
                raise RuleDatabaseError(f"{f}: duplicate rule id {r['id']}")
            rules[r["id"]] = Rule(
                r["id"],
                r["severity"],
                r["title"],
                r["rationale"].strip(),
                tuple(r.get("references", ())),
                r.get("tags") or Tags(),
            )

    profiles: dict[str, PickleProfile] = {}
    for f in sorted((root / "pickle" / "profiles").glob("*.yaml")):
        p = _profile(_validate(_PROFILE, load_rule_file(f), f), f)
        if p.name in profiles:
            raise RuleDatabaseError(f"{f}: duplicate profile name {p.name}")
        profiles[p.name] = p

    deny = Denylist()
    deny_file = root / "pickle" / "denylist.yaml"
    if deny_file.exists():
        d = _validate(_DENY_FILE, load_rule_file(deny_file), deny_file)
        deny.aliases = dict(d.get("aliases", {}))
        for e in (_DenyEntry(**x) for x in d["entries"]):
            if ":" in e.match:
                deny.names[_split_global(e.match, deny_file)] = e
            else:
                deny.modules[e.match] = e

    known: dict[str, _KnownBad] = {}
    kb_file = root / "known_bad_sha256.yaml"
    if kb_file.exists():
        kb = _validate(_KNOWN_BAD_FILE, load_rule_file(kb_file) or {}, kb_file)
        for k in (_KnownBad(**x) for x in kb.get("digests", [])):
            known[k.sha256.lower()] = k
    for sha, name, reference in imported_known_bad():  # feeds merged with `modelward rules import-known-bad`
        known.setdefault(sha, _KnownBad(sha256=sha, name=name, reference=reference))

    hydra: dict[str, PickleProfile] = {}
    for f in sorted((root / "hydra").glob("*.yaml")):
        h = _profile(_validate(_PROFILE, load_rule_file(f), f), f)
        hydra[h.name] = h
    templates = {f.stem: load_rule_file(f) for f in sorted((root / "templates").glob("*.yaml"))}

    return RuleDB(
        version=version,
        root=root,
        rules=rules,
        profiles=profiles,
        denylist=deny,
        known_bad=known,
        hydra_profiles=hydra,
        template_data=templates,
    )


@functools.lru_cache(maxsize=4)
def _cached(root: str | None) -> RuleDB:
    return load_rule_db(Path(root) if root else None)


def get_rule_db(root: Path | str | None = None) -> RuleDB:
    """The process-wide rule database; loaded once per root."""
    return _cached(str(root) if root else str(signatures_dir()))  # an installed update is a new root
