"""One audit run: resolve targets, reuse what the inventory proves unchanged, judge the rest, diff with last run.

A file is reused only when its identity (see identity.py) equals the one recorded when it was last
judged AND a result for its digest exists under the current rule-database version and scan settings:
a rule update re-inspects everything (from the recorded digest, without re-hashing being skipped for
changed files), ``--rehash`` re-verifies everything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, Field

from .. import __version__
from ..engine import SERIAL, Executor
from ..findings import FileResult, ScanReport
from ..io.redaction import redact
from ..pipeline import Pipeline, display_paths, new_report
from ..policy.loader import Policy
from ..policy.scan_settings import compile_scan_settings
from ..report.store import ReportStore
from ..rules import RuleDB, get_rule_db
from ..selection import apply as select
from ..settings import ScanOptions
from ..sources.base import Artifact, Snapshot, SourceError
from .hub_org import expand_org, is_org_target
from .identity import artifact_identity, local_identity
from .inventory import Inventory, RunInfo, db_text
from .judge import FileJudge


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
    """A finished run: the report's head (no files), its files, reasons and lists in ``store``, the summary
    (counts; its path and finding lists are the store's). Close it (or use ``with``) to delete the store."""

    store: ReportStore
    summary: AuditSummary

    @property
    def report(self) -> ScanReport:
        return self.store.head

    def files(self) -> Iterator[FileResult]:
        return (fr for fr, _decision in self.store.files())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> AuditOutcome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Pending:
    """Per-artifact bookkeeping between the pre-scan identity check and the recorded result."""

    identity: str | None
    state: str  # new | changed | unchanged
    reused: bool = False
    previous_digest: str | None = None  # identity unknown or different: same digest means unchanged
    local_path: str | None = None


class _Ledger:
    """``_Pending`` by printable path, in listing order, in a private temporary SQLite file: a zoo's target
    lists 100k files, and their bookkeeping waits from the listing until each file's result is recorded."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None)  # "": temporary, on disk, deleted when closed
        self.db.execute("PRAGMA cache_size=-1024")
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE pending (seq INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, identity TEXT, "
            "state TEXT NOT NULL, reused INTEGER NOT NULL, previous_digest TEXT, local_path BLOB)"
        )
        self.db.execute("BEGIN")

    def __enter__(self) -> _Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def put(self, path: str, p: _Pending) -> None:
        self.db.execute(
            "INSERT INTO pending (path, identity, state, reused, previous_digest, local_path) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET identity=excluded.identity, "
            "state=excluded.state, reused=excluded.reused, previous_digest=excluded.previous_digest, "
            "local_path=excluded.local_path",
            (path, p.identity, p.state, int(p.reused), p.previous_digest, _blob(p.local_path)),
        )

    def get(self, path: str) -> _Pending | None:
        row = self.db.execute(
            "SELECT identity, state, reused, previous_digest, local_path FROM pending WHERE path=?", (path,)
        ).fetchone()
        return None if row is None else _Pending(row[0], row[1], bool(row[2]), row[3], _text(row[4]))

    def reused(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM pending WHERE reused").fetchone()[0])

    def states(self) -> list[tuple[str, int]]:
        return [
            (str(s), int(n)) for s, n in self.db.execute("SELECT state, count(*) FROM pending GROUP BY state")
        ]

    def paths(self, state: str | None = None) -> Iterator[str]:
        """Paths in listing order (with ``state`` only, when given)."""
        where, args = ("WHERE state=?", (state,)) if state else ("", ())
        cur = self.db.execute(f"SELECT path FROM pending {where} ORDER BY seq", args)
        while rows := cur.fetchmany(256):
            yield from (p for (p,) in rows)


def _blob(path: str | None) -> bytes | None:
    """A file name as SQLite keeps it: UTF-8, lone surrogates (undecodable names) included."""
    return None if path is None else path.encode("utf-8", "surrogatepass")


def _text(blob: bytes | None) -> str | None:
    return None if blob is None else blob.decode("utf-8", "surrogatepass")


def settings_key(opts: AuditOptions) -> str:
    """Scan settings a stored result depends on: the policy's content (per-source allowances) and the limits."""
    blob = json.dumps(
        [opts.policy.name, opts.policy.data, repr(opts.scan.limits)], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class _Run:
    def __init__(
        self, inv: Inventory, run: RunInfo, rules: RuleDB, opts: AuditOptions, judge: FileJudge
    ) -> None:
        self.inv, self.run, self.rules, self.opts, self.judge = inv, run, rules, opts, judge
        self.settings = settings_key(opts)
        self.summary = AuditSummary(
            run=run.id,
            database=str(opts.db),
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.started_ns / 1e9)),
        )

    def scan_target(self, raw: str, snap: Snapshot, qualify: bool) -> None:
        """Judge one target's files into the store, one at a time: a result is in memory from the moment it
        is final to the moment it is stored; results and bookkeeping wait on disk."""
        snap = select(snap, self.opts.scan.selection)  # excluded files are neither counted nor recorded
        with _Ledger() as pending:  # by printable path: results from worker processes carry that form
            for art in snap.artifacts:
                pending.put(db_text(art.path), self._classify(raw, snap, art))
            self._scan_pending(raw, snap, qualify, pending)

    def _scan_pending(self, raw: str, snap: Snapshot, qualify: bool, pending: _Ledger) -> None:
        def reuse(art: Artifact) -> FileResult | None:
            key = db_text(art.path)
            p = pending.get(key)
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
            pending.put(key, p)
            hit.path, hit.cached, hit.bytes_read = art.path, True, 0
            return hit

        def record(fr: FileResult) -> None:
            key = db_text(fr.path)
            p = pending.get(key)
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
            pending.put(key, p)
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
        for fr in pipeline.stream(snap, qualify=qualify, reuse=reuse):  # judged and stored in report order
            self.judge.add(fr)
        self.summary.reused_files += pending.reused()
        for state, n in pending.states():
            setattr(self.summary.files, state, getattr(self.summary.files, state) + n)
        shown_as = display_paths(snap)
        store = self.judge.store
        for state in ("changed", "new"):  # printable, as the inventory keeps them
            store.add_items(
                f"{state}_paths", (json.dumps(db_text(shown_as(p))) for p in pending.paths(state))
            )
        self._record_decisions(raw, ((path, shown_as(path)) for path in pending.paths()))

    def _record_decisions(self, raw: str, shown: Iterable[tuple[str, str]]) -> None:
        """Each observed file's decision, found under the path the report shows (a single-file target's is the
        target itself, not ``target/name``)."""
        target = db_text(raw)
        with self.inv._tx():
            for path, where in shown:
                decision = self.judge.store.decision_of(db_text(where))
                if decision is not None:
                    self.inv.db.execute(
                        "UPDATE observations SET decision=? WHERE run_id=? AND file_id="
                        "(SELECT id FROM files WHERE target=? AND path=?)",
                        (decision.value, self.run.id, target, path),
                    )

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
    """Audit every target into the inventory; a target that cannot be resolved is a report error.

    The report's files go to a temporary ``ReportStore`` as each target is judged, never all in memory.
    """
    rules = get_rule_db(opts.scan.rules_root)
    store = ReportStore(new_report(targets, rules))
    try:
        summary = _audit_into(store, targets, opts, rules)
    except BaseException:
        store.close()
        raise
    return AuditOutcome(store, summary)


def _audit_into(store: ReportStore, targets: list[str], opts: AuditOptions, rules: RuleDB) -> AuditSummary:
    report = store.head
    t0 = time.monotonic()
    judge = FileJudge(opts.policy, rules, store)
    with Inventory(opts.db) as inv:
        run = inv.start_run(report.targets, __version__, rules.version, opts.policy.name, settings_key(opts))
        audit = _Run(inv, run, rules, opts, judge)
        scan_opts = replace(opts.scan, scoped=compile_scan_settings(opts.policy))
        audit.opts = replace(opts, scan=scan_opts)
        for raw in _expanded(targets, report):
            try:
                snap = Pipeline(rules, scan_opts).resolve(raw)
            except SourceError as exc:
                report.errors.append(redact(str(exc)))
                continue
            try:
                audit.scan_target(raw, snap, qualify=True)
            except SourceError as exc:  # e.g. the Dask scheduler went away: the run could not complete
                report.errors.append(redact(str(exc)))
                continue
            report.errors.extend(redact(e) for e in snap.errors)  # network faults: the run is incomplete
            del snap
        report.duration_seconds = round(time.monotonic() - t0, 3)
        report.bytes_read, report.total_size = store.totals.bytes_read, store.totals.total_size
        report.verdict = judge.verdict()
        _diff_with_previous(inv, run, audit.summary, report.targets, store)
        inv.finish_run(run.id, "complete" if not report.errors else "incomplete")
    return audit.summary


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


def _diff_with_previous(
    inv: Inventory, run: RunInfo, summary: AuditSummary, targets: list[str], store: ReportStore
) -> None:
    """Removed paths and new and resolved findings since the last completed run with the same targets, into
    ``store``'s lists (counted in ``summary``); the inventory compares the runs, row by row."""
    prev = inv.previous_run(run.id, targets)
    if prev is None:
        return
    summary.previous_run = prev.id
    store.add_items("removed_paths", (json.dumps(p) for p in inv.removed_since(prev.id, run.id)))
    summary.files.removed = store.count("removed_paths")
    for name, a, b in (("new_findings", run.id, prev.id), ("resolved_findings", prev.id, run.id)):
        store.add_items(name, (json.dumps(_ref(x).model_dump(), indent=2) for x in inv.findings_not_in(a, b)))


def _ref(row: tuple[str, str, str, str]) -> FindingRef:
    return FindingRef(path=row[0], rule_id=row[1], severity=row[2], message=row[3])
