"""Apply a Policy to a ScanReport: allow / warn / block, each reason pointing at a finding and a policy line.

``evaluate`` is pure: it reads the report and returns the verdict together with
the policy's own findings (expired exceptions, denied sources or formats,
missing signatures), made with the rule database it is given. Adding those
findings to the report, so SARIF and JSON show them like any other, is the
caller's explicit step (``decide.apply_findings``); a report can be judged
twice, or under two policies, without one judgement leaking into the other.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..findings import Coverage, Decision, FileResult, Finding, Reason, ScanReport, Verdict
from ..resources import rules_version_key
from ..rules import RuleDB
from .code_trust import find_trust, member_paths
from .loader import Policy
from .model import PolicyException

_ORDER = {Decision.ALLOW: 0, Decision.WARN: 1, Decision.BLOCK: 2}


@dataclass(frozen=True)
class PolicyFinding:
    """A finding the policy raised about ``report.files[file_index]``."""

    file_index: int
    finding: Finding


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    findings: tuple[PolicyFinding, ...] = ()


def matches(pattern: str, *candidates: str | None) -> bool:
    return any(c is not None and fnmatch.fnmatchcase(c, pattern) for c in candidates)


def _relative(fr: FileResult, path: str) -> str:
    """A path inside the target, as exception patterns are written."""
    if fr.source:
        for prefix in (fr.source.rstrip("/") + "/", fr.source.removeprefix("file://").rstrip("/") + "/"):
            if path.startswith(prefix):
                return path[len(prefix) :]
    return path


class _FileEval:
    """One file's reasons and decision; policy findings are collected, never added to ``fr``."""

    def __init__(self, policy: Policy, fr: FileResult, rules: RuleDB, today: date) -> None:
        self.p = policy
        self.spec = policy.spec
        self.fr = fr
        self.rules = rules
        self.today = today
        self.reasons: list[Reason] = []
        self.findings: list[Finding] = []
        self.decision = Decision.ALLOW

    def _raise(
        self, d: Decision, message: str, ref: str, rule_id: str | None = None, path: str | None = None
    ) -> None:
        self.reasons.append(
            Reason(decision=d, message=message, path=path or self.fr.path, rule_id=rule_id, policy_ref=ref)
        )
        if _ORDER[d] > _ORDER[self.decision]:
            self.decision = d

    def _policy_finding(self, rule_id: str, message: str, evidence: dict[str, Any] | None = None) -> Finding:
        f = self.rules.finding(rule_id, message, self.fr.path, evidence=evidence)
        self.findings.append(f)
        return f

    def _exception_for(self, f: Finding) -> tuple[int, PolicyException] | None:
        for i, ex in enumerate(self.spec.exceptions):
            if not fnmatch.fnmatchcase(f.rule_id, ex.rule):
                continue
            if ex.source is not None and not matches(ex.source, self.fr.source):
                continue
            if ex.path is not None and not matches(
                ex.path, _relative(self.fr, self.fr.path), _relative(self.fr, f.path), f.path
            ):
                continue
            if ex.sha256 is not None and ex.sha256 != (self.fr.sha256 or ""):
                continue
            return i, ex
        return None

    def _trusted(self, f: Finding) -> bool:
        """CODE-EXECUTED-BY-LOADER allowed by a trusted_code entry (an expired one is reported and does not count)."""
        if not self.spec.trusted_code:
            return False
        paths = [*member_paths(_relative(self.fr, f.path)), *member_paths(f.path)]
        hit = find_trust(self.spec.trusted_code, f, self.fr.source, paths, self.today)
        if hit is None:
            return False
        if hit.expired:
            e = self._policy_finding(
                "POLICY-EXCEPTION-EXPIRED",
                f"trusted_code entry ({hit.entry.describe()}) expired on {hit.entry.expires} ({hit.entry.reason})",
                {"exception_rule": f.rule_id, "owner": hit.entry.owner or ""},
            )
            self._raise(
                Decision.BLOCK, e.message, self.p.ref("trusted_code", hit.index, "expires"), e.rule_id, f.path
            )
            return False
        self._raise(
            Decision.ALLOW,
            f"trusted code ({hit.entry.describe()}): {hit.entry.reason}",
            self.p.ref("trusted_code", hit.index),
            f.rule_id,
            f.path,
        )
        return True

    def run(self) -> None:
        self._sources()
        self._size()
        self._formats()
        self._signatures()
        self._findings()
        self._coverage()

    def _sources(self) -> None:
        src = self.fr.source
        for i, pat in enumerate(self.spec.sources.deny):
            if matches(pat, src):
                f = self._policy_finding(
                    "POLICY-SOURCE-DENIED", f"source {src} matches denied pattern {pat!r}"
                )
                self._raise(Decision.BLOCK, f.message, self.p.ref("sources", "deny", i), f.rule_id)
                return
        allow = self.spec.sources.allow
        if allow is not None and not any(matches(pat, src) for pat in allow):
            f = self._policy_finding(
                "POLICY-SOURCE-DENIED", f"source {src} matches no allowed source pattern"
            )
            self._raise(Decision.BLOCK, f.message, self.p.ref("sources", "allow"), f.rule_id)

    def _size(self) -> None:
        cap = self.spec.max_bytes
        if cap is not None and self.fr.size > cap:
            f = self._policy_finding(
                "POLICY-FILE-TOO-LARGE", f"{self.fr.size} bytes exceeds max_file_size {cap}"
            )
            self._raise(Decision.BLOCK, f.message, self.p.ref("max_file_size"), f.rule_id)

    def _formats(self) -> None:
        seen = self.fr.formats or [self.fr.format]
        allow = self.spec.formats.allow
        bad = [fmt for fmt in seen if fmt in self.spec.formats.deny]
        ref = self.p.ref("formats", "deny")
        if not bad and allow is not None:
            bad = [fmt for fmt in seen if fmt not in allow and fmt not in ("empty",)]
            ref = self.p.ref("formats", "allow")
        if bad:
            f = self._policy_finding(
                "POLICY-FORMAT-DENIED", f"format {', '.join(bad)} not allowed by policy", {"formats": seen}
            )
            self._raise(Decision.BLOCK, f.message, ref, f.rule_id)

    def _signatures(self) -> None:
        if (
            self.spec.signatures.required
            and self.fr.signature not in ("verified", "signature-file")
            and self.fr.format not in ("not-read", "note")
        ):
            state = self.fr.signature or "unsigned"
            f = self._policy_finding("POLICY-SIGNATURE-REQUIRED", f"signature required; file is {state}")
            self._raise(Decision.BLOCK, f.message, self.p.ref("signatures", "required"), f.rule_id)

    def _findings(self) -> None:
        block, warn = self.spec.block_at, self.spec.warn_at
        overrides = self.spec.severity_overrides
        for f in self.fr.findings:  # the scan's findings; the policy's own were decided above
            if f.rule_id.startswith("POLICY-") and f.rule_id != "POLICY-EXCEPTION-EXPIRED":
                continue
            sev = overrides.get(f.rule_id, f.severity)
            ref_sev = self.p.ref("severity_overrides", f.rule_id) if f.rule_id in overrides else None
            if self._trusted(f):
                continue
            hit = self._exception_for(f) if f.rule_id != "POLICY-EXCEPTION-EXPIRED" else None
            if hit is not None:
                i, ex = hit
                if ex.expires >= self.today:
                    self._raise(
                        Decision.ALLOW,
                        f"waived until {ex.expires}: {ex.reason}",
                        self.p.ref("exceptions", i),
                        f.rule_id,
                        f.path,
                    )
                    continue
                e = self._policy_finding(
                    "POLICY-EXCEPTION-EXPIRED",
                    f"exception for {f.rule_id} expired on {ex.expires} ({ex.reason})",
                    {"exception_rule": ex.rule, "owner": ex.owner or ""},
                )
                self._raise(
                    Decision.BLOCK if block and e.severity >= block else Decision.WARN,
                    e.message,
                    self.p.ref("exceptions", i, "expires"),
                    e.rule_id,
                )
            if block is not None and sev >= block:
                self._raise(
                    Decision.BLOCK,
                    f"{sev.value}: {f.message}",
                    ref_sev or self.p.ref("block_severity"),
                    f.rule_id,
                    f.path,
                )
            elif warn is not None and sev >= warn:
                self._raise(
                    Decision.WARN,
                    f"{sev.value}: {f.message}",
                    ref_sev or self.p.ref("warn_severity"),
                    f.rule_id,
                    f.path,
                )

    def _coverage(self) -> None:
        if self.fr.coverage is Coverage.FULL:
            return
        why = "; ".join(self.fr.coverage_notes) or "no reason recorded"
        msg = f"not fully analyzed ({self.fr.coverage.value}): {why}"
        d = Decision.BLOCK if self.spec.block_unanalyzed else Decision.WARN
        self._raise(d, msg, self.p.ref("block_unanalyzed"))


def _rules_version_reasons(report: ScanReport, policy: Policy) -> list[Reason]:
    """A policy may demand a rule database at least as new as ``rules.min_version`` (a defence update)."""
    wanted = policy.spec.rules.min_version
    if not wanted or rules_version_key(report.rules_version) >= rules_version_key(wanted):
        return []
    return [
        Reason(
            decision=Decision.BLOCK,
            policy_ref=policy.ref("rules", "min_version"),
            message=f"rule database {report.rules_version} is older than the policy's minimum {wanted}; "
            "run `modelward rules update`",
        )
    ]


def evaluate(report: ScanReport, policy: Policy, rules: RuleDB, today: date | None = None) -> Evaluation:
    """The verdict and the policy's findings for ``report``; neither the report nor its files change."""
    today = today or date.today()
    reasons: list[Reason] = []
    per_file: dict[str, Decision] = {}
    found: list[PolicyFinding] = []
    for i, fr in enumerate(report.files):
        ev = _FileEval(policy, fr, rules, today)
        ev.run()
        reasons.extend(ev.reasons)
        per_file[fr.path] = ev.decision
        found.extend(PolicyFinding(i, f) for f in ev.findings)
    for e in report.errors:
        reasons.append(Reason(decision=Decision.BLOCK, message=e, policy_ref="scan could not complete"))
    reasons.extend(_rules_version_reasons(report, policy))
    overall = Decision.ALLOW
    if any(r.decision is Decision.BLOCK for r in reasons):
        overall = Decision.BLOCK
    elif any(r.decision is Decision.WARN for r in reasons):
        overall = Decision.WARN
    verdict = Verdict(decision=overall, policy=policy.name, reasons=reasons, file_decisions=per_file)
    return Evaluation(verdict, tuple(found))
