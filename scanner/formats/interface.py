"""The inspector contract: format handlers, the context they report into, and the fail-closed wrapper.

A handler sniffs content (never the file name) and inspects a Reader. Everything a
handler needs from the scan comes through its ``InspectContext``: limits, rules,
where findings go, and how to recurse into members. The context is given its
dispatcher (content detection, ``detect.inspect_with_detection``) by whoever
creates the top-level context, so this module imports no handler, no registry
and no detection: the contract is the bottom of the formats package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..findings import Coverage, FileResult, Finding, Severity
from ..io.reader import Reader, ReaderError

if TYPE_CHECKING:  # the rule database (and its YAML loader) is the caller's: handlers only receive it
    from ..limits import Limits
    from ..rules import RuleDB

log = logging.getLogger(__name__)

SNIFF_BYTES = 4096


@dataclass(frozen=True)
class FormatHandler:
    """One file format.

    ``sniff(head, reader)`` gets the first ``SNIFF_BYTES`` bytes (fewer for short
    files) and may read more through ``reader`` (e.g. an HDF5 user block); it
    must be cheap and must not raise. ``family`` groups formats whose loaders
    are the same for the name/content mismatch rule ("pickle" for everything a
    pickle loader opens). ``claims`` are the file-name endings that normally
    carry the format. Sniff order is the order of ``registry.HANDLERS``.
    """

    name: str
    sniff: Callable[[bytes, Reader], bool]
    inspect: Callable[[Reader, InspectContext], None]
    family: str
    claims: tuple[str, ...] = ()
    can_carry_code: bool = False


class BudgetExceeded(Exception):
    """The shared byte budget of one top-level file ran out."""


Dispatch = Callable[[Reader, "InspectContext"], str]
"""Detects the format of a reader and runs its inspector in a context; returns the format name."""


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
            raise BudgetExceeded(
                f"decompressed-bytes budget of {self.limits.max_total_uncompressed} bytes exhausted"
            )

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


class InspectContext:
    """The view one inspector has of the scan: where it is, what limits hold, where findings go."""

    def __init__(
        self,
        state: ScanState,
        path: str,
        depth: int = 0,
        member_name: str | None = None,
        *,
        dispatch: Dispatch,
    ) -> None:
        self.state = state
        self.path = path
        self.depth = depth
        self.member_name = member_name
        self.dispatch = dispatch

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

    def child(self, member: str, *, charge: int | None = None) -> InspectContext | None:
        """The context of a nested member, recorded in the result; None (reported) past a limit.

        The one way into a member: ``inspect_member`` uses it, and so does every
        inspector that judges a member itself (a pickle a loader is known to
        unpickle, a code file a server imports). ``charge`` bytes are taken from
        the shared decompressed-bytes budget first.
        """
        child = InspectContext(
            self.state, self.child_path(member), self.depth + 1, member, dispatch=self.dispatch
        )
        if child.depth > self.limits.max_depth:
            child.limit_hit(
                "max_depth", f"nesting deeper than {self.limits.max_depth} levels; member not inspected"
            )
            return None
        if charge is not None:
            try:
                self.state.charge(charge)
            except BudgetExceeded as exc:
                child.limit_hit("max_total_uncompressed", str(exc))
                return None
        self.state.seen_members += 1
        self.state.result.members.append(child.path)
        return child

    def inspect_member(self, reader: Reader, member: str, *, charge: bool = False) -> None:
        """Detect and inspect a nested member (archive entry, decompressed stream, embedded pickle)."""
        child = self.child(member, charge=reader.size if charge else None)
        if child is not None:
            self.dispatch(reader, child)


def run_inspector(handler: FormatHandler, reader: Reader, ctx: InspectContext) -> None:
    """Run ``handler.inspect``; a crash, a limit or a read error becomes a finding, never a pass."""
    try:
        handler.inspect(reader, ctx)
    except BudgetExceeded as exc:
        ctx.limit_hit("max_total_uncompressed", str(exc))
    except ReaderError as exc:
        ctx.add("FILE-READ-ERROR", str(exc))
        ctx.partial(f"read error: {exc}")
    except (RecursionError, MemoryError) as exc:
        ctx.limit_hit("resources", f"{handler.name} inspector ran out of {type(exc).__name__}")
    except Exception as exc:  # fail closed: a crash is a finding, never a pass
        log.debug("inspector %s crashed on %s", handler.name, ctx.path, exc_info=True)
        ctx.add(
            "INSPECTOR-ERROR",
            f"{handler.name} inspector could not finish: {type(exc).__name__}: {exc}"[:500],
        )
        ctx.partial(f"{handler.name} inspector error")
