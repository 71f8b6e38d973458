"""The scan pipeline: targets -> snapshots -> per-artifact inspection -> ScanReport.

The CLI and every other entry point (pull, check, audit) call this module; it
knows nothing about rendering or exit codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import __version__
from .cache import ResultCache
from .findings import Coverage, FileResult, ScanReport, Severity
from .formats.base import InspectContext, ScanState
from .formats.detect import inspect_with_detection
from .integrity.errors import IntegrityError
from .integrity.hashing import hash_file
from .integrity.scan_hook import apply_signature_status, check_snapshot_signature
from .io.http_session import redact, redact_url
from .io.reader import ReaderError
from .limits import DEFAULT_LIMITS, Limits
from .policy.evaluate import matches
from .policy.loader import Policy
from .policy.scoping import pickle_allowances
from .rules import RuleDB, get_rule_db
from .sources.base import Artifact, Snapshot, SourceError
from .sources.claims import claim_findings
from .targets import resolve


@dataclass
class ScanOptions:
    limits: Limits = DEFAULT_LIMITS
    rules_root: Path | None = None
    compute_sha256: bool = True
    allowed_profiles: list[str] | None = None
    extra_allowed_globals: list[str] = field(default_factory=list)
    source_options: dict[str, object] = field(default_factory=dict)
    policy: Policy | None = None  # scopes pickle allowances per source
    cache: ResultCache | None = None  # reuse verdicts for bytes already hashed and scanned
    signature: str | None = None  # model-signing bundle; default: model.sig beside the model
    signature_keys: list[str] = field(default_factory=list)  # PEM public keys
    signature_chains: list[str] = field(default_factory=list)  # PEM trust anchors
    known_sha256: dict[str, str] = field(default_factory=dict)  # artifact path -> digest already computed
    workers: int = 1  # processes for local folders (zoo audits)
    on_file: Callable[[FileResult], None] | None = None  # progress hook


def _settings_key(opts: ScanOptions) -> str:
    return json.dumps([opts.allowed_profiles, sorted(opts.extra_allowed_globals), repr(opts.limits)])


def inspect_artifact(artifact: Artifact, rules: RuleDB, opts: ScanOptions) -> FileResult:
    """Judge one artifact, from the cache when its bytes were hashed and judged before under the same rules."""
    if opts.cache is None or not artifact.local_path or not opts.compute_sha256:
        return _inspect(artifact, rules, opts)
    try:
        digest = opts.known_sha256.get(artifact.path) or hash_file(artifact.local_path)
    except (OSError, IntegrityError):
        return _inspect(artifact, rules, opts)
    key = opts.cache.key(digest, rules.version, _settings_key(opts))
    hit = opts.cache.get(key)
    if hit is not None:  # same bytes, maybe under another name: re-root every path
        hit.path = artifact.path
        for f in hit.findings:
            f.path = _rebase(f.path, artifact.path)
        hit.members = [_rebase(m, artifact.path) for m in hit.members]
        hit.bytes_read = 0
        hit.findings.extend(claim_findings(artifact, None, digest, rules))
        return hit
    result = _inspect(artifact, rules, opts)
    if result.sha256 == digest:  # unchanged while scanned
        opts.cache.put(key, result)
    return result


def _rebase(path: str, root: str) -> str:
    """``old/name!member`` -> ``root!member``: container member suffixes survive a rename."""
    bang = path.find("!")
    return root if bang < 0 else root + path[bang:]


def _inspect(artifact: Artifact, rules: RuleDB, opts: ScanOptions) -> FileResult:
    """Judge one artifact; every problem becomes a finding or a coverage note, never an exception."""
    result = FileResult(path=artifact.path, size=artifact.size, format="unknown")
    state = ScanState(
        rules=rules,
        limits=opts.limits,
        result=result,
        budget_left=opts.limits.max_total_uncompressed,
        deadline=time.monotonic() + opts.limits.file_seconds,
        allowed_profiles=opts.allowed_profiles,
        extra_allowed_globals=list(opts.extra_allowed_globals),
    )
    ctx = InspectContext(state, artifact.path)
    try:
        reader = artifact.open()
    except (ReaderError, OSError) as exc:
        ctx.add("FILE-UNREADABLE", str(exc))
        ctx.unanalyzable("could not be opened")
        return result
    with reader:
        inspect_with_detection(reader, ctx)
        result.bytes_read = reader.bytes_read
    if artifact.path in opts.known_sha256:
        result.sha256 = opts.known_sha256[artifact.path]
    elif opts.compute_sha256 and artifact.local_path:
        try:
            result.sha256 = hash_file(artifact.local_path)
        except (OSError, IntegrityError) as exc:  # FileChangedError: the bytes moved under the scan
            ctx.add("FILE-READ-ERROR", f"hashing failed: {getattr(exc, 'strerror', None) or exc}")
            ctx.partial("could not be hashed")
    elif getattr(reader, "sha256", None):
        result.sha256 = reader.sha256  # every byte passed through and was hashed on the way
    elif artifact.claimed_sha256:
        result.sha256 = artifact.claimed_sha256  # the registry's claim; lets known-bad digests match pre-download
    result.findings.extend(claim_findings(artifact, reader, result.sha256 if artifact.local_path else None, rules))
    if result.sha256 and result.sha256 in rules.known_bad:
        kb = rules.known_bad[result.sha256]
        ctx.add("KNOWN-MALICIOUS-HASH", f"SHA-256 matches known-malicious artifact {kb.name}",
                evidence={"sha256": result.sha256, "reference": kb.reference or ""})
    return result


def _problem_results(snapshot: Snapshot, rules: RuleDB) -> list[FileResult]:
    """Tree and registry problems as results: unread entries fail closed, notes (info) do not."""
    out = []
    for p in snapshot.problems:
        finding = rules.finding(p.rule_id, p.message, p.path, evidence=dict(p.evidence))
        if p.analyzed or finding.severity is Severity.INFO:
            fr = FileResult(path=p.path, size=0, format="note")
        else:
            fr = FileResult(path=p.path, size=0, format="not-read", coverage=Coverage.NONE, coverage_notes=[p.message])
        fr.findings.append(finding)
        out.append(fr)
    return out


def scan_snapshot(snapshot: Snapshot, opts: ScanOptions, rules: RuleDB | None = None) -> list[FileResult]:
    rules = rules or get_rule_db(opts.rules_root)
    results = _problem_results(snapshot, rules)
    local = all(a.local_path for a in snapshot.artifacts)
    if opts.workers > 1 and local and len(snapshot.artifacts) > opts.workers:
        from .parallel import judge_local

        results.extend(judge_local(snapshot.artifacts, opts, opts.rules_root, opts.workers, opts.on_file))
    else:
        for art in snapshot.artifacts:
            fr = inspect_artifact(art, rules, opts)
            results.append(fr)
            if opts.on_file:
                opts.on_file(fr)
    results.extend(_repo_level(snapshot, results, rules, opts))
    return results


def _repo_level(snapshot: Snapshot, results: list[FileResult], rules: RuleDB, opts: ScanOptions) -> list[FileResult]:
    """Rules that need the whole repository (auto_map code, shard indexes, LFS pointers)."""
    try:
        from .repo import inspect_snapshot
    except ImportError:
        return []
    by_path = {fr.path: fr for fr in results}
    return inspect_snapshot(snapshot, by_path, rules, opts.limits)


def scan_targets(targets: Iterable[str], opts: ScanOptions | None = None) -> ScanReport:
    """Resolve and scan every target. A target that cannot be resolved is a report error, not a crash."""
    opts = opts or ScanOptions()
    rules = get_rule_db(opts.rules_root)
    targets = list(targets)
    report = new_report(targets, rules)
    t0 = time.monotonic()
    multi = len(targets) > 1
    for raw in targets:
        try:
            snap = resolve(raw, **opts.source_options)
        except SourceError as exc:
            report.errors.append(redact(str(exc)))
            continue
        report.files.extend(scan_resolved(snap, opts, rules, qualify=multi or snap.kind != "local"))
    finish_report(report, t0)
    return report


def new_report(targets: list[str], rules: RuleDB) -> ScanReport:
    """A report whose target list carries no credentials (URL userinfo, tokens in query strings)."""
    return ScanReport(scanner_version=__version__, rules_version=rules.version,
                      targets=[redact_url(t) for t in targets])


def finish_report(report: ScanReport, t0: float) -> None:
    report.duration_seconds = round(time.monotonic() - t0, 3)
    report.bytes_read = sum(f.bytes_read for f in report.files)
    report.total_size = sum(f.size for f in report.files)


def scan_resolved(snap: Snapshot, opts: ScanOptions, rules: RuleDB, *, qualify: bool) -> list[FileResult]:
    """Scan one resolved snapshot with the policy's per-source settings and its signature, if any."""
    src = source_uri(snap)
    snap_opts = opts
    if opts.policy is not None:
        profiles, extra = pickle_allowances(opts.policy, src)
        snap_opts = replace(opts, allowed_profiles=profiles if profiles is not None else opts.allowed_profiles,
                            extra_allowed_globals=[*opts.extra_allowed_globals, *extra])
    keys, chains = signature_trust(opts, src)
    outcome = check_snapshot_signature(snap, rules, signature=opts.signature, keys=keys, chains=chains)
    if outcome is not None and outcome.digests:
        snap_opts = replace(snap_opts, known_sha256={**snap_opts.known_sha256, **outcome.digests})
    file_results = scan_snapshot(snap, snap_opts, rules)
    if outcome is not None:
        apply_signature_status(file_results, outcome, rules)
        file_results.extend(outcome.extra_results)
    for fr in file_results:
        fr.source = src
        if qualify:
            old, new = fr.path, _qualify(snap, fr.path)
            fr.path = new
            fr.members = [new + m[len(old):] if m.startswith(old) else m for m in fr.members]
            for f in fr.findings:
                f.path = new + f.path[len(old):] if f.path.startswith(old) else f.path
    return file_results


def signature_trust(opts: ScanOptions, source: str) -> tuple[list[str], list[str]]:
    """Keys and chains to verify with: the command line's, plus the policy's trust entries for this source."""
    keys, chains = list(opts.signature_keys), list(opts.signature_chains)
    if opts.policy is not None:
        for entry in opts.policy.get("signatures", "trust", default=[]) or []:
            if any(matches(p, source) for p in entry["sources"]):
                keys.extend(entry.get("keys") or [])
                chains.extend(entry.get("chains") or [])
    return keys, chains


def source_uri(snap: Snapshot) -> str:
    """The target as policies match it: remote URIs as given, local paths as absolute file:// URIs."""
    if snap.kind == "local":
        return "file://" + snap.resolved
    return redact_url(snap.target)


def _qualify(snap: Snapshot, path: str) -> str:
    base = redact_url(snap.target).rstrip("/")
    if snap.kind == "local" and len(snap.artifacts) == 1 and not snap.problems and Path(snap.resolved).is_file():
        return base
    return f"{base}/{path}"
