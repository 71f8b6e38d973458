"""The typed objects every stage passes forward: findings, per-file results, scan reports.

Reports are versioned (``REPORT_SCHEMA_VERSION``); the JSON schema in
``docs/report.schema.json`` is generated from these models, so a change here is
a change of the published contract.

They are plain dataclasses, not pydantic models: importing pydantic and building its
validators cost ~0.2 s of every command's start-up (issue #13). pydantic still owns the
JSON contract (serialising, parsing, the schema, field descriptions from ``metadata``),
through a ``TypeAdapter`` built on first use, so a console scan never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from pydantic import TypeAdapter

_M = TypeVar("_M", bound="_Model")

REPORT_SCHEMA_VERSION = "1.0"


class Severity(str, Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {value!r} (expected one of {', '.join(s.value for s in cls)})"
            ) from None

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Coverage(str, Enum):
    """How much of a file the scanner could judge; anything but FULL is a policy matter, never a pass."""

    FULL = "full"
    PARTIAL = "partial"
    NONE = "none"


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    """One TypeAdapter per model class, built on first use (pydantic is imported then, not at start-up)."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def _has_surrogates(v: Any) -> bool:
    if isinstance(v, str):
        return any("\ud800" <= c <= "\udfff" for c in v) if not v.isascii() else False
    if isinstance(v, _Model):
        return any(_has_surrogates(getattr(v, f.name)) for f in fields(v))  # type: ignore[arg-type]
    if isinstance(v, dict):
        return any(_has_surrogates(k) or _has_surrogates(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return any(_has_surrogates(x) for x in v)
    return False


def _escape_surrogates(v: Any) -> Any:
    if isinstance(v, str):
        try:
            raw = v.encode("utf-8", "surrogateescape")  # bytes os.fsdecode/tarfile could not decode
        except UnicodeEncodeError:
            raw = v.encode("utf-8", "surrogatepass")  # any other lone surrogate
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(v, dict):
        return {_escape_surrogates(k): _escape_surrogates(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_escape_surrogates(x) for x in v)
    return v


def _doc(text: str) -> dict[str, str]:
    """Field metadata pydantic turns into the schema's ``description``."""
    return {"description": text}


class _Model:
    """The pydantic ``BaseModel`` methods the rest of the code uses, backed by a lazy ``TypeAdapter``."""

    def model_dump_json(self, *, indent: int | None = None) -> str:
        return self.printable().json_bytes(indent=indent).decode()

    def json_bytes(self, *, indent: int | None = None) -> bytes:
        """The JSON as UTF-8 bytes, for callers that splice a large report without another copy; call it on
        ``printable()`` (a name that is not UTF-8 cannot be encoded otherwise)."""
        return _adapter(type(self)).dump_json(self, indent=indent)

    def printable(self: _M) -> _M:
        """This object, or a copy whose strings carry no lone surrogates (an undecodable file or member name,
        a pickled string): those become ``\\xNN`` escapes, so JSON, SARIF and every other report can be
        written as UTF-8 instead of crashing on them."""
        if not _has_surrogates(self):
            return self  # the usual case, decided without pydantic
        adapter = _adapter(type(self))
        out: _M = adapter.validate_python(_escape_surrogates(adapter.dump_python(self, mode="python")))
        return out

    def model_dump(self, *, mode: Literal["json", "python"] = "python") -> dict[str, Any]:
        out: dict[str, Any] = _adapter(type(self)).dump_python(self, mode=mode)
        return out

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        out: _M = _adapter(cls).validate_python(obj)
        return out

    @classmethod
    def model_validate_json(cls: type[_M], data: str | bytes) -> _M:
        out: _M = _adapter(cls).validate_json(data)
        return out

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        return _adapter(cls).json_schema()


@dataclass(kw_only=True)
class Tags(_Model):
    failure_mode: str | None = None
    cia: list[str] = field(default_factory=list)
    atlas: str | None = None


@dataclass(kw_only=True)
class Finding(_Model):
    rule_id: str
    severity: Severity
    message: str
    path: str = field(metadata=_doc("artifact path, with '!' separating container members"))
    offset: int | None = field(default=None, metadata=_doc("byte offset inside the innermost member"))
    opcode_index: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    tags: Tags = field(default_factory=Tags)
    title: str | None = None


@dataclass(kw_only=True)
class FileResult(_Model):
    path: str
    size: int
    format: str
    sha256: str | None = None
    coverage: Coverage = Coverage.FULL
    coverage_notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    bytes_read: int = 0
    members: list[str] = field(default_factory=list, metadata=_doc("container members inspected"))
    formats: list[str] = field(
        default_factory=list, metadata=_doc("every format detected, at any nesting level")
    )
    source: str | None = field(default=None, metadata=_doc("the target this file was resolved from"))
    signature: str | None = field(
        default=None,
        metadata=_doc("'verified', 'mismatch', 'unsigned', 'signature-file' or None when no signature"),
    )
    signer: str | None = field(default=None, metadata=_doc("identity whose signature covered this file"))
    cached: bool = False

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None, key=lambda s: s.rank)


class Decision(str, Enum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


@dataclass(kw_only=True)
class Reason(_Model):
    decision: Decision
    message: str
    path: str | None = None
    rule_id: str | None = None
    policy_ref: str | None = field(default=None, metadata=_doc("policy file and line that made this reason"))


@dataclass(kw_only=True)
class Verdict(_Model):
    decision: Decision
    policy: str
    reasons: list[Reason] = field(default_factory=list)
    file_decisions: dict[str, Decision] = field(default_factory=dict)


@dataclass(kw_only=True)
class ScanReport(_Model):
    schema_version: str = REPORT_SCHEMA_VERSION
    scanner_version: str
    rules_version: str
    targets: list[str]
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    duration_seconds: float = 0.0
    files: list[FileResult] = field(default_factory=list)
    bytes_read: int = 0
    total_size: int = 0
    verdict: Verdict | None = None
    errors: list[str] = field(default_factory=list, metadata=_doc("problems that stopped part of the scan"))

    def all_findings(self) -> list[Finding]:
        return [f for fr in self.files for f in fr.findings]
