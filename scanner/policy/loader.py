"""Load, validate and merge policy files into a typed ``Policy``, keeping the file and line of every setting.

A decision's reasons point at the policy line that made them, so a reviewer can
find the rule they are arguing with; a malformed policy is one message naming
file, line and column and what was expected. Files users write are checked
against the JSON Schema (its errors give the column); the merged result is then
compiled into ``model.PolicySpec``, the only form the evaluator and the scan read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..resources import policies_dir
from ..yaml_cache import parse_cached
from .model import PolicySpec, SpecError, compile_spec

SHIPPED = ("default", "strict", "audit")
DEFAULT_POLICY = "default"  # what decides when no policy is named
MAX_EXTENDS = 8
Key = tuple[Any, ...]


class PolicyError(Exception):
    """A policy could not be used; the message names file, line and column."""


@dataclass(frozen=True)
class Policy:
    """A loaded policy: its typed settings (``spec``, what the evaluator and the scan read), the document they
    were compiled from (``data``, as written after ``extends``: cache keys, merging) and where each was set."""

    name: str
    path: Path | None
    data: dict[str, Any]
    spec: PolicySpec
    refs: dict[Key, str] = field(default_factory=dict)  # key path -> "file:line"
    base_dir: Path | None = None

    def ref(self, *key: Any) -> str:
        """The 'file:line' that set ``key`` (or the nearest enclosing key)."""
        k: Key = tuple(key)
        while k:
            if k in self.refs:
                return self.refs[k]
            k = k[:-1]
        return f"{self.path or self.name}"

    def get(self, *key: Any, default: Any = None) -> Any:
        """The written value at a key path (as ``ref`` addresses it), else ``default``; prefer the typed ``spec``."""
        cur: Any = self.data
        for k in key:
            if isinstance(cur, dict) and k in cur:
                cur = cur[k]
            elif isinstance(cur, list) and isinstance(k, int) and k < len(cur):
                cur = cur[k]
            else:
                return default
        return cur


def _schema() -> dict[str, Any]:
    path = policies_dir() / "policy.schema.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: policy schema unreadable: {exc}") from None


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read(path: Path) -> tuple[dict[str, Any], dict[Key, tuple[int, int]], dict[Key, tuple[int, int]]]:
    shown = _display(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{shown}: policy file not found") from None
    except OSError as exc:
        raise PolicyError(f"{shown}: cannot read policy: {exc}") from None

    def parse(b: bytes) -> dict[str, Any]:
        from .yaml_source import PolicySyntaxError, read_positions  # PyYAML: only on a cache miss

        try:
            return read_positions(b)
        except PolicySyntaxError as exc:
            raise PolicyError(f"{shown}{exc}") from None

    doc = parse_cached(raw, parse)
    return (
        doc["data"],
        {tuple(k): (line, col) for k, (line, col) in doc["lines"]},
        {tuple(k): (line, col) for k, (line, col) in doc["keys"]},
    )


def _validate(
    data: dict[str, Any], lines: dict[Key, tuple[int, int]], keys: dict[Key, tuple[int, int]], path: Path
) -> None:
    from jsonschema import (
        Draft202012Validator,  # only for policy files users write: seconds matter at start-up
    )

    errors = sorted(
        Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
    )
    if not errors:
        return
    err = errors[0]
    key: Key = tuple(err.absolute_path)
    positions = lines
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        if extra:
            key = key + (extra[0],)
            positions = keys
            msg = f"unknown setting {extra[0]!r}; expected one of {', '.join(sorted(err.schema.get('properties', {})))}"
        else:
            msg = err.message
    elif err.validator == "enum":
        msg = f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    elif err.validator == "required":
        msg = err.message
    elif err.validator == "pattern":
        msg = f"{err.instance!r} does not have the expected form ({err.schema.get('description') or err.validator_value})"
    else:
        msg = err.message
    k = key
    while k not in positions and k:
        k = k[:-1]
    line, col = positions.get(k, (1, 1))
    where = ".".join(str(p) for p in key) or "(top level)"
    raise PolicyError(f"{_display(path)}:{line}:{col}: {where}: {msg}")


_MERGE_DICTS = ("severity_overrides", "formats", "sources", "signatures", "pickle")
_CONCAT_LISTS = {("exceptions",), ("trusted_code",), ("signatures", "trust"), ("pickle", "extra_allowed")}


def _merge(
    parent: Policy, data: dict[str, Any], refs: dict[Key, str]
) -> tuple[dict[str, Any], dict[Key, str]]:
    merged: dict[str, Any] = json.loads(json.dumps(parent.data))
    out_refs = dict(parent.refs)
    for top, value in data.items():
        if top in _MERGE_DICTS and isinstance(value, dict) and isinstance(merged.get(top), dict):
            for sub, v in value.items():
                if (top, sub) in _CONCAT_LISTS and isinstance(merged[top].get(sub), list):
                    offset = len(merged[top][sub])
                    merged[top][sub] = merged[top][sub] + list(v)
                    for k, r in refs.items():
                        if k[:2] == (top, sub) and len(k) > 2 and isinstance(k[2], int):
                            out_refs[(top, sub, k[2] + offset) + k[3:]] = r
                else:
                    merged[top][sub] = v
                    out_refs.update({k: r for k, r in refs.items() if k[:2] == (top, sub)})
        elif (top,) in _CONCAT_LISTS and isinstance(merged.get(top), list):
            offset = len(merged[top])
            merged[top] = merged[top] + list(value)
            for k, r in refs.items():
                if k[:1] == (top,) and len(k) > 1 and isinstance(k[1], int):
                    out_refs[(top, k[1] + offset) + k[2:]] = r
        else:
            merged[top] = value
            out_refs.update({k: r for k, r in refs.items() if k[:1] == (top,)})
    return merged, out_refs


def _resolve_name(spec: str, relative_to: Path | None) -> Path:
    if re.fullmatch(r"[a-z][a-z0-9_-]*", spec) and spec in SHIPPED:
        return policies_dir() / f"{spec}.yaml"
    p = Path(spec).expanduser()
    if not p.is_absolute() and relative_to is not None:
        p = relative_to / p
    return p


def _absolutize(data: dict[str, Any], base: Path) -> None:
    """Key and chain files are relative to the policy that names them, also after 'extends' merges."""
    for entry in (data.get("signatures") or {}).get("trust") or []:
        for k in ("keys", "chains"):
            entry[k] = [str((base / Path(p).expanduser()).resolve()) for p in entry.get(k) or []]
        for ident in entry.get("identities") or []:
            if ident.get("trust_config"):
                ident["trust_config"] = str((base / Path(ident["trust_config"]).expanduser()).resolve())


def load_policy(
    spec: str | Path, *, _chain: tuple[Path, ...] = (), _relative_to: Path | None = None
) -> Policy:
    """Load a shipped policy by name (default, strict, audit) or a policy file by path."""
    path = _resolve_name(str(spec), _relative_to).resolve() if not isinstance(spec, Path) else spec.resolve()
    if path in _chain:
        raise PolicyError(
            f"{_display(path)}: 'extends' forms a cycle: {' -> '.join(_display(p) for p in _chain + (path,))}"
        )
    if len(_chain) >= MAX_EXTENDS:
        raise PolicyError(f"{_display(path)}: 'extends' chain deeper than {MAX_EXTENDS}")
    data, lines, keys = _read(path)
    if path.parent != policies_dir().resolve():  # shipped policies are validated by the test suite
        _validate(data, lines, keys, path)
    shown = _display(path)
    refs = {k: f"{shown}:{ln}" for k, (ln, _c) in lines.items() if k}
    name = str(data.get("name") or path.stem)
    _absolutize(data, path.parent)
    parent_spec = data.pop("extends", None)
    if parent_spec is None:
        return _compile(name, path, data, refs)
    try:
        parent = load_policy(parent_spec, _chain=_chain + (path,), _relative_to=path.parent)
    except PolicyError as exc:
        line = lines.get(("extends",), (1, 1))
        raise PolicyError(f"{shown}:{line[0]}:{line[1]}: extends {parent_spec!r}: {exc}") from None
    merged, merged_refs = _merge(parent, data, refs)
    merged["name"] = name
    return _compile(name, path, merged, merged_refs)


def _compile(name: str, path: Path, data: dict[str, Any], refs: dict[Key, str]) -> Policy:
    """The typed policy; what the schema let through but the model does not (a 30 February) names its line."""
    try:
        spec = compile_spec(data)
    except SpecError as exc:
        key = exc.loc
        while key and key not in refs:
            key = key[:-1]
        where = ".".join(str(p) for p in exc.loc) or "(top level)"
        raise PolicyError(f"{refs.get(key, _display(path))}: {where}: {exc}") from None
    return Policy(name=name, path=path, data=data, spec=spec, refs=refs, base_dir=path.parent)
