"""Judging bytes: one artifact (``inspect_artifact``) and one snapshot's artifacts plus its repository checks
(``scan_snapshot``).

The forward flow every entry point uses (selection, per-source settings, signatures, report, display paths)
is ``scanner.pipeline``. This module knows nothing about policies, targets or how work is spread over
processes: per-source settings arrive compiled (``SourceScopes``) and parallelism is an ``Executor``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from .findings import Coverage, FileResult, Severity
from .formats.detect import inspect_with_detection
from .formats.interface import InspectContext, ScanState
from .integrity.errors import FileChangedError, IntegrityError
from .io.reader import FileReader, Reader, ReaderError
from .repo import inspect_snapshot
from .rules import RuleDB, get_rule_db
from .settings import ScanOptions
from .sources.base import Artifact, Snapshot
from .sources.claims import claim_findings


class Executor(Protocol):
    """How a snapshot's artifacts are judged: in this process, on local processes, on a cluster.

    Yields one FileResult per artifact in input order, and calls ``opts.on_file`` for each as it is judged.
    """

    def judge(
        self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions
    ) -> Iterator[FileResult]: ...


class SerialExecutor:
    """Judge every artifact in this process, one after the other."""

    def judge(self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions) -> Iterator[FileResult]:
        for art in artifacts:
            fr = inspect_artifact(art, rules, opts)
            if opts.on_file:
                opts.on_file(fr)
            yield fr


SERIAL = SerialExecutor()


LocalJob = tuple[str, str, int]  # artifact path, local file, size: what a worker process is sent, never bytes


def local_job(art: Artifact) -> LocalJob:
    return (art.path, art.local_path or "", art.size)


def judge_local_job(job: LocalJob, rules: RuleDB, opts: ScanOptions) -> str:
    """Judge one local file (in a worker) exactly as a local scan would; the FileResult as JSON."""
    rel, local, size = job
    art = Artifact(path=rel, size=size, local_path=local)  # opened as FileReader(local, name=rel)
    return inspect_artifact(art, rules, opts).model_dump_json()


def reroot(results: Sequence[FileResult], move: Callable[[str], str]) -> None:
    """Give every path of ``results`` (file, members, findings) a new root: the one place paths are moved."""
    for fr in results:
        fr.path = move(fr.path)
        fr.members = [move(m) for m in fr.members]
        for f in fr.findings:
            f.path = move(f.path)


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
            reroot([hit], lambda p: _rebase(p, artifact.path))
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
    return InspectContext(state, artifact.path, dispatch=inspect_with_detection)


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
    elif why := reader.changed():  # an object overwritten under an unpinned reader: no digest is its
        _changed(ctx, f"changed while inspected: {why}")
    elif artifact.path in opts.known_sha256:
        result.sha256 = opts.known_sha256[artifact.path]
    elif streamed_sha256 := reader.sha256():
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


def unjudged_result(art: Artifact, note: str, message: str, rules: RuleDB) -> FileResult:
    """A file whose inspection never finished (a dead worker, a failed distributed task): no coverage, blocks."""
    fr = FileResult(
        path=art.path, size=art.size, format="unknown", coverage=Coverage.NONE, coverage_notes=[note]
    )
    fr.findings.append(rules.finding("INSPECTOR-ERROR", message[:400], art.path))
    return fr


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


def scan_snapshot(
    snapshot: Snapshot,
    opts: ScanOptions,
    rules: RuleDB | None = None,
    *,
    executor: Executor = SERIAL,
    reuse: Callable[[Artifact], FileResult | None] | None = None,
) -> list[FileResult]:
    """Judge every artifact (reusing what ``reuse`` proves still valid), then the repository-level checks."""
    return list(stream_snapshot(snapshot, opts, rules, executor=executor, reuse=reuse))


def stream_snapshot(
    snapshot: Snapshot,
    opts: ScanOptions,
    rules: RuleDB | None = None,
    *,
    executor: Executor = SERIAL,
    reuse: Callable[[Artifact], FileResult | None] | None = None,
) -> Iterator[FileResult]:
    """``scan_snapshot``'s results one at a time. A snapshot of more than ``SPILL_AT`` files keeps none of them
    in memory meanwhile: each judged result waits on disk (``ResultTable``) for the repository checks, which
    load only the results they look at. A smaller one is judged in memory (no SQLite, no copies)."""
    rules = rules or get_rule_db(opts.rules_root)
    if len(snapshot.artifacts) + len(snapshot.problems) <= SPILL_AT:
        results = list(_judged(snapshot, opts, rules, executor, reuse))
        results.extend(inspect_snapshot(snapshot, {fr.path: fr for fr in results}, rules, opts.limits))
        yield from results
        return
    from .repo.results import ResultTable

    table = ResultTable()
    try:
        table.extend(_judged(snapshot, opts, rules, executor, reuse))
        extra = inspect_snapshot(snapshot, table, rules, opts.limits)
        yield from table.drain()
        yield from extra
    finally:
        table.close()


SPILL_AT = (
    2000  # files of a snapshot judged in memory; past it, results wait on disk for the repository checks
)


def _judged(
    snapshot: Snapshot,
    opts: ScanOptions,
    rules: RuleDB,
    executor: Executor,
    reuse: Callable[[Artifact], FileResult | None] | None,
) -> Iterator[FileResult]:
    """The snapshot's problems, then its artifacts' results (reused ones first, in listing order)."""
    yield from _problem_results(snapshot, rules)
    todo = []
    for art in snapshot.artifacts:
        hit = reuse(art) if reuse is not None else None
        if hit is None:
            todo.append(art)
            continue
        if opts.on_file:
            opts.on_file(hit)
        yield hit
    yield from executor.judge(todo, rules, opts)
