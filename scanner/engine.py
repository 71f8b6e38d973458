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
from .integrity.errors import FileChangedError, IntegrityError
from .integrity.scan_hook import apply_signature_status, check_snapshot_signature
from .integrity.trust import KeylessTrust, keyless_trust_entries
from .io.reader import FileReader, Reader, ReaderError
from .io.redaction import redact, redact_url
from .limits import DEFAULT_LIMITS, Limits
from .policy.evaluate import matches
from .policy.loader import Policy
from .policy.scoping import pickle_allowances
from .rules import RuleDB, get_rule_db
from .selection import Selection
from .selection import apply as select
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
    signature_identities: list[KeylessTrust] = field(default_factory=list)  # Sigstore keyless signers
    known_sha256: dict[str, str] = field(default_factory=dict)  # artifact path -> digest already computed
    workers: int = 1  # processes for local folders (zoo audits)
    on_file: Callable[[FileResult], None] | None = None  # progress hook
    # audit: a still-valid earlier result, or None
    reuse: Callable[[Artifact], FileResult | None] | None = None
    dask_address: str | None = None  # judge local files on this Dask scheduler instead of local processes
    selection: Selection | None = None  # --include/--exclude/.modelwardignore: files left out (and reported)


def _settings_key(opts: ScanOptions) -> str:
    return json.dumps([opts.allowed_profiles, sorted(opts.extra_allowed_globals), repr(opts.limits)])


def inspect_artifact(artifact: Artifact, rules: RuleDB, opts: ScanOptions) -> FileResult:
    """Judge one artifact, from the cache when its bytes were hashed and judged before under the same rules.

    The cache is consulted with a digest taken through the descriptor the inspectors would read, and a
    result is stored only when the file kept its identity from hashing to the end of inspection.
    """
    if opts.cache is None or not artifact.local_path or not opts.compute_sha256:
        return _inspect(artifact, rules, opts)
    result, ctx = _new_result(artifact, rules, opts)
    reader = _open(artifact, ctx)
    if reader is None:
        return result
    with reader:
        if not isinstance(reader, FileReader):
            return _judge_open(artifact, reader, rules, opts, result, ctx)
        try:
            digest = reader.sha256()
        except (FileChangedError, ReaderError, OSError, IntegrityError):
            return _judge_open(artifact, reader, rules, opts, result, ctx)  # reports the change; not cached
        key = opts.cache.key(digest, rules.version, _settings_key(opts))
        hit = opts.cache.get(key)
        if hit is not None and reader.changed():  # rewritten since hashed: judge what is there now
            hit = None
        if hit is not None:  # same bytes, maybe under another name: re-root every path
            hit.path = artifact.path
            for f in hit.findings:
                f.path = _rebase(f.path, artifact.path)
            hit.members = [_rebase(m, artifact.path) for m in hit.members]
            hit.bytes_read = 0
            hit.sha256 = digest
            hit.findings.extend(claim_findings(artifact, None, digest, rules))
            _check_known_digest(artifact, digest, opts, ctx_for(hit, rules, opts, artifact))
            return hit
        result = _judge_open(artifact, reader, rules, opts, result, ctx)
    if result.sha256 == digest and not any(f.rule_id == CHANGED_RULE for f in result.findings):
        opts.cache.put(key, result)
    return result


CHANGED_RULE = "FILE-CHANGED-DURING-SCAN"


def _rebase(path: str, root: str) -> str:
    """``old/name!member`` -> ``root!member``: container member suffixes survive a rename."""
    bang = path.find("!")
    return root if bang < 0 else root + path[bang:]


def _new_result(artifact: Artifact, rules: RuleDB, opts: ScanOptions) -> tuple[FileResult, InspectContext]:
    result = FileResult(path=artifact.path, size=artifact.size, format="unknown")
    return result, ctx_for(result, rules, opts, artifact)


def ctx_for(result: FileResult, rules: RuleDB, opts: ScanOptions, artifact: Artifact) -> InspectContext:
    state = ScanState(
        rules=rules,
        limits=opts.limits,
        result=result,
        budget_left=opts.limits.max_total_uncompressed,
        deadline=time.monotonic() + opts.limits.file_seconds,
        allowed_profiles=opts.allowed_profiles,
        extra_allowed_globals=list(opts.extra_allowed_globals),
    )
    return InspectContext(state, artifact.path)


def _open(artifact: Artifact, ctx: InspectContext) -> Reader | None:
    try:
        return artifact.open()
    except (ReaderError, OSError) as exc:
        ctx.add("FILE-UNREADABLE", str(exc))
        ctx.unanalyzable("could not be opened")
        return None


def _inspect(artifact: Artifact, rules: RuleDB, opts: ScanOptions) -> FileResult:
    """Judge one artifact; every problem becomes a finding or a coverage note, never an exception."""
    result, ctx = _new_result(artifact, rules, opts)
    reader = _open(artifact, ctx)
    if reader is None:
        return result
    with reader:
        return _judge_open(artifact, reader, rules, opts, result, ctx)


def _judge_open(
    artifact: Artifact,
    reader: Reader,
    rules: RuleDB,
    opts: ScanOptions,
    result: FileResult,
    ctx: InspectContext,
) -> FileResult:
    """Inspect an open reader, then bind the verdict to the bytes: the digest is of what was inspected."""
    inspect_with_detection(reader, ctx)
    result.bytes_read = reader.bytes_read
    if isinstance(reader, FileReader):
        result.size = reader.size  # what was opened, even if the listing saw another size
        _bind_local(artifact, reader, opts, ctx)
    elif artifact.path in opts.known_sha256:
        result.sha256 = opts.known_sha256[artifact.path]
    elif streamed_sha256 := getattr(reader, "sha256", None):
        result.sha256 = streamed_sha256  # every byte passed through and was hashed on the way
    elif artifact.claimed_sha256:  # the registry's claim; lets known-bad digests match pre-download
        result.sha256 = artifact.claimed_sha256
    result.findings.extend(
        claim_findings(artifact, reader, result.sha256 if artifact.local_path else None, rules)
    )
    if result.sha256 and result.sha256 in rules.known_bad:
        kb = rules.known_bad[result.sha256]
        ctx.add(
            "KNOWN-MALICIOUS-HASH",
            f"SHA-256 matches known-malicious artifact {kb.name}",
            evidence={"sha256": result.sha256, "reference": kb.reference or ""},
        )
    return result


def _bind_local(artifact: Artifact, reader: FileReader, opts: ScanOptions, ctx: InspectContext) -> None:
    """A local file must be the one that was opened, unchanged, from open through inspection and hashing."""
    why = reader.changed()  # after inspection
    if why:
        _changed(ctx, f"changed while inspected: {why}")
        return
    if not (opts.compute_sha256 or artifact.path in opts.known_sha256):
        return
    try:
        digest = reader.sha256()  # finishes through the same descriptor, re-checks identity after
    except FileChangedError as exc:
        _changed(ctx, str(exc))
        return
    except (ReaderError, OSError, IntegrityError) as exc:
        ctx.add("FILE-READ-ERROR", f"hashing failed: {getattr(exc, 'strerror', None) or exc}")
        ctx.partial("could not be hashed")
        return
    ctx.state.result.sha256 = digest
    _check_known_digest(artifact, digest, opts, ctx)


def _check_known_digest(artifact: Artifact, digest: str, opts: ScanOptions, ctx: InspectContext) -> None:
    """Bytes verified earlier (download, signature) must be the bytes inspected now."""
    known = opts.known_sha256.get(artifact.path)
    if known and known.lower() != digest:
        _changed(
            ctx,
            f"the inspected bytes have sha256 {digest}, but {known} was verified before the scan",
            evidence={"verified": known, "inspected": digest},
        )


def _changed(ctx: InspectContext, message: str, evidence: dict[str, str] | None = None) -> None:
    ctx.add(CHANGED_RULE, message, evidence=evidence)
    ctx.partial("the file changed while scanned: the verdict cannot be bound to one content")


def _problem_results(snapshot: Snapshot, rules: RuleDB) -> list[FileResult]:
    """Tree and registry problems as results: unread entries fail closed, notes (info) do not."""
    out = []
    for p in snapshot.problems:
        finding = rules.finding(p.rule_id, p.message, p.path, evidence=dict(p.evidence))
        if p.analyzed or finding.severity is Severity.INFO:
            fr = FileResult(path=p.path, size=0, format="note")
        else:
            fr = FileResult(
                path=p.path, size=0, format="not-read", coverage=Coverage.NONE, coverage_notes=[p.message]
            )
        fr.findings.append(finding)
        out.append(fr)
    return out


def scan_snapshot(snapshot: Snapshot, opts: ScanOptions, rules: RuleDB | None = None) -> list[FileResult]:
    rules = rules or get_rule_db(opts.rules_root)
    results = _problem_results(snapshot, rules)
    todo = []
    # results an audit inventory proves still valid (identity, rules, settings)
    for art in snapshot.artifacts:
        hit = opts.reuse(art) if opts.reuse is not None else None
        if hit is None:
            todo.append(art)
            continue
        results.append(hit)
        if opts.on_file:
            opts.on_file(hit)
    local = all(a.local_path for a in todo)
    if opts.dask_address and local and todo:
        from .dask_exec import judge_on_dask

        results.extend(judge_on_dask(todo, opts, opts.rules_root, opts.dask_address, opts.on_file))
    elif opts.workers > 1 and local and len(todo) > opts.workers:
        from .parallel import judge_local

        results.extend(judge_local(todo, opts, opts.rules_root, opts.workers, opts.on_file))
    else:
        for art in todo:
            fr = inspect_artifact(art, rules, opts)
            results.append(fr)
            if opts.on_file:
                opts.on_file(fr)
    results.extend(_repo_level(snapshot, results, rules, opts))
    return results


def _repo_level(
    snapshot: Snapshot, results: list[FileResult], rules: RuleDB, opts: ScanOptions
) -> list[FileResult]:
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
        report.errors.extend(redact(e) for e in snap.errors)  # network faults: the scan did not complete
    finish_report(report, t0)
    return report


def new_report(targets: list[str], rules: RuleDB) -> ScanReport:
    """A report whose target list carries no credentials (URL userinfo, tokens in query strings)."""
    return ScanReport(
        scanner_version=__version__, rules_version=rules.version, targets=[redact_url(t) for t in targets]
    )


def finish_report(report: ScanReport, t0: float) -> None:
    report.duration_seconds = round(time.monotonic() - t0, 3)
    report.bytes_read = sum(f.bytes_read for f in report.files)
    report.total_size = sum(f.size for f in report.files)


def scan_resolved(snap: Snapshot, opts: ScanOptions, rules: RuleDB, *, qualify: bool) -> list[FileResult]:
    """Scan one resolved snapshot with the policy's per-source settings and its signature, if any."""
    snap = select(snap, opts.selection)
    src = source_uri(snap)
    snap_opts = opts
    if opts.policy is not None:
        profiles, extra = pickle_allowances(opts.policy, src)
        snap_opts = replace(
            opts,
            allowed_profiles=profiles if profiles is not None else opts.allowed_profiles,
            extra_allowed_globals=[*opts.extra_allowed_globals, *extra],
        )
    keys, chains = signature_trust(opts, src)
    outcome = check_snapshot_signature(
        snap,
        rules,
        signature=opts.signature,
        keys=keys,
        chains=chains,
        identities=signature_identities(opts, src),
    )
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
            fr.members = [new + m[len(old) :] if m.startswith(old) else m for m in fr.members]
            for f in fr.findings:
                f.path = new + f.path[len(old) :] if f.path.startswith(old) else f.path
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


def signature_identities(opts: ScanOptions, source: str) -> list[KeylessTrust]:
    """Sigstore signers to accept: the command line's, plus the policy's trust entries for this source."""
    out = list(opts.signature_identities)
    if opts.policy is not None:
        for entry in opts.policy.get("signatures", "trust", default=[]) or []:
            if any(matches(p, source) for p in entry["sources"]):
                out.extend(keyless_trust_entries(entry.get("identities") or []))
    return out


def source_uri(snap: Snapshot) -> str:
    """The target as policies match it: remote URIs as given, local paths as absolute file:// URIs."""
    if snap.kind == "local":
        return "file://" + snap.resolved
    return redact_url(snap.target)


def _qualify(snap: Snapshot, path: str) -> str:
    base = redact_url(snap.target).rstrip("/")
    if (
        snap.kind == "local"
        and len(snap.artifacts) == 1
        and not snap.problems
        and Path(snap.resolved).is_file()
    ):
        return base
    return f"{base}/{path}"
