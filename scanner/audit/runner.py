"""One audit run: resolve targets, reuse what the inventory proves unchanged, judge the rest, diff with last run.

A file is reused only when its identity (see identity.py) equals the one recorded when it was last
judged AND a result for its digest exists under the current rule-database version and scan settings:
a rule update re-inspects everything (from the recorded digest, without re-hashing being skipped for
changed files), ``--rehash`` re-verifies everything.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, Field

from .. import __version__
from ..engine import SERIAL, Executor
from ..findings import FileResult, ScanReport
from ..io.redaction import redact
from ..pipeline import Pipeline, display_paths, finish_report, new_report
from ..policy.decide import decide
from ..policy.loader import Policy
from ..policy.scan_settings import compile_scan_settings
from ..rules import RuleDB, get_rule_db
from ..selection import apply as select
from ..settings import ScanOptions
from ..sources.base import Artifact, Snapshot, SourceError
from .hub_org import expand_org, is_org_target
from .identity import artifact_identity, local_identity
from .inventory import Inventory, RunInfo, db_text


class FindingRef(BaseModel):
    path: str
    rule_id: str
    severity: str
    message: str


class FileCounts(BaseModel):
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


class AuditSummary(BaseModel):
    """The ``audit`` section of an audit report: what this run did and what changed since the last one."""

    run: int
    previous_run: int | None = None
    database: str
    started: str
    files: FileCounts = Field(default_factory=FileCounts)
    changed_paths: list[str] = Field(default_factory=list)
    new_paths: list[str] = Field(default_factory=list)
    removed_paths: list[str] = Field(default_factory=list)
    hashed_bytes: int = 0
    inspected_files: int = 0
    reused_files: int = 0
    new_findings: list[FindingRef] = Field(default_factory=list)
    resolved_findings: list[FindingRef] = Field(default_factory=list)


@dataclass
class AuditOptions:
    db: Path
    policy: Policy
    scan: ScanOptions = field(default_factory=ScanOptions)
    rehash: bool = False
    executor: Executor = SERIAL  # local processes or a Dask cluster (scanner.parallel.executor_for)


@dataclass
class AuditOutcome:
    report: ScanReport
    summary: AuditSummary


@dataclass
class _Pending:
    """Per-artifact bookkeeping between the pre-scan identity check and the recorded result."""

    identity: str | None
    state: str  # new | changed | unchanged
    reused: bool = False
    previous_digest: str | None = None  # identity unknown or different: same digest means unchanged
    local_path: str | None = None


def settings_key(opts: AuditOptions) -> str:
    """Scan settings a stored result depends on: the policy's content (per-source allowances) and the limits."""
    blob = json.dumps(
        [opts.policy.name, opts.policy.data, repr(opts.scan.limits)], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class _Run:
    def __init__(self, inv: Inventory, run: RunInfo, rules: RuleDB, opts: AuditOptions) -> None:
        self.inv, self.run, self.rules, self.opts = inv, run, rules, opts
        self.settings = settings_key(opts)
        self.shown: dict[tuple[str, str], str] = {}  # (target, path) -> the path the report shows
        self.summary = AuditSummary(
            run=run.id,
            database=str(opts.db),
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.started_ns / 1e9)),
        )

    def scan_target(self, raw: str, snap: Snapshot, qualify: bool) -> list[FileResult]:
        snap = select(snap, self.opts.scan.selection)  # excluded files are neither counted nor recorded
        pending: dict[str, _Pending] = {}  # by printable path: results from worker processes carry that form
        for art in snap.artifacts:
            pending[db_text(art.path)] = self._classify(raw, snap, art)

        def reuse(art: Artifact) -> FileResult | None:
            p = pending.get(db_text(art.path))
            if p is None or p.state != "unchanged" or self.opts.rehash:
                return None
            known = self.inv.known(raw, art.path)
            hit = (
                self.inv.cached_result(
                    known.digest, art.path, self.rules.version, self.settings, p.identity or ""
                )
                if known and known.digest
                else None
            )
            if hit is None:  # same bytes, but judged under other rules or settings: inspect again
                return None
            p.reused = True
            hit.path, hit.cached, hit.bytes_read = art.path, True, 0
            return hit

        def record(fr: FileResult) -> None:
            p = pending.get(db_text(fr.path))
            if p is None:
                return
            if p.state == "changed" and p.previous_digest and fr.sha256 == p.previous_digest:
                p.state = "unchanged"  # touched or racy, same bytes
            if not p.reused:
                self.summary.inspected_files += 1
                if snap.kind == "local":
                    self.summary.hashed_bytes += fr.size
            content_key = fr.sha256 or (
                "etag:" + hashlib.sha256(p.identity.encode()).hexdigest()[:32]
                if p.identity and snap.kind in ("objectstore", "mlflow")
                else None
            )
            if not p.reused and p.local_path and p.identity is not None and _moved(p.local_path, p.identity):
                p.identity = None  # not the file that was listed: what was judged has no identity to record
            reusable = (
                p.identity is not None
                and content_key is not None
                and not any(f.rule_id == "FILE-CHANGED-DURING-SCAN" for f in fr.findings)
            )
            self.inv.record(
                self.run.id,
                raw,
                fr.path,
                fr,
                identity=p.identity,
                state=p.state,
                decision=None,
                reusable=reusable,
                rules_version=self.rules.version,
                settings=self.settings,
                content_key=content_key,
            )

        scan_opts = replace(self.opts.scan, on_file=_chain(self.opts.scan.on_file, record))
        pipeline = Pipeline(self.rules, scan_opts, self.opts.executor)
        results = pipeline.scan(snap, qualify=qualify, reuse=reuse).files
        for p in pending.values():
            if p.reused:
                self.summary.reused_files += 1
            setattr(self.summary.files, p.state, getattr(self.summary.files, p.state) + 1)
        shown_as = display_paths(snap)
        for path, p in pending.items():
            shown = self.shown[(raw, path)] = shown_as(path)
            if p.state == "changed":
                self.summary.changed_paths.append(db_text(shown))  # printable, as the inventory keeps it
            elif p.state == "new":
                self.summary.new_paths.append(db_text(shown))
        return results

    def _classify(self, raw: str, snap: Snapshot, art: Artifact) -> _Pending:
        ident = artifact_identity(snap, art)
        known = self.inv.known(raw, art.path)
        identity = None if ident is None or ident[1] else ident[0]  # racy: don't trust it next time
        where = art.local_path
        if known is None:
            return _Pending(identity, "new", local_path=where)
        if ident is not None and known.identity is not None and ident[0] == known.identity:
            return _Pending(identity, "unchanged", local_path=where)
        return _Pending(
            identity, "changed", previous_digest=known.digest, local_path=where
        )  # settled by the digest once hashed


def _moved(path: str, listed: str) -> bool:
    """Whether the file at ``path`` is no longer the one listed (identity ``listed``) now that it was judged.

    The reader proves the bytes it judged are the file the path named from open to the end; this proves that
    file is the one listed, so the identity recorded is the judged bytes' own: a file swapped in after the
    listing (even one swapped back later) can never have its result served under the listed identity.
    """
    now = local_identity(path)
    return now is None or now[0] != listed


def _chain(
    first: Callable[[FileResult], None] | None, second: Callable[[FileResult], None]
) -> Callable[[FileResult], None]:
    def both(fr: FileResult) -> None:
        if first is not None:
            first(fr)
        second(fr)

    return both


def run_audit(targets: list[str], opts: AuditOptions) -> AuditOutcome:
    """Audit every target into the inventory; a target that cannot be resolved is a report error."""
    rules = get_rule_db(opts.scan.rules_root)
    report = new_report(targets, rules)
    t0 = time.monotonic()
    with Inventory(opts.db) as inv:
        run = inv.start_run(report.targets, __version__, rules.version, opts.policy.name, settings_key(opts))
        audit = _Run(inv, run, rules, opts)
        scan_opts = replace(opts.scan, scoped=compile_scan_settings(opts.policy))
        audit.opts = replace(opts, scan=scan_opts)
        for raw in _expanded(targets, report):
            try:
                snap = Pipeline(rules, scan_opts).resolve(raw)
            except SourceError as exc:
                report.errors.append(redact(str(exc)))
                continue
            try:
                report.files.extend(audit.scan_target(raw, snap, qualify=True))
            except SourceError as exc:  # e.g. the Dask scheduler went away: the run could not complete
                report.errors.append(redact(str(exc)))
                continue
            report.errors.extend(redact(e) for e in snap.errors)  # network faults: the run is incomplete
        finish_report(report, t0)
        report.verdict = decide(report, opts.policy, rules)
        _record_decisions(inv, run.id, report, audit.shown)
        _diff_with_previous(inv, run, audit.summary, report.targets)
        inv.finish_run(run.id, "complete" if not report.errors else "incomplete")
    return AuditOutcome(report, audit.summary)


def _expanded(targets: list[str], report: ScanReport) -> list[str]:
    """Targets with every ``hf://ORG`` replaced by that organization's models."""
    out: list[str] = []
    for raw in targets:
        if not is_org_target(raw):
            out.append(raw)
            continue
        try:
            out.extend(expand_org(raw))
        except SourceError as exc:
            report.errors.append(str(exc))
    return out


def _record_decisions(
    inv: Inventory, run_id: int, report: ScanReport, shown: dict[tuple[str, str], str]
) -> None:
    """Each observed file's decision, found under the path the report shows (a single-file target's is the
    target itself, not ``target/name``)."""
    if report.verdict is None:
        return
    decisions = {db_text(k): v for k, v in report.verdict.file_decisions.items()}
    shown = {(db_text(t), db_text(p)): db_text(s) for (t, p), s in shown.items()}  # as the inventory has them
    with inv._tx():
        for target, path, _digest, _state in list(inv.seen_in(run_id)):
            decision = decisions.get(shown.get((target, path), f"{target.rstrip('/')}/{path}"))
            if decision is not None:
                inv.db.execute(
                    "UPDATE observations SET decision=? WHERE run_id=? AND file_id="
                    "(SELECT id FROM files WHERE target=? AND path=?)",
                    (decision.value, run_id, target, path),
                )


def _diff_with_previous(inv: Inventory, run: RunInfo, summary: AuditSummary, targets: list[str]) -> None:
    prev = inv.previous_run(run.id, targets)
    if prev is None:
        return
    summary.previous_run = prev.id
    now = {(t, p) for t, p, _d, _s in inv.seen_in(run.id)}
    before = {(t, p) for t, p, _d, _s in inv.seen_in(prev.id)}
    removed = sorted(before - now)
    summary.files.removed = len(removed)
    summary.removed_paths = [f"{t.rstrip('/')}/{p}" for t, p in removed]
    cur, old = inv.findings_of(run.id), inv.findings_of(prev.id)
    summary.new_findings = [_ref(x) for x in sorted(cur - old)]
    summary.resolved_findings = [_ref(x) for x in sorted(old - cur)]


def _ref(row: tuple[str, str, str, str]) -> FindingRef:
    return FindingRef(path=row[0], rule_id=row[1], severity=row[2], message=row[3])


def render_audit_json(outcome: AuditOutcome) -> str:
    """The scan report's JSON (same schema, ``files`` included) plus the ``audit`` section."""
    # spliced as text: parsing the report back (all its files) would cost several times its size in memory,
    # and each slice of a 20 MB report is another 20 MB: cut at the closing brace, decode once
    body = outcome.report.printable().json_bytes(indent=2)
    cut = body.rindex(b"}")
    while cut and body[cut - 1 : cut] in (b" ", b"\n"):
        cut -= 1
    audit = json.dumps(json.loads(outcome.summary.model_dump_json()), indent=2).replace("\n", "\n  ")
    tail = f',\n  "audit": {audit}\n}}\n'.encode()
    return b"".join((memoryview(body)[:cut], tail)).decode()
