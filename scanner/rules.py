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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .findings import Finding, Severity, Tags
from .resources import signatures_dir
from .rulesdb.known_bad_store import imported_known_bad


class RuleDatabaseError(Exception):
    """The rule database on disk is malformed; names the file."""


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    severity: Severity
    title: str
    rationale: str
    references: list[str] = Field(default_factory=list)
    tags: Tags = Field(default_factory=Tags)


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[_RuleModel]


class _ProfileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    measured_on: str | None = None
    default: bool = True
    globals: list[str] = Field(default_factory=list, description="exact 'module:name' entries")
    patterns: list[str] = Field(
        default_factory=list,
        description="'module-glob:name-glob'; the name glob never matches a dotted name",
    )


class _DenyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str
    category: str
    rule: str | None = None
    note: str | None = None


class _DenyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[_DenyEntry]
    aliases: dict[str, str] = Field(default_factory=dict, description="re-export module -> public module")


class _KnownBad(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    name: str
    reference: str | None = None


class _KnownBadFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    digests: list[_KnownBad] = Field(default_factory=list)


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
                return DenyHit(e.match, e.category, e.rule)
        name_parts = name.split(".")
        for i in range(len(name_parts), 0, -1):
            e = self.names.get((module, ".".join(name_parts[:i])))
            if e is not None:
                return DenyHit(e.match, e.category, e.rule)
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


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the rule DB loads 10x faster


def load_data_yaml(text: str) -> Any:
    """Safe YAML for the rule database's own data files (libyaml when the wheel has it)."""
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def _load_yaml(path: Path) -> Any:
    try:
        with path.open("r", encoding="utf-8") as fh:
            return load_data_yaml(fh.read())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise RuleDatabaseError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise RuleDatabaseError(f"{path}: cannot read: {exc.strerror}") from None


def _validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RuleDatabaseError(f"{path}: {loc}: {first['msg']}") from None


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
        parsed: _RulesFile = _validate(_RulesFile, _load_yaml(f), f)
        for r in parsed.rules:
            if r.id in rules:
                raise RuleDatabaseError(f"{f}: duplicate rule id {r.id}")
            rules[r.id] = Rule(r.id, r.severity, r.title, r.rationale.strip(), tuple(r.references), r.tags)

    profiles: dict[str, PickleProfile] = {}
    for f in sorted((root / "pickle" / "profiles").glob("*.yaml")):
        p: _ProfileModel = _validate(_ProfileModel, _load_yaml(f), f)
        if p.name in profiles:
            raise RuleDatabaseError(f"{f}: duplicate profile name {p.name}")
        profiles[p.name] = PickleProfile(
            name=p.name,
            description=p.description,
            default=p.default,
            exact=frozenset(_split_global(g, f) for g in p.globals),
            patterns=tuple(_split_global(g, f) for g in p.patterns),
        )

    deny = Denylist()
    deny_file = root / "pickle" / "denylist.yaml"
    if deny_file.exists():
        d: _DenyFile = _validate(_DenyFile, _load_yaml(deny_file), deny_file)
        deny.aliases = dict(d.aliases)
        for e in d.entries:
            if ":" in e.match:
                deny.names[_split_global(e.match, deny_file)] = e
            else:
                deny.modules[e.match] = e

    known: dict[str, _KnownBad] = {}
    kb_file = root / "known_bad_sha256.yaml"
    if kb_file.exists():
        kb: _KnownBadFile = _validate(_KnownBadFile, _load_yaml(kb_file) or {}, kb_file)
        for k in kb.digests:
            known[k.sha256.lower()] = k
    for sha, name, reference in imported_known_bad():  # feeds merged with `modelward rules import-known-bad`
        known.setdefault(sha, _KnownBad(sha256=sha, name=name, reference=reference))

    hydra: dict[str, PickleProfile] = {}
    for f in sorted((root / "hydra").glob("*.yaml")):
        h: _ProfileModel = _validate(_ProfileModel, _load_yaml(f), f)
        hydra[h.name] = PickleProfile(
            h.name,
            h.description,
            h.default,
            frozenset(_split_global(g, f) for g in h.globals),
            tuple(_split_global(g, f) for g in h.patterns),
        )
    templates = {f.stem: _load_yaml(f) for f in sorted((root / "templates").glob("*.yaml"))}

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
