"""The one place a scan report becomes a decision: evaluate, then apply the policy's findings explicitly.

Every entry point (scan, pull, check, audit) calls ``decide``; ``evaluate`` stays
pure so tests and tools can judge a report without changing it.
"""

from __future__ import annotations

from datetime import date

from ..findings import ScanReport, Verdict
from ..rules import RuleDB, get_rule_db
from .evaluate import Evaluation, evaluate
from .loader import DEFAULT_POLICY, Policy, load_policy


def apply_findings(report: ScanReport, evaluation: Evaluation) -> None:
    """Add the policy's findings to the files they are about, so every report format shows them."""
    for pf in evaluation.findings:
        report.files[pf.file_index].findings.append(pf.finding)


def decide(
    report: ScanReport,
    policy: Policy | None = None,
    rules: RuleDB | None = None,
    *,
    today: date | None = None,
) -> Verdict:
    """Judge ``report`` under ``policy`` (None: the shipped default) with ``rules`` (None: the process's
    rule database; entry points pass the one they scanned with), add the policy findings to its files
    and return the verdict (the caller stores it: ``report.verdict = decide(...)``)."""
    evaluation = evaluate(
        report,
        policy if policy is not None else load_policy(DEFAULT_POLICY),
        rules if rules is not None else get_rule_db(),
        today,
    )
    apply_findings(report, evaluation)
    return evaluation.verdict
