"""The typed objects every stage passes forward: findings, per-file results, scan reports.

Reports are versioned (``REPORT_SCHEMA_VERSION``); the JSON schema in
``docs/report.schema.json`` is generated from these models, so a change here is
a change of the published contract.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

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
            raise ValueError(f"unknown severity {value!r} (expected one of {', '.join(s.value for s in cls)})") from None

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


class Tags(BaseModel):
    failure_mode: str | None = None
    cia: list[str] = Field(default_factory=list)
    atlas: str | None = None


class Finding(BaseModel):
    rule_id: str
    severity: Severity
    message: str
    path: str = Field(description="artifact path, with '!' separating container members")
    offset: int | None = Field(default=None, description="byte offset inside the innermost member")
    opcode_index: int | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    tags: Tags = Field(default_factory=Tags)
    title: str | None = None


class FileResult(BaseModel):
    path: str
    size: int
    format: str
    sha256: str | None = None
    coverage: Coverage = Coverage.FULL
    coverage_notes: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    bytes_read: int = 0
    members: list[str] = Field(default_factory=list, description="container members inspected")
    formats: list[str] = Field(default_factory=list, description="every format detected, at any nesting level")
    source: str | None = Field(default=None, description="the target this file was resolved from")
    signature: str | None = Field(
        default=None, description="'verified', 'mismatch', 'unsigned', 'signature-file' or None when no signature"
    )
    signer: str | None = Field(default=None, description="identity whose signature covered this file")
    cached: bool = False

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None, key=lambda s: s.rank)


class Decision(str, Enum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


class Reason(BaseModel):
    decision: Decision
    message: str
    path: str | None = None
    rule_id: str | None = None
    policy_ref: str | None = Field(default=None, description="policy file and line that made this reason")


class Verdict(BaseModel):
    decision: Decision
    policy: str
    reasons: list[Reason] = Field(default_factory=list)
    file_decisions: dict[str, Decision] = Field(default_factory=dict)


class ScanReport(BaseModel):
    schema_version: str = REPORT_SCHEMA_VERSION
    scanner_version: str
    rules_version: str
    targets: list[str]
    started_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    duration_seconds: float = 0.0
    files: list[FileResult] = Field(default_factory=list)
    bytes_read: int = 0
    total_size: int = 0
    verdict: Verdict | None = None
    errors: list[str] = Field(default_factory=list, description="problems that stopped part of the scan")

    def all_findings(self) -> list[Finding]:
        return [f for fr in self.files for f in fr.findings]
