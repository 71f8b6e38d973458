"""The built-in decision used when no policy is named: the shipped ``default`` policy.

Block on critical/high findings and on any file not fully analyzed (fail
closed); warn on medium; everything else is reported and allowed.
"""

from __future__ import annotations

from datetime import date

from ..findings import ScanReport, Verdict
from .evaluate import evaluate
from .loader import load_policy

POLICY_NAME = "default"


def decide(report: ScanReport, today: date | None = None) -> Verdict:
    return evaluate(report, load_policy(POLICY_NAME), today)
