"""The verdict of a run too large to hold: each finished file is judged by the policy on its own and stored.

``policy.evaluate`` judges every file independently; only its scan-wide reasons (errors, a rule database older
than the policy's minimum) and the overall decision need the whole run. So each file is evaluated as a
one-file report the moment its result is final, its policy findings are added to it (as ``decide`` does),
and it goes to the ``ReportStore`` with its decision and reasons. ``verdict`` then adds the scan-wide
reasons once, in the place ``evaluate`` puts them: the result is the verdict ``decide`` gives the whole report.

``ScanFiles`` is how ``modelward scan`` uses it: a scan's files stay in memory (and ``decide`` judges them) until
there are more than ``STORE_AT``; past that, those and every later file go through a ``FileJudge`` into a
``ReportStore``, so a 100k-file scan holds no results. The report is the same either way. The store (and
SQLite) is imported only then: a small scan's start-up does not pay for it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

from ..findings import Decision, FileResult, ScanReport, Verdict
from ..policy.evaluate import evaluate
from ..policy.loader import Policy
from ..rules import RuleDB

if TYPE_CHECKING:
    from ..report.store import ReportStore
    from ..report.view import ReportView

_ORDER = {Decision.ALLOW: 0, Decision.WARN: 1, Decision.BLOCK: 2}


class FileJudge:
    """Judges finished files into ``store`` under one policy, rule database and day."""

    def __init__(self, policy: Policy, rules: RuleDB, store: ReportStore) -> None:
        self.policy, self.rules, self.store = policy, rules, store
        self.today = date.today()
        self.worst = Decision.ALLOW  # of every file reason so far
        self._empty = replace(store.head, files=[], errors=[], verdict=None)
        self._scan_wide = len(
            self._evaluate(self._empty).verdict.reasons
        )  # reasons a one-file report repeats

    def _evaluate(self, report: ScanReport):  # type: ignore[no-untyped-def]
        return evaluate(report, self.policy, self.rules, self.today)

    def add(self, fr: FileResult) -> None:
        """Judge ``fr`` (adding the policy's findings to it) and store it, printable."""
        evaluation = self._evaluate(replace(self._empty, files=[fr]))
        for pf in evaluation.findings:
            fr.findings.append(pf.finding)
        reasons = evaluation.verdict.reasons[: len(evaluation.verdict.reasons) - self._scan_wide]
        for r in reasons:
            if _ORDER[r.decision] > _ORDER[self.worst]:
                self.worst = r.decision
        decision = evaluation.verdict.file_decisions.get(fr.path)
        shown = fr.printable()
        self.store.add_reasons(r.printable() for r in reasons)
        self.store.add_file(shown, decision)

    def verdict(self) -> Verdict:
        """The run's verdict (decision and policy; reasons and per-file decisions stay in the store), with the
        scan-wide reasons about ``store.head`` (its errors) appended to the store's reasons."""
        scan_wide = self._evaluate(replace(self._empty, errors=list(self.store.head.errors))).verdict.reasons
        self.store.add_reasons(r.printable() for r in scan_wide)
        worst = self.worst
        for r in scan_wide:
            if _ORDER[r.decision] > _ORDER[worst]:
                worst = r.decision
        return Verdict(decision=worst, policy=self.policy.name)


# files a scan holds in memory until its verdict; past it, each is judged and stored on its own
STORE_AT = 2000


class ScanFiles:
    """A scan's finished files as they come (``add``), then its verdict and a view to render (``finish``).

    Up to ``STORE_AT`` files: held, then decided as a whole by ``policy.decide`` (as always). Past it: a
    ``ReportStore`` (its head ``head`` until ``finish`` gives the scan's report), each file judged by a
    ``FileJudge`` the moment it is added. Close it (or use ``with``) to delete the store."""

    def __init__(self, head: ScanReport, policy: Policy, rules: RuleDB) -> None:
        self.head, self.policy, self.rules = head, policy, rules
        self.files: list[FileResult] = []
        self.judge: FileJudge | None = None

    def add(self, fr: FileResult) -> None:
        if self.judge is not None:
            self.judge.add(fr)
            return
        self.files.append(fr)
        if len(self.files) > STORE_AT:
            from ..report.store import ReportStore

            self.judge = FileJudge(self.policy, self.rules, ReportStore(self.head))
            held, self.files = self.files, []
            for f in held:
                self.judge.add(f)
            del held

    def finish(self, report: ScanReport) -> ReportView:
        """``report`` (the scan's, files not in it) gets its verdict and byte counts; returns what the
        renderers read: the report's printable form in memory, or the store with that as its head."""
        if self.judge is None:
            from ..policy.decide import decide
            from ..report.view import MemoryView

            report.files, self.files = self.files, []
            report.bytes_read = sum(f.bytes_read for f in report.files)
            report.total_size = sum(f.size for f in report.files)
            report.verdict = decide(report, self.policy, self.rules)
            return MemoryView(report.printable())
        store = self.judge.store
        report.bytes_read, report.total_size = store.totals.bytes_read, store.totals.total_size
        store.head = report  # the scan-wide reasons are about its errors
        report.verdict = self.judge.verdict()
        store.head = report.printable()
        return store

    def close(self) -> None:
        if self.judge is not None:
            self.judge.store.close()

    def __enter__(self) -> ScanFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
