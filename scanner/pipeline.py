"""The one forward pipeline every entry point uses: snapshot -> selection -> per-source settings -> signature
-> per-file judgement -> repository checks -> report.

``scan``, ``pull``, ``check`` and ``audit`` differ in where snapshots come from and what they do with the
report (a verdict, an install, drift, an inventory), never in how a snapshot is judged. Settings arrive
plain and compiled (a policy is compiled by ``scanner.policy.scan_settings`` before the scan); execution is
an ``Executor`` (``scanner.parallel.executor_for``); the verdict stays with the entry point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from . import __version__
from .engine import SERIAL, Executor, reroot, stream_snapshot
from .findings import FileResult, ScanReport
from .integrity.scan_hook import apply_signature_status, check_snapshot_signature
from .io.redaction import redact, redact_url
from .rules import RuleDB, get_rule_db
from .selection import apply as select
from .settings import ScanOptions
from .sources.base import Artifact, Snapshot, SourceError
from .targets import resolve

Reuse = Callable[[Artifact], FileResult | None]


class Pipeline:
    """Judge snapshots with one rule database, one set of settings and one execution strategy."""

    def __init__(self, rules: RuleDB, settings: ScanOptions, executor: Executor = SERIAL) -> None:
        self.rules = rules
        self.settings = settings
        self.executor = executor

    def resolve(self, target: str) -> Snapshot:
        """The target pinned to a snapshot with these settings' source options; raises SourceError."""
        return resolve(target, **self.settings.source_options)

    def scan(
        self,
        snapshot: Snapshot,
        *,
        qualify: bool = False,
        source: str | None = None,
        signed: Snapshot | None = None,
        reuse: Reuse | None = None,
    ) -> ScanReport:
        """Judge one snapshot; paths stay relative to it unless ``qualify`` puts them under its target.

        ``source`` is the URI policies match (default: the snapshot's own, see ``source_uri``); ``signed`` is
        the snapshot whose signature covers these bytes (default: this one; pull verifies a quarantined copy).
        """
        t0 = time.monotonic()
        files = list(self.stream(snapshot, qualify=qualify, source=source, signed=signed, reuse=reuse))
        report = new_report([snapshot.target], self.rules)
        report.files = files
        report.errors = [redact(e) for e in snapshot.errors]  # network faults: the scan did not complete
        finish_report(report, t0)
        return report

    def stream(
        self,
        snapshot: Snapshot,
        *,
        qualify: bool = False,
        source: str | None = None,
        signed: Snapshot | None = None,
        reuse: Reuse | None = None,
    ) -> Iterator[FileResult]:
        """``scan``'s files one at a time, finished (signature status, source, display path), in report order;
        none is held meanwhile (see ``engine.stream_snapshot``). The snapshot's errors are the caller's."""
        snap = select(snapshot, self.settings.selection)
        src = source or source_uri(snap)
        opts = self.settings.for_source(src)
        outcome = check_snapshot_signature(
            signed or snap,
            self.rules,
            signature=opts.signature,
            keys=opts.signature_keys,
            chains=opts.signature_chains,
            identities=opts.signature_identities,
        )
        if outcome is not None and outcome.digests:
            opts = replace(opts, known_sha256={**opts.known_sha256, **outcome.digests})
        move = display_paths(snap) if qualify else None
        for fr in stream_snapshot(snap, opts, self.rules, executor=self.executor, reuse=reuse):
            if outcome is not None:
                apply_signature_status([fr], outcome, self.rules)
            yield self._finish(fr, src, move)
        for fr in outcome.extra_results if outcome is not None else ():
            yield self._finish(fr, src, move)

    @staticmethod
    def _finish(fr: FileResult, src: str, move: Callable[[str], str] | None) -> FileResult:
        fr.source = src
        if move is not None:
            reroot([fr], move)
        return fr

    def scan_targets(
        self, targets: Iterable[str], add: Callable[[FileResult], None] | None = None
    ) -> ScanReport:
        """Resolve and scan every target. A target that cannot be resolved is a report error, not a crash.

        With ``add``, each finished file goes to ``add`` in report order instead of ``report.files``, and none
        is held here (see ``stream``): the caller keeps them (``bytes_read`` and ``total_size`` are its to set).
        """
        targets = list(targets)
        report = new_report(targets, self.rules)
        t0 = time.monotonic()
        multi = len(targets) > 1
        collect = report.files.append if add is None else add
        for raw in targets:
            try:
                snap = self.resolve(raw)
            except SourceError as exc:
                report.errors.append(redact(str(exc)))
                continue
            for fr in self.stream(snap, qualify=multi or snap.kind != "local"):
                collect(fr)
            report.errors.extend(redact(e) for e in snap.errors)  # network faults: the scan did not complete
            del snap  # its listing goes before the next target's is made
        finish_report(report, t0)
        return report


def scan_targets(
    targets: Iterable[str],
    opts: ScanOptions | None = None,
    executor: Executor = SERIAL,
    add: Callable[[FileResult], None] | None = None,
) -> ScanReport:
    """``modelward scan`` without the verdict: the rule database the settings name, one pipeline (``add``: see
    ``Pipeline.scan_targets``)."""
    opts = opts or ScanOptions()
    return Pipeline(get_rule_db(opts.rules_root), opts, executor).scan_targets(targets, add)


def new_report(targets: list[str], rules: RuleDB) -> ScanReport:
    """A report whose target list carries no credentials (URL userinfo, tokens in query strings)."""
    return ScanReport(
        scanner_version=__version__, rules_version=rules.version, targets=[redact_url(t) for t in targets]
    )


def finish_report(report: ScanReport, t0: float) -> None:
    report.duration_seconds = round(time.monotonic() - t0, 3)
    report.bytes_read = sum(f.bytes_read for f in report.files)
    report.total_size = sum(f.size for f in report.files)


def source_uri(snap: Snapshot) -> str:
    """The target as policies match it: remote URIs as given, local paths as absolute file:// URIs."""
    if snap.kind == "local":
        return "file://" + snap.resolved
    return redact_url(snap.target)


def display_paths(snap: Snapshot) -> Callable[[str], str]:
    """Snapshot-relative path -> the path a report shows: under the (redacted) target, or, for a single local
    file, the target itself (``model.pt!data.pkl`` stays a member of it; anything else is about that file)."""
    base = redact_url(snap.target).rstrip("/")
    if (
        snap.kind == "local"
        and len(snap.artifacts) == 1
        and not snap.problems
        and Path(snap.resolved).is_file()
    ):
        name = snap.artifacts[0].path
        return lambda p: base + p[len(name) :] if p.startswith(name) else base
    return lambda p: f"{base}/{p}"


def under(root: str) -> Callable[[str], str]:
    """Paths shown under ``root`` (a dependency name); paths already there stay as they are."""
    return lambda p: p if p == root or p.startswith(root + "/") else f"{root}/{p}"
