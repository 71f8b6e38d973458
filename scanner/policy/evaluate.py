"""Apply a Policy to a ScanReport: allow / warn / block, each reason pointing at a finding and a policy line.

Policy findings (expired exceptions, denied sources or formats, missing
signatures) are added to the report, so SARIF and JSON show them like any
other finding.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import date
from typing import Any

from ..findings import Coverage, Decision, FileResult, Finding, Reason, ScanReport, Severity, Verdict
from ..rules import get_rule_db
from .code_trust import find_trust, member_paths
from .loader import Policy

NEVER = "never"


def _sev(value: str | None, default: str) -> Severity | None:
    v = value or default
    return None if v == NEVER else Severity.parse(v)


def parse_size(value: int | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
    if not m:
        raise ValueError(f"not a size: {value!r}")
    units = {
        "": 1,
        "B": 1,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "KIB": 1 << 10,
        "MIB": 1 << 20,
        "GIB": 1 << 30,
        "TIB": 1 << 40,
    }
    return int(float(m.group(1)) * units[m.group(2).upper()])


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
    def __init__(self, policy: Policy, fr: FileResult, today: date) -> None:
        self.p = policy
        self.fr = fr
        self.today = today
        self.reasons: list[Reason] = []
        self.decision = Decision.ALLOW
        self.rules = get_rule_db()

    def _raise(
        self, d: Decision, message: str, ref: str, rule_id: str | None = None, path: str | None = None
    ) -> None:
        self.reasons.append(
            Reason(decision=d, message=message, path=path or self.fr.path, rule_id=rule_id, policy_ref=ref)
        )
        order = {Decision.ALLOW: 0, Decision.WARN: 1, Decision.BLOCK: 2}
        if order[d] > order[self.decision]:
            self.decision = d

    def _policy_finding(self, rule_id: str, message: str, evidence: dict[str, Any] | None = None) -> Finding:
        f = self.rules.finding(rule_id, message, self.fr.path, evidence=evidence)
        self.fr.findings.append(f)
        return f

    def _exception_for(self, f: Finding) -> tuple[int, dict[str, Any]] | None:
        for i, ex in enumerate(self.p.get("exceptions", default=[]) or []):
            if not fnmatch.fnmatchcase(f.rule_id, ex["rule"]):
                continue
            if "source" in ex and not matches(ex["source"], self.fr.source):
                continue
            if "path" in ex and not matches(
                ex["path"], _relative(self.fr, self.fr.path), _relative(self.fr, f.path), f.path
            ):
                continue
            if "sha256" in ex and ex["sha256"] != (self.fr.sha256 or ""):
                continue
            return i, ex
        return None

    def _trusted(self, f: Finding) -> bool:
        """CODE-EXECUTED-BY-LOADER allowed by a trusted_code entry (an expired one is reported and does not count)."""
        entries = self.p.get("trusted_code", default=[]) or []
        if not entries:
            return False
        paths = [*member_paths(_relative(self.fr, f.path)), *member_paths(f.path)]
        hit = find_trust(entries, f, self.fr.source, paths, self.today)
        if hit is None:
            return False
        what = (
            f"sha256 {hit.entry['sha256']}" if "sha256" in hit.entry else f"source {hit.entry.get('source')}"
        )
        if hit.expired:
            e = self._policy_finding(
                "POLICY-EXCEPTION-EXPIRED",
                f"trusted_code entry ({what}) expired on {hit.entry['expires']} ({hit.entry['reason']})",
                {"exception_rule": f.rule_id, "owner": hit.entry.get("owner", "")},
            )
            self._raise(
                Decision.BLOCK, e.message, self.p.ref("trusted_code", hit.index, "expires"), e.rule_id, f.path
            )
            return False
        self._raise(
            Decision.ALLOW,
            f"trusted code ({what}): {hit.entry['reason']}",
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
        allow = self.p.get("sources", "allow")
        deny = self.p.get("sources", "deny") or []
        for i, pat in enumerate(deny):
            if matches(pat, src):
                f = self._policy_finding(
                    "POLICY-SOURCE-DENIED", f"source {src} matches denied pattern {pat!r}"
                )
                self._raise(Decision.BLOCK, f.message, self.p.ref("sources", "deny", i), f.rule_id)
                return
        if allow is not None and not any(matches(pat, src) for pat in allow):
            f = self._policy_finding(
                "POLICY-SOURCE-DENIED", f"source {src} matches no allowed source pattern"
            )
            self._raise(Decision.BLOCK, f.message, self.p.ref("sources", "allow"), f.rule_id)

    def _size(self) -> None:
        cap = parse_size(self.p.get("max_file_size"))
        if cap is not None and self.fr.size > cap:
            f = self._policy_finding(
                "POLICY-FILE-TOO-LARGE", f"{self.fr.size} bytes exceeds max_file_size {cap}"
            )
            self._raise(Decision.BLOCK, f.message, self.p.ref("max_file_size"), f.rule_id)

    def _formats(self) -> None:
        seen = self.fr.formats or [self.fr.format]
        allow = self.p.get("formats", "allow")
        deny = self.p.get("formats", "deny") or []
        bad = [fmt for fmt in seen if fmt in deny]
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
            self.p.get("signatures", "required")
            and self.fr.signature not in ("verified", "signature-file")
            and self.fr.format not in ("not-read", "note")
        ):
            state = self.fr.signature or "unsigned"
            f = self._policy_finding("POLICY-SIGNATURE-REQUIRED", f"signature required; file is {state}")
            self._raise(Decision.BLOCK, f.message, self.p.ref("signatures", "required"), f.rule_id)

    def _findings(self) -> None:
        block = _sev(self.p.get("block_severity"), "high")
        warn = _sev(self.p.get("warn_severity"), "medium")
        overrides = self.p.get("severity_overrides", default={}) or {}
        for f in list(self.fr.findings):
            if f.rule_id.startswith("POLICY-") and f.rule_id != "POLICY-EXCEPTION-EXPIRED":
                continue  # already decided above
            sev = Severity.parse(overrides[f.rule_id]) if f.rule_id in overrides else f.severity
            ref_sev = self.p.ref("severity_overrides", f.rule_id) if f.rule_id in overrides else None
            if self._trusted(f):
                continue
            hit = self._exception_for(f) if f.rule_id != "POLICY-EXCEPTION-EXPIRED" else None
            if hit is not None:
                i, ex = hit
                exp = date.fromisoformat(ex["expires"])
                if exp >= self.today:
                    self._raise(
                        Decision.ALLOW,
                        f"waived until {ex['expires']}: {ex['reason']}",
                        self.p.ref("exceptions", i),
                        f.rule_id,
                        f.path,
                    )
                    continue
                e = self._policy_finding(
                    "POLICY-EXCEPTION-EXPIRED",
                    f"exception for {f.rule_id} expired on {ex['expires']} ({ex['reason']})",
                    {"exception_rule": ex["rule"], "owner": ex.get("owner", "")},
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
        if self.p.get("block_unanalyzed", default=True):
            self._raise(Decision.BLOCK, msg, self.p.ref("block_unanalyzed"))
        else:
            self._raise(Decision.WARN, msg, self.p.ref("block_unanalyzed"))


def _rules_version_reasons(report: ScanReport, policy: Policy) -> list[Reason]:
    """A policy may demand a rule database at least as new as ``rules.min_version`` (a defence update)."""
    from ..resources import rules_version_key

    wanted = policy.get("rules", "min_version")
    if not wanted or rules_version_key(report.rules_version) >= rules_version_key(str(wanted)):
        return []
    return [
        Reason(
            decision=Decision.BLOCK,
            policy_ref=policy.ref("rules", "min_version"),
            message=f"rule database {report.rules_version} is older than the policy's minimum {wanted}; "
            "run `modelward rules update`",
        )
    ]


def evaluate(report: ScanReport, policy: Policy, today: date | None = None) -> Verdict:
    today = today or date.today()
    reasons: list[Reason] = []
    per_file: dict[str, Decision] = {}
    for fr in report.files:
        ev = _FileEval(policy, fr, today)
        ev.run()
        reasons.extend(ev.reasons)
        per_file[fr.path] = ev.decision
    for e in report.errors:
        reasons.append(Reason(decision=Decision.BLOCK, message=e, policy_ref="scan could not complete"))
    reasons.extend(_rules_version_reasons(report, policy))
    overall = Decision.ALLOW
    if any(r.decision is Decision.BLOCK for r in reasons):
        overall = Decision.BLOCK
    elif any(r.decision is Decision.WARN for r in reasons):
        overall = Decision.WARN
    return Verdict(decision=overall, policy=policy.name, reasons=reasons, file_decisions=per_file)
