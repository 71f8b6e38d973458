"""The verdict of a run too large to hold: each finished file is judged by the policy on its own and stored.

``policy.evaluate`` judges every file independently; only its scan-wide reasons (errors, a rule database older
than the policy's minimum) and the overall decision need the whole run. So each file is evaluated as a
one-file report the moment its result is final, its policy findings are added to it (as ``decide`` does),
and it goes to the ``ReportStore`` with its decision and reasons. ``verdict`` then adds the scan-wide
reasons once, in the place ``evaluate`` puts them: the result is the verdict ``decide`` gives the whole report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from ..findings import Decision, FileResult, ScanReport, Verdict
from ..policy.evaluate import evaluate
from ..policy.loader import Policy
from ..report.store import ReportStore
from ..rules import RuleDB

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
