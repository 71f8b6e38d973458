"""The built-in decision used when no policy file is given.

Block on critical/high findings and on any file not fully analyzed (fail
closed); warn on medium; everything else is reported and allowed.
"""

from __future__ import annotations

from ..findings import Coverage, Decision, Reason, ScanReport, Severity, Verdict

POLICY_NAME = "builtin-default"


def decide(report: ScanReport) -> Verdict:
    reasons: list[Reason] = []
    per_file: dict[str, Decision] = {}
    for fr in report.files:
        d = Decision.ALLOW
        for f in fr.findings:
            if f.severity >= Severity.HIGH:
                reasons.append(Reason(decision=Decision.BLOCK, message=f"{f.severity.value}: {f.message}",
                                      path=f.path, rule_id=f.rule_id, policy_ref=f"{POLICY_NAME}: block_severity=high"))
                d = Decision.BLOCK
            elif f.severity is Severity.MEDIUM and d is Decision.ALLOW:
                d = Decision.WARN
        if fr.coverage is not Coverage.FULL:
            reasons.append(Reason(decision=Decision.BLOCK,
                                  message=f"not fully analyzed ({fr.coverage.value}): {'; '.join(fr.coverage_notes) or 'no reason recorded'}",
                                  path=fr.path, policy_ref=f"{POLICY_NAME}: block_unanalyzed=true"))
            d = Decision.BLOCK
        if d is Decision.WARN:
            reasons.append(Reason(decision=Decision.WARN, message="medium-severity findings", path=fr.path,
                                  policy_ref=f"{POLICY_NAME}: warn_severity=medium"))
        per_file[fr.path] = d
    if report.errors:
        for e in report.errors:
            reasons.append(Reason(decision=Decision.BLOCK, message=e, policy_ref=f"{POLICY_NAME}: errors block"))
    overall = Decision.ALLOW
    if any(r.decision is Decision.BLOCK for r in reasons):
        overall = Decision.BLOCK
    elif any(r.decision is Decision.WARN for r in reasons):
        overall = Decision.WARN
    return Verdict(decision=overall, policy=POLICY_NAME, reasons=reasons, file_decisions=per_file)
