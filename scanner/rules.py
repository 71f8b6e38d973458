"""The rule database (``signatures/``), loaded once and typed.

Rules are data: adding a rule, an allowlisted global or a known-bad digest is
an edit under ``signatures/`` and needs no code change. Code refers to rules
only by id; an id missing from the database is a programming error and fails
loudly at load-time checks in the test suite.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import os
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
    return _folder_bundle(path.parent).get(path.name, raw, lambda b: _parse_rule_yaml(b, path))


class _FolderBundle:
    """The parsed files of one rule-database folder, kept as one MACed JSON file (issue #13).

    The pickle analyzer reads ~25 files of ``signatures/pickle/`` at every start; one compiled copy per folder
    costs one read and one MAC instead of one of each per file. An entry is served only for exactly the bytes
    it was parsed from (their SHA-256 is checked against the file just read), and each entry at most once per
    process (callers own what they are given); anything else goes through ``parse_cached``.
    """

    def __init__(self, folder: Path) -> None:
        from .yaml_cache import _mac_key, compiled_dir

        self.folder = folder
        self.address = hashlib.sha256(_BUNDLE_FORMAT + os.fsencode(folder)).hexdigest()
        cache = compiled_dir()
        self.key = _mac_key(cache)
        self.path = cache / f"rulefiles-{self.address}.json"
        self.entries: dict[str, list[Any]] = {}  # name -> [sha256 of the bytes, parsed data]
        self.served: set[str] = set()
        if self.key is not None:
            self.entries = self._load()

    def _mac(self, body: bytes) -> str:
        assert self.key is not None
        return hmac.new(
            self.key, _BUNDLE_MAC + self.address.encode() + b"\0" + body, hashlib.sha256
        ).hexdigest()

    def _load(self) -> dict[str, list[Any]]:
        from .yaml_cache import _decode

        try:
            mac, _, body = self.path.read_bytes().partition(b"\n")
        except OSError:
            return {}
        if not hmac.compare_digest(mac, self._mac(body).encode()):
            return {}
        try:
            data = _decode(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, TypeError, KeyError):
            return {}
        if not (isinstance(data, dict) and data.get("address") == self.address):
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {
            k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
        }

    def get(self, name: str, raw: bytes, parse: Any) -> Any:
        digest = hashlib.sha256(raw).hexdigest()
        entry = self.entries.get(name)
        if entry is not None and entry[0] == digest and name not in self.served:
            self.served.add(name)
            return entry[1]
        data = parse_cached(raw, parse)
        if self.key is not None and name not in self.served:
            self.served.add(name)
            self._save(name, digest, data)
        return data

    def _save(self, name: str, digest: str, data: Any) -> None:
        import copy
        import json

        from .yaml_cache import _decode, _encode, _Unrepresentable

        try:
            present = set(os.listdir(self.folder))
        except OSError:
            return
        entries = {k: v for k, v in self.entries.items() if k in present and k != name}
        entries[name] = [digest, copy.deepcopy(data)]  # the caller owns ``data``
        doc = {"address": self.address, "entries": entries}
        try:
            text = json.dumps(_encode(doc), ensure_ascii=False, allow_nan=False)
        except (_Unrepresentable, ValueError, RecursionError):
            return  # data JSON cannot carry exactly: this file is parsed (or read from parse_cached) every time
        if _decode(text) != doc:
            return
        self.entries = entries
        body = text.encode()
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_bytes(self._mac(body).encode() + b"\n" + body)
            tmp.replace(self.path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


_BUNDLE_FORMAT = b"modelward-rule-folder-v1\0"
_BUNDLE_MAC = b"modelward-rule-folder-mac-v1\0"
_bundles: dict[tuple[Any, ...], _FolderBundle] = {}


def _folder_bundle(folder: Path) -> _FolderBundle:
    """One bundle object per folder and cache location and key (tests change them within a process)."""
    env = os.environ
    key = (folder, env.get("XDG_CACHE_HOME"), env.get("HOME"), env.get("MODELWARD_CACHE_KEY"))
    bundle = _bundles.get(key)
    if bundle is None:
        bundle = _bundles[key] = _FolderBundle(folder)
    return bundle


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


_COMPILED_FORMAT = b"modelward-rule-db-compiled-v1\0"
_MAC_CONTEXT = b"modelward-rule-db-v1\0"


def _yaml_files(folder: Path) -> list[Path]:
    """``sorted(folder.glob("*.yaml"))`` without pathlib's globbing (a tenth of the load, issue #13)."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".yaml"))
    except OSError:
        return []
    return [folder / n for n in names]


def _database_files(root: Path) -> list[tuple[str, Path]]:
    """Every file the database is built from, (group, path), in load order."""
    files = [("rules", f) for f in _yaml_files(root / "rules")]
    files += [("profile", f) for f in _yaml_files(root / "pickle" / "profiles")]
    files += [("deny", f) for f in (root / "pickle" / "denylist.yaml",) if f.exists()]
    files += [("known", f) for f in (root / "known_bad_sha256.yaml",) if f.exists()]
    files += [("hydra", f) for f in _yaml_files(root / "hydra")]
    files += [("template", f) for f in _yaml_files(root / "templates")]
    return files


def _read_all(files: list[tuple[str, Path]]) -> list[bytes]:
    out = []
    for _, f in files:
        try:
            out.append(f.read_bytes())
        except OSError as exc:
            raise RuleDatabaseError(f"{f}: cannot read: {exc.strerror}") from None
    return out


def _database_address(version: str, root: Path, files: list[tuple[str, Path]], raws: list[bytes]) -> str:
    """What the compiled database depends on: this loader's code, the scanner version, and every input file's
    place and bytes (an edited, added or removed file, or another modelward, is a different address)."""
    from . import __version__

    h = hashlib.sha256(_COMPILED_FORMAT + __version__.encode() + b"\0" + version.encode() + b"\0")
    try:
        h.update(Path(__file__).read_bytes())
    except OSError:
        h.update(b"?")
    for (group, f), raw in zip(files, raws, strict=True):
        h.update(f"{group}\0{f.parent.name}/{f.name}\0{len(raw)}\0".encode())
        h.update(raw)
    return h.hexdigest()


def _load_compiled(address: str) -> dict[str, Any] | None:
    """The verified compiled database for ``address``, or None (missing, tampered, unreadable, no key)."""
    from .yaml_cache import _decode, _mac_key, compiled_dir

    folder = compiled_dir()
    key = _mac_key(folder)
    if key is None:
        return None
    try:
        blob = (folder / f"ruledb-{address}.json").read_bytes()
    except OSError:
        return None
    mac, _, body = blob.partition(b"\n")
    expected = hmac.new(key, _MAC_CONTEXT + address.encode() + b"\0" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected.encode()):
        return None
    try:
        data = _decode(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError, KeyError):
        return None
    return data if isinstance(data, dict) and data.get("address") == address else None


def _save_compiled(address: str, data: dict[str, Any]) -> None:
    import json

    from .yaml_cache import _decode, _encode, _mac_key, _Unrepresentable, compiled_dir

    folder = compiled_dir()
    key = _mac_key(folder)
    if key is None:
        return
    data = {**data, "address": address}
    try:
        text = json.dumps(_encode(data), ensure_ascii=False, allow_nan=False)
    except (_Unrepresentable, ValueError, RecursionError):
        return  # data JSON cannot carry exactly: build it from the files every time
    if _decode(text) != data:
        return
    body = text.encode()
    mac = hmac.new(key, _MAC_CONTEXT + address.encode() + b"\0" + body, hashlib.sha256).hexdigest()
    path = folder / f"ruledb-{address}.json"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_bytes(mac.encode() + b"\n" + body)
        tmp.replace(path)
    except OSError:  # a read-only or planted cache folder: build again next time
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _compile(files: list[tuple[str, Path]], raws: list[bytes]) -> dict[str, Any]:
    """The checked content of every database file, as JSON-able data (what ``_build`` makes the database of)."""
    out: dict[str, Any] = {
        "rules": [],
        "profiles": [],
        "deny": None,
        "known": None,
        "hydra": [],
        "templates": {},
    }
    seen_rules: set[str] = set()
    for (group, f), raw in zip(files, raws, strict=True):
        doc = parse_cached(raw, lambda b, f=f: _parse_rule_yaml(b, f))  # type: ignore[misc]
        if group == "rules":
            for r in _validate(_RULES_FILE, doc, f)["rules"]:
                if r["id"] in seen_rules:
                    raise RuleDatabaseError(f"{f}: duplicate rule id {r['id']}")
                seen_rules.add(r["id"])
                tags = r.get("tags") or Tags()
                out["rules"].append(
                    [
                        r["id"],
                        r["severity"].value,
                        r["title"],
                        r["rationale"].strip(),
                        list(r.get("references", ())),
                        [tags.failure_mode, list(tags.cia), tags.atlas],
                    ]
                )
        elif group in ("profile", "hydra"):
            p = _validate(_PROFILE, doc, f)
            entry = [
                p["name"],
                p["description"],
                p.get("default", True),
                [list(_split_global(g, f)) for g in p.get("globals", [])],
                [list(_split_global(g, f)) for g in p.get("patterns", [])],
            ]
            if group == "profile" and any(e[0] == p["name"] for e in out["profiles"]):
                raise RuleDatabaseError(f"{f}: duplicate profile name {p['name']}")
            out["profiles" if group == "profile" else "hydra"].append(entry)
        elif group == "deny":
            d = _validate(_DENY_FILE, doc, f)
            for x in d["entries"]:
                if ":" in x["match"]:
                    _split_global(x["match"], f)
            out["deny"] = {"aliases": dict(d.get("aliases", {})), "entries": d["entries"]}
        elif group == "known":
            out["known"] = _validate(_KNOWN_BAD_FILE, doc or {}, f).get("digests", [])
        else:
            out["templates"][f.stem] = doc
    return out


def _build(version: str, root: Path, data: dict[str, Any]) -> RuleDB:
    rules: dict[str, Rule] = {}
    for rid, severity, title, rationale, references, (failure_mode, cia, atlas) in data["rules"]:
        tags = Tags(failure_mode=failure_mode, cia=cia, atlas=atlas)
        rules[rid] = Rule(rid, Severity(severity), title, rationale, tuple(references), tags)

    def profile(e: list[Any]) -> PickleProfile:
        name, description, default, exact, patterns = e
        return PickleProfile(
            name=name,
            description=description,
            default=default,
            exact=frozenset(map(tuple, exact)),  # type: ignore[arg-type]
            patterns=tuple(map(tuple, patterns)),  # type: ignore[arg-type]
        )

    profiles = {e[0]: profile(e) for e in data["profiles"]}
    deny = Denylist()
    if data["deny"] is not None:
        deny.aliases = dict(data["deny"]["aliases"])
        for e in (_DenyEntry(**x) for x in data["deny"]["entries"]):
            if ":" in e.match:
                module, name = e.match.split(":")
                deny.names[(module, name)] = e
            else:
                deny.modules[e.match] = e
    known: dict[str, _KnownBad] = {}
    for k in (_KnownBad(**x) for x in data["known"] or ()):
        known[k.sha256.lower()] = k
    for sha, name, reference in imported_known_bad():  # feeds merged with `modelward rules import-known-bad`
        known.setdefault(sha, _KnownBad(sha256=sha, name=name, reference=reference))
    hydra = {e[0]: profile(e) for e in data["hydra"]}
    return RuleDB(
        version=version,
        root=root,
        rules=rules,
        profiles=profiles,
        denylist=deny,
        known_bad=known,
        hydra_profiles=hydra,
        template_data=dict(data["templates"]),
    )


def load_rule_db(root: Path | None = None) -> RuleDB:
    """The database under ``root`` (default: the one in use). Its checked, compiled form is kept as one MACed
    JSON file in the cache folder, addressed by this loader's code, the scanner version and every file's bytes,
    so a start reads the files and one JSON document instead of validating ~75 files (issue #13); a compiled
    file that does not verify is ignored and rebuilt from the YAML."""
    root = Path(root) if root else signatures_dir()
    if not root.is_dir():
        raise RuleDatabaseError(f"{root}: rule database directory not found")
    version_file = root / "VERSION"
    try:
        version = version_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise RuleDatabaseError(f"{version_file}: missing rule database version") from None
    files = _database_files(root)
    raws = _read_all(files)
    address = _database_address(version, root, files, raws)
    data = _load_compiled(address)
    if data is None:
        data = _compile(files, raws)
        _save_compiled(address, data)
    return _build(version, root, data)


@functools.lru_cache(maxsize=4)
def _cached(root: str | None) -> RuleDB:
    return load_rule_db(Path(root) if root else None)


def get_rule_db(root: Path | str | None = None) -> RuleDB:
    """The process-wide rule database; loaded once per root."""
    return _cached(str(root) if root else str(signatures_dir()))  # an installed update is a new root
