"""The policy document as typed models, one per object in ``policies/policy.schema.json``.

The JSON Schema stays the published contract and the source of the file:line:col
messages for files users write; these models are what the evaluator and the scan
read, so a misspelt setting is an attribute error rather than a silent default.
Like ``scanner.findings`` they are plain frozen dataclasses that pydantic
validates and describes through a ``TypeAdapter`` (no pydantic import on the
start-up path: every scan loads a policy). ``compile_spec`` builds them from the
loaded YAML; ``tests/policy/test_policy_model.py`` checks that pydantic's schema
of these models has the JSON Schema's properties at every level and that
pydantic's validation builds the same objects.
"""

from __future__ import annotations

import re
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import date
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ..findings import Severity

SeverityOrNever = Literal["critical", "high", "medium", "low", "info", "never"]
NEVER = "never"
_FORBID = {"extra": "forbid"}  # pydantic's view of additionalProperties: false
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}


def parse_size(value: int | str | None) -> int | None:
    """Bytes from an integer or a size such as ``1KiB`` / ``2 GB``; None stays None."""
    if value is None or isinstance(value, int):
        return value
    m = _SIZE.fullmatch(value)
    if not m or m.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@dataclass(frozen=True, kw_only=True)
class PatternLists:
    """``formats`` and ``sources``: an allowlist (None: anything) and a denylist."""

    __pydantic_config__ = _FORBID
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class KeylessIdentity:
    """A Sigstore signer: an OIDC identity (exact or regex) at an issuer."""

    __pydantic_config__ = _FORBID
    identity: str | None = None
    identity_regex: str | None = None
    issuer: str
    trust_config: str | None = None  # absolute after loading


@dataclass(frozen=True, kw_only=True)
class TrustEntry:
    """Who may sign artifacts from these sources (keys and chains are absolute after loading)."""

    __pydantic_config__ = _FORBID
    sources: tuple[str, ...]
    keys: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    identities: tuple[KeylessIdentity, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Signatures:
    __pydantic_config__ = _FORBID
    required: bool = False
    trust: tuple[TrustEntry, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExtraAllowed:
    """Pickle globals ('module:name') allowed for these sources only (a team's own classes)."""

    __pydantic_config__ = _FORBID
    sources: tuple[str, ...]
    globals: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PickleSettings:
    __pydantic_config__ = _FORBID
    profiles: tuple[str, ...] | None = None  # None: the rule database's default profiles
    extra_allowed: tuple[ExtraAllowed, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RulesSettings:
    __pydantic_config__ = _FORBID
    min_version: str | None = None


@dataclass(frozen=True, kw_only=True)
class LockSettings:
    __pydantic_config__ = _FORBID
    fresh: bool = False


@dataclass(frozen=True, kw_only=True)
class KnownBadFeed:
    __pydantic_config__ = _FORBID
    source: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class TrustedCode:
    """A reviewed code file a loader runs: by digest (preferred) or source pattern, always with a reason."""

    __pydantic_config__ = _FORBID
    sha256: str | None = None
    source: str | None = None
    path: str | None = None
    reason: str
    owner: str | None = None
    expires: date | None = None

    def describe(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 is not None else f"source {self.source}"


@dataclass(frozen=True, kw_only=True)
class PolicyException:
    """A waiver of one rule (or glob) for a path, source or digest, until it expires."""

    __pydantic_config__ = _FORBID
    rule: str
    source: str | None = None
    path: str | None = None
    sha256: str | None = None
    reason: str
    owner: str | None = None
    expires: date


@dataclass(frozen=True, kw_only=True)
class PolicySpec:
    """One policy document after ``extends`` is merged (the loader consumes ``extends`` itself)."""

    __pydantic_config__ = _FORBID
    version: Literal[1]
    name: str | None = None
    description: str | None = None
    extends: str | None = None
    block_severity: SeverityOrNever = "high"
    warn_severity: SeverityOrNever = "medium"
    block_unanalyzed: bool = True
    severity_overrides: dict[str, Severity] = field(default_factory=dict)
    formats: PatternLists = field(default_factory=PatternLists)
    sources: PatternLists = field(default_factory=PatternLists)
    max_file_size: int | str | None = None
    signatures: Signatures = field(default_factory=Signatures)
    pickle: PickleSettings = field(default_factory=PickleSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    lock: LockSettings = field(default_factory=LockSettings)
    known_bad_feeds: tuple[KnownBadFeed, ...] = ()
    trusted_code: tuple[TrustedCode, ...] = ()
    exceptions: tuple[PolicyException, ...] = ()

    @property
    def block_at(self) -> Severity | None:
        """Findings at or above this severity block; None: never."""
        return None if self.block_severity == NEVER else Severity(self.block_severity)

    @property
    def warn_at(self) -> Severity | None:
        return None if self.warn_severity == NEVER else Severity(self.warn_severity)

    @property
    def max_bytes(self) -> int | None:
        return parse_size(self.max_file_size)


# --- compiling the loaded YAML ---------------------------------------------------------------------


class SpecError(ValueError):
    """A value the models cannot hold; ``loc`` is its key path, as ``Policy.ref`` takes it."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def compile_spec(data: dict[str, Any]) -> PolicySpec:
    """The typed policy for a loaded (schema-valid) document; a 30 February is a SpecError at its key."""
    spec: PolicySpec = _build(PolicySpec, data, ())
    try:
        spec.max_bytes  # noqa: B018 - a size the evaluator could not read fails here, at its line
    except ValueError as exc:
        raise SpecError(("max_file_size",), str(exc)) from None
    return spec


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _build(tp: Any, value: Any, loc: tuple[Any, ...]) -> Any:
    """``value`` as type ``tp``: the few shapes these models use, checked, nothing coerced silently."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (a for a in args if a is not type(None)):
            try:
                return _build(arm, value, loc)
            except SpecError:
                continue
        raise SpecError(loc, f"{value!r} is not a valid {' or '.join(_name(a) for a in args)}")
    if origin is Literal:
        if value in args and type(value) is type(args[args.index(value)]):
            return value
        raise SpecError(loc, f"{value!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SpecError(loc, "expected a list")
        return tuple(_build(args[0], v, loc + (i,)) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(loc, "expected a mapping")
        return {str(k): _build(args[1], v, loc + (k,)) for k, v in value.items()}
    if is_dataclass(tp) and isinstance(tp, type):
        return _build_object(tp, value, loc)
    return _scalar(tp, value, loc)


def _build_object(cls: type, value: Any, loc: tuple[Any, ...]) -> Any:
    if not isinstance(value, dict):
        raise SpecError(loc, "expected a mapping")
    hints = _hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in value:
        if key not in known:
            raise SpecError(loc + (key,), f"unknown setting {key!r}")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in value:
            kwargs[name] = _build(hints[name], value[name], loc + (name,))
        elif f.default is MISSING and f.default_factory is MISSING:
            raise SpecError(loc, f"{name!r} is a required property")
    return cls(**kwargs)


def _scalar(tp: Any, value: Any, loc: tuple[Any, ...]) -> Any:
    if tp is date:
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise SpecError(loc, f"{value!r} is not a date, YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise SpecError(loc, f"{value!r} is not a date: {exc}") from None
    if tp is Severity:
        try:
            return Severity(value)
        except ValueError:
            raise SpecError(loc, f"{value!r} is not one of {', '.join(s.value for s in Severity)}") from None
    if tp is bool or tp is str:
        if type(value) is not tp:
            raise SpecError(loc, f"expected {tp.__name__}, got {value!r}")
        return value
    if tp is int:
        if type(value) is not int:  # a YAML true is not a size
            raise SpecError(loc, f"expected an integer, got {value!r}")
        return value
    raise TypeError(f"policy model field of unsupported type {tp!r}")  # a programming error, not a policy one


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
