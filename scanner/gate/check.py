"""`modelward lock` and `modelward check`: pin model dependencies, then gate CI on drift, content and policy.

Drift (a moved branch, a changed digest, a new or missing file, a missing pin)
always blocks, whatever the policy says: the lockfile is the project's reviewed
statement of what it runs. Content and signatures are judged by each
dependency's policy.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..cache import ResultCache
from ..engine import reroot
from ..findings import Decision, FileResult, Reason, ScanReport, Severity, Verdict
from ..integrity.scan_hook import check_snapshot_signature
from ..pipeline import Pipeline, finish_report, new_report, source_uri, under
from ..policy.decide import decide
from ..policy.loader import Policy, load_policy
from ..policy.scan_settings import compile_scan_settings
from ..rules import RuleDB, get_rule_db
from ..settings import ScanOptions
from ..sources.base import Artifact, Snapshot, SourceError
from ..targets import parse_target, resolve
from .config import ConfigError, Dependency, ProjectConfig
from .lockfile import CODE_FORMATS, Lock, LockedModel, is_code_path, lock_snapshot, locked_source, read_lock

MOVING_KINDS = ("hf", "oci")


@dataclass
class GateOptions:
    source_options: dict[str, object] = field(default_factory=dict)
    cache: ResultCache | None = None
    policy_override: str | None = None
    today: date | None = None
    rules_root: Path | None = None  # a candidate rule database (check --rules-dir)


def run_lock(config: ProjectConfig, *, upgrade: set[str] | None, opts: GateOptions) -> tuple[Lock, list[str]]:
    """Pin every declared model; keep existing pins unless upgraded (``upgrade`` empty set = all)."""
    existing = read_lock(config.lock_path) if config.lock_path.exists() else Lock(config.lock_path, {})
    unknown = (upgrade or set()) - set(config.models)
    if unknown:
        raise ConfigError(f"{config.path}: --upgrade names undeclared model(s): {', '.join(sorted(unknown))}")
    messages: list[str] = []
    models: dict[str, LockedModel] = {}
    for name, dep in sorted(config.models.items()):
        old = existing.models.get(name)
        wants_upgrade = upgrade is not None and (not upgrade or name in upgrade)
        if old is not None and old.source == locked_source(dep.source) and not wants_upgrade:
            models[name] = old
            continue
        try:
            snap = resolve(config.target_for(dep), **opts.source_options)
        except SourceError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        models[name] = lock_snapshot(name, dep.source, snap, _verified_signer(config, dep, snap))
        if old is None:
            messages.append(f"{name}: pinned {models[name].resolved} ({len(models[name].files)} files)")
        elif old.resolved != models[name].resolved:
            messages.append(f"{name}: {old.resolved} -> {models[name].resolved}")
        else:
            messages.append(f"{name}: unchanged at {old.resolved}")
    for name in sorted(set(existing.models) - set(models)):
        messages.append(f"{name}: removed (no longer declared)")
    lock = Lock(config.lock_path, models, get_rule_db(opts.rules_root).version)
    lock.write()
    return lock, messages


def _verified_signer(config: ProjectConfig, dep: Dependency, snap: Snapshot) -> str | None:
    """The identity whose signature verified this snapshot under the dependency's policy trust, if any."""
    policy = load_policy(config.policy_spec(dep.policy or config.policy))
    opts = ScanOptions(scoped=compile_scan_settings(policy)).for_source(source_uri(snap))
    outcome = check_snapshot_signature(
        snap,
        get_rule_db(),
        signature=None,
        keys=opts.signature_keys,
        chains=opts.signature_chains,
        identities=opts.signature_identities,
    )
    if (
        outcome is None
        or outcome.signer is None
        or any(v == "mismatch" for v in outcome.status.values())
        or not any(v == "verified" for v in outcome.status.values())
    ):
        return None
    return outcome.signer


class _Drift:
    def __init__(self, rules: RuleDB, lock_path: str) -> None:
        self.rules = rules
        self.lock_path = lock_path
        self.reasons: list[Reason] = []

    def note(self, fr: FileResult, rule_id: str, message: str, **evidence: str) -> None:
        """Drift a lockfile tolerates (an upstream branch moved past the pin): shown, never blocking."""
        fr.findings.append(
            self.rules.finding(rule_id, message, fr.path, severity=Severity.INFO, evidence=evidence or None)
        )

    def add(self, fr: FileResult, rule_id: str, message: str, **evidence: str) -> None:
        f = self.rules.finding(rule_id, message, fr.path, evidence=evidence or None)
        fr.findings.append(f)
        self.reasons.append(
            Reason(
                decision=Decision.BLOCK,
                message=message,
                path=fr.path,
                rule_id=rule_id,
                policy_ref=f"{self.lock_path} (lock drift always blocks)",
            )
        )


def _placeholder(path: str, fmt: str = "lock") -> FileResult:
    return FileResult(path=path, size=0, format=fmt)


def _check_dependency(
    config: ProjectConfig,
    dep: Dependency,
    locked: LockedModel,
    policy: Policy,
    rules: RuleDB,
    drift: _Drift,
    opts: GateOptions,
) -> tuple[list[FileResult], list[str]]:
    errors: list[str] = []
    head = _placeholder(dep.name)
    extra: list[FileResult] = []
    target = config.target_for(dep)
    if locked.source != locked_source(dep.source):
        drift.add(
            head,
            "LOCK-SOURCE-CHANGED",
            f"{dep.name}: declared source {locked_source(dep.source)} but locked {locked.source}; "
            f"`modelward lock --upgrade {dep.name}` pins the declared source",
        )
        extra.append(head)
        return extra, errors
    try:
        kind = parse_target(target).kind
        if kind != locked.kind:
            drift.add(
                head,
                "LOCK-SOURCE-CHANGED",
                f"{dep.name}: declared source is {kind}, but the lock pins a {locked.kind} source; "
                f"`modelward lock --upgrade {dep.name}` pins the declared source",
            )
            extra.append(head)
            return extra, errors
        if kind in MOVING_KINDS:
            current = resolve(target, **opts.source_options)
            if current.resolved != locked.resolved:
                # Like uv/npm: check verifies what the lock pins; a moved branch is news, not a failure,
                # unless the policy asks for fresh pins (lock.fresh: true).
                report = drift.add if policy.spec.lock.fresh else drift.note
                report(
                    head,
                    "LOCK-REF-MOVED",
                    f"{dep.name}: {dep.source} now resolves to {current.resolved}, locked {locked.resolved}; "
                    f"`modelward lock --upgrade {dep.name}` moves the pin",
                    locked=locked.resolved,
                    current=current.resolved,
                )
                extra.append(head)
            snap: Snapshot = resolve(locked.pinned_target(target), **opts.source_options)
        else:
            snap = resolve(target, **opts.source_options)
    except SourceError as exc:
        errors.append(f"{dep.name}: {exc}")
        return extra, errors
    scan_opts = ScanOptions(
        scoped=compile_scan_settings(policy),
        cache=opts.cache,
        source_options=opts.source_options,
        rules_root=opts.rules_root,
    )
    reuse = None
    if opts.cache is not None and snap.kind != "local":
        reuse, scan_opts.on_file = _remote_cache(snap, opts.cache, rules, policy)
    scanned = Pipeline(rules, scan_opts).scan(snap, reuse=reuse)
    results = scanned.files
    errors.extend(f"{dep.name}: {e}" for e in scanned.errors)  # network faults: the check did not complete
    by_path = {fr.path: fr for fr in results}
    pinned = {f.path: f for f in locked.files}
    for art in snap.artifacts:
        fr = by_path.get(art.path)
        want = pinned.get(art.path)
        if fr is None:
            continue
        if want is None:
            drift.add(
                fr,
                "LOCK-FILE-ADDED",
                f"{dep.name}: {art.path} is not in the lockfile; review it, then "
                f"`modelward lock --upgrade {dep.name}`",
            )
            continue
        got = fr.sha256 or art.claimed_sha256
        if got is None and snap.kind not in MOVING_KINDS:
            # nothing pins these bytes but the lock's digest (a commit or manifest digest does for hf/oci), and
            # nobody hashed them: the pin cannot be checked, which is drift whatever the policy says
            drift.add(
                fr,
                "LOCK-DIGEST-CHANGED",
                f"{dep.name}: {art.path} could not be hashed, so it cannot be matched to its pin (sha256 "
                f"{want.sha256}); fix what the report says about the file and check again",
                locked=want.sha256,
                actual="",
            )
            continue
        if art.size != want.size or (got is not None and got != want.sha256):
            if _is_code(fr, want.code):
                drift.add(
                    fr,
                    "LOCK-CODE-CHANGED",
                    f"{dep.name}: code file {art.path} changed since it was locked (sha256 {got}, locked "
                    f"{want.sha256}); review the new code, then `modelward lock --upgrade {dep.name}`",
                    locked=want.sha256,
                    actual=got or "",
                )
                continue
            drift.add(
                fr,
                "LOCK-DIGEST-CHANGED",
                f"{dep.name}: {art.path} is {art.size} bytes sha256 {got}, locked {want.size} bytes sha256 "
                f"{want.sha256}; if the change is expected, `modelward lock --upgrade {dep.name}`",
                locked=want.sha256,
                actual=got or "",
            )
    present = {a.path for a in snap.artifacts}
    for path in sorted(set(pinned) - present):
        fr = _placeholder(path, "missing")
        drift.add(
            fr,
            "LOCK-FILE-MISSING",
            f"{dep.name}: locked file {path} is missing; restore it or `modelward lock --upgrade {dep.name}`",
        )
        extra.append(fr)
    signers = {fr.signer for fr in results if fr.signer}
    if locked.signer and locked.signer not in signers:
        drift.add(
            head,
            "LOCK-SIGNER-CHANGED",
            f"{dep.name}: locked signer {locked.signer}, now {', '.join(sorted(signers)) or 'no verified signature'}"
            f"; if the new signer is trusted, `modelward lock --upgrade {dep.name}`",
        )
        if head not in extra:
            extra.append(head)
    return results + extra, errors


def _remote_cache(
    snap: Snapshot, cache: ResultCache, rules: RuleDB, policy: Policy
) -> tuple[Callable[[Artifact], FileResult | None], Callable[[FileResult], None]]:
    """Results for registry files, keyed by what makes their bytes immutable: the pinned commit or manifest
    digest, the path and the registry's content digest (part of that commit), plus rules and policy.

    The second check of an unchanged project re-reads nothing from the registry.
    """
    settings = hashlib.sha256(
        json.dumps([policy.name, policy.data], sort_keys=True, default=str).encode()
    ).hexdigest()
    by_path = {a.path: a for a in snap.artifacts}

    def key(art: Artifact) -> str | None:
        digest = art.claimed_sha256 or art.claimed_git_sha1
        if not digest or not snap.resolved:
            return None
        return cache.key(f"remote:{snap.kind}:{snap.resolved}:{art.path}:{digest}", rules.version, settings)

    def reuse(art: Artifact) -> FileResult | None:
        k = key(art)
        hit = cache.get(k) if k else None
        if hit is not None:
            hit.path, hit.bytes_read, hit.cached = art.path, 0, True
        return hit

    def store(fr: FileResult) -> None:
        art = by_path.get(fr.path)
        k = key(art) if art is not None and not fr.cached else None
        if k and not snap.errors:
            cache.put(k, fr)

    return reuse, store


def _is_code(fr: FileResult, locked_as_code: bool) -> bool:
    """Code a loader may run: marked so in the lock, named or detected as code, or flagged as executed."""
    return (
        locked_as_code
        or is_code_path(fr.path)
        or bool(set(fr.formats or [fr.format]) & CODE_FORMATS)
        or any(f.rule_id == "CODE-EXECUTED-BY-LOADER" for f in fr.findings)
    )


def _prefix(name: str, files: list[FileResult], verdict: Verdict, reasons: list[Reason]) -> None:
    """Show every path under its dependency name, after the policy matched the paths as written."""

    move = under(name)
    reroot(files, move)
    for r in [*verdict.reasons, *reasons]:
        r.path = move(r.path) if r.path is not None else None
    verdict.file_decisions = {move(k): v for k, v in verdict.file_decisions.items()}


def run_check(config: ProjectConfig, opts: GateOptions) -> ScanReport:
    rules = get_rule_db(opts.rules_root)
    if not config.lock_path.exists():
        raise ConfigError(f"{config.lock_path}: no lockfile; run `modelward lock` and commit it")
    lock = read_lock(config.lock_path)
    lock_shown = config.lock_path.name
    report = new_report([d.source for d in config.models.values()], rules)
    t0 = time.monotonic()
    drift = _Drift(rules, lock_shown)
    verdicts: list[Verdict] = []
    blocked_by: list[str] = []  # per-model policies that blocked, named in the verdict line
    for name, dep in sorted(config.models.items()):
        spec = opts.policy_override or dep.policy or config.policy
        policy = load_policy(config.policy_spec(spec))
        locked = lock.models.get(name)
        if locked is None:
            fr = _placeholder(name)
            drift.add(
                fr,
                "LOCK-MISSING-PIN",
                f"{name}: declared in {config.path.name} but not pinned in {lock_shown}; run `modelward lock`",
            )
            report.files.append(fr)
            continue
        dep_drift = _Drift(rules, lock_shown)
        files, errors = _check_dependency(config, dep, locked, policy, rules, dep_drift, opts)
        sub = new_report([dep.source], rules)
        sub.files, sub.errors = files, errors
        verdict = decide(sub, policy, rules, today=opts.today)  # adds the policy findings to files
        _prefix(name, files, verdict, dep_drift.reasons)
        verdicts.append(verdict)
        if spec != (opts.policy_override or config.policy) and (
            verdict.decision is Decision.BLOCK or dep_drift.reasons
        ):
            blocked_by.append(f"{name}: {spec}")
        drift.reasons.extend(dep_drift.reasons)
        report.files.extend(files)
        report.errors.extend(errors)
    for name in sorted(set(lock.models) - set(config.models)):
        fr = _placeholder(name)
        drift.add(
            fr,
            "LOCK-STALE-PIN",
            f"{name}: pinned in {lock_shown} but no longer declared; run `modelward lock`",
        )
        report.files.append(fr)
    finish_report(report, t0)
    shown = opts.policy_override or config.policy
    report.verdict = _combine(
        verdicts, drift.reasons, report.errors, shown + (f"; {', '.join(blocked_by)}" if blocked_by else "")
    )
    return report


def _combine(verdicts: list[Verdict], drift: list[Reason], errors: list[str], name: str) -> Verdict:
    reasons = [r for v in verdicts for r in v.reasons if r.message not in errors] + drift
    reasons += [
        Reason(decision=Decision.BLOCK, message=e, policy_ref="check could not complete") for e in errors
    ]
    per_file: dict[str, Decision] = {}
    for v in verdicts:
        per_file.update(v.file_decisions)
    for r in drift:
        if r.path:
            per_file[r.path] = Decision.BLOCK
    overall = Decision.ALLOW
    if any(r.decision is Decision.BLOCK for r in reasons):
        overall = Decision.BLOCK
    elif any(r.decision is Decision.WARN for r in reasons):
        overall = Decision.WARN
    return Verdict(decision=overall, policy=name, reasons=reasons, file_decisions=per_file)
