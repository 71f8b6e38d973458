"""The inspector contract: format handlers and the context they report into.

A handler sniffs content (never the file name) and inspects a Reader. Container
handlers hand members back through ``InspectContext.inspect_member`` so that
detection, depth limits and the shared byte budget apply at every level.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..findings import Coverage, FileResult, Finding, Severity
from ..io.reader import Reader
from ..limits import Limits
from ..rules import RuleDB

if TYPE_CHECKING:  # pragma: no cover
    pass

SNIFF_BYTES = 4096


@dataclass(frozen=True)
class FormatHandler:
    """One file format.

    ``sniff(head, reader)`` gets the first ``SNIFF_BYTES`` bytes (fewer for short
    files) and may read more through ``reader`` (e.g. an HDF5 user block); it
    must be cheap and must not raise. ``family`` groups formats whose loaders
    are the same for the name/content mismatch rule ("pickle" for everything a
    pickle loader opens). ``claims`` are the file-name endings that normally
    carry the format. Lower ``priority`` is sniffed first.
    """

    name: str
    sniff: Callable[[bytes, Reader], bool]
    inspect: Callable[[Reader, InspectContext], None]
    family: str
    claims: tuple[str, ...] = ()
    priority: int = 50
    can_carry_code: bool = False


class BudgetExceeded(Exception):
    """The shared byte budget of one top-level file ran out."""


@dataclass
class ScanState:
    """What all nesting levels of one top-level file share."""

    rules: RuleDB
    limits: Limits
    result: FileResult
    budget_left: int
    deadline: float
    allowed_profiles: list[str] | None = None  # None: rule DB defaults; a policy may widen or narrow
    extra_allowed_globals: list[str] = field(default_factory=list)  # 'module:name' from policy
    seen_members: int = 0

    def charge(self, nbytes: int) -> None:
        self.budget_left -= nbytes
        if self.budget_left < 0:
            raise BudgetExceeded(f"decompressed-bytes budget of {self.limits.max_total_uncompressed} bytes exhausted")

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


class InspectContext:
    """The view one inspector has of the scan: where it is, what limits hold, where findings go."""

    def __init__(self, state: ScanState, path: str, depth: int = 0, member_name: str | None = None) -> None:
        self.state = state
        self.path = path
        self.depth = depth
        self.member_name = member_name

    @property
    def rules(self) -> RuleDB:
        return self.state.rules

    @property
    def limits(self) -> Limits:
        return self.state.limits

    def add(
        self,
        rule_id: str,
        message: str,
        *,
        severity: Severity | None = None,
        offset: int | None = None,
        opcode_index: int | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        f = self.rules.finding(
            rule_id,
            message,
            self.path,
            severity=severity,
            offset=offset,
            opcode_index=opcode_index,
            evidence=evidence,
        )
        self.state.result.findings.append(f)
        return f

    def _note(self, reason: str) -> None:
        note = reason if self.path == self.state.result.path else f"{self.path}: {reason}"
        if note not in self.state.result.coverage_notes:
            self.state.result.coverage_notes.append(note)

    def partial(self, reason: str) -> None:
        """Part of the content could not be judged; the rest was."""
        if self.state.result.coverage is Coverage.FULL:
            self.state.result.coverage = Coverage.PARTIAL
        self._note(reason)

    def unanalyzable(self, reason: str) -> None:
        """Nothing of this (member's) content could be judged."""
        if self.depth == 0:
            self.state.result.coverage = Coverage.NONE
        elif self.state.result.coverage is Coverage.FULL:
            self.state.result.coverage = Coverage.PARTIAL
        self._note(reason)

    def limit_hit(self, what: str, message: str, *, offset: int | None = None) -> None:
        self.add("LIMIT-EXCEEDED", message, offset=offset, evidence={"limit": what})
        self.partial(f"limit hit: {what}")

    def child_path(self, member: str) -> str:
        return f"{self.path}!{member}"

    def inspect_member(self, reader: Reader, member: str, *, charge: bool = False) -> None:
        """Detect and inspect a nested member (archive entry, decompressed stream, embedded pickle)."""
        from .detect import inspect_with_detection

        child = InspectContext(self.state, self.child_path(member), self.depth + 1, member_name=member)
        if child.depth > self.limits.max_depth:
            child.limit_hit("max_depth", f"nesting deeper than {self.limits.max_depth} levels; member not inspected")
            return
        if charge:
            try:
                self.state.charge(reader.size)
            except BudgetExceeded as exc:
                child.limit_hit("max_total_uncompressed", str(exc))
                return
        self.state.seen_members += 1
        self.state.result.members.append(child.path)
        inspect_with_detection(reader, child)
