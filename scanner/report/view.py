"""What a renderer reads: a report's head and totals, and its files, reasons and decisions one at a time.

Renderers write to a text stream from a ``ReportView`` instead of building one string from a whole
``ScanReport``: a zoo audit's files live in a ``ReportStore`` on disk (``scanner.report.store``), a scan's in
memory (``MemoryView``). Both give the same rows in the same order, so a report is the same either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..findings import Coverage, Decision, FileResult, Reason, ScanReport, Severity, Verdict

GroupKey = Callable[[str, str | None], str]  # (file path, its source) -> the HTML report's group


@dataclass
class Totals:
    """Counts a report's summary lines need, gathered file by file."""

    files: int = 0
    findings: int = 0
    bytes_read: int = 0
    total_size: int = 0
    severities: Counter[Severity] = field(default_factory=Counter)
    coverage: Counter[Coverage] = field(default_factory=Counter)
    top_rules: Counter[str] = field(default_factory=Counter)  # findings above info, by rule, first-seen order
    rule_ids: set[str] = field(default_factory=set)  # every finding's rule

    def add(self, fr: FileResult) -> None:
        self.files += 1
        self.findings += len(fr.findings)
        self.bytes_read += fr.bytes_read
        self.total_size += fr.size
        self.coverage[fr.coverage] += 1
        for f in fr.findings:
            self.severities[f.severity] += 1
            self.rule_ids.add(f.rule_id)
            if f.severity is not Severity.INFO:
                self.top_rules[f.rule_id] += 1


def head_of(report: ScanReport) -> ScanReport:
    """``report`` without its files, and its verdict without reasons and per-file decisions."""
    verdict = report.verdict
    if verdict is not None:
        verdict = Verdict(decision=verdict.decision, policy=verdict.policy)
    return replace(report, files=[], verdict=verdict)


class ReportView(Protocol):
    head: ScanReport  # every field but the files; the verdict's decision and policy only
    totals: Totals

    def files(self) -> Iterator[tuple[FileResult, Decision | None]]:
        """Every file in report order, with the decision the verdict gives its path."""
        ...

    def files_with_findings(self, group: GroupKey) -> Iterator[tuple[FileResult, Decision | None]]:
        """Files with at least one finding, by (group, path), ties in report order."""
        ...

    def reasons(self) -> Iterator[Reason]: ...

    def decisions(self) -> Iterator[tuple[str, Decision]]:
        """The verdict's ``file_decisions``: one per path, in first-seen order, the last file's decision."""
        ...

    def decision_counts(self) -> Counter[Decision | None]:
        """How many files got each decision (None: no verdict for that path)."""
        ...

    def policy_ref(self, rule_id: str, paths: tuple[str, str]) -> str:
        """The policy line of the first reason about ``rule_id`` at one of ``paths``, else ''."""
        ...

    def source_of(self, path: str) -> str | None:
        """The source of the last file reported at ``path``, None when there is none."""
        ...


class MemoryView:
    """A ``ScanReport`` held in memory (a scan's), seen as a ``ReportView``."""

    def __init__(self, report: ScanReport) -> None:
        self.report = report
        self.head = head_of(report)
        self.totals = Totals()
        for fr in report.files:
            self.totals.add(fr)
        self._decisions = report.verdict.file_decisions if report.verdict else {}
        self._sources: dict[str, str | None] | None = None

    def files(self) -> Iterator[tuple[FileResult, Decision | None]]:
        for fr in self.report.files:
            yield fr, self._decisions.get(fr.path)

    def files_with_findings(self, group: GroupKey) -> Iterator[tuple[FileResult, Decision | None]]:
        for fr in sorted(
            (fr for fr in self.report.files if fr.findings),
            key=lambda fr: (group(fr.path, fr.source), fr.path),
        ):
            yield fr, self._decisions.get(fr.path)

    def reasons(self) -> Iterator[Reason]:
        yield from self.report.verdict.reasons if self.report.verdict else ()

    def decisions(self) -> Iterator[tuple[str, Decision]]:
        yield from self._decisions.items()

    def decision_counts(self) -> Counter[Decision | None]:
        return Counter(self._decisions.get(fr.path) for fr in self.report.files)

    def policy_ref(self, rule_id: str, paths: tuple[str, str]) -> str:
        for r in self.reasons():
            if r.rule_id == rule_id and r.path in paths:
                return r.policy_ref or ""
        return ""

    def source_of(self, path: str) -> str | None:
        if self._sources is None:
            self._sources = {fr.path: fr.source for fr in self.report.files}
        return self._sources.get(path)
