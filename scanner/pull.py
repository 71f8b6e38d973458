"""Verified pull: download into quarantine, hash while streaming, check claims, scan, and only then install.

Nothing reaches the destination before every file's bytes matched the
registry's claims and the scan of those same bytes was allowed. The quarantine
is a locked private folder modelward owns (see ``scanner.quarantine``), never
inside or beside the destination, so no scan of it sees partial files; installing
is a rename (a synced copy across filesystems). Hugging Face repos install into
the huggingface_hub cache layout (``blobs/<etag>``, ``snapshots/<commit>/<path>``
links, ``refs/<revision>``) so ``from_pretrained(..., local_files_only=True)``
uses exactly what was checked;
``--to DIR`` installs a plain folder instead. A failed hash, a blocked scan, an
interrupted download or Ctrl-C removes the quarantine and writes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from . import __version__
from .engine import reroot
from .findings import Coverage, Decision, FileResult, Reason, ScanReport, Verdict
from .gate.lockfile import LockedModel
from .io.reader import FileReader, ReaderError
from .io.redaction import redact, redact_url
from .pipeline import Pipeline, display_paths
from .policy.decide import decide
from .policy.scan_settings import compile_scan_settings
from .quarantine import (
    LEGACY_PREFIX,
    STAGING_PREFIX,
    clean_stale,
    move_file,
    move_tree,
    open_quarantine,
    quarantine_root,
)
from .rules import RuleDB, get_rule_db
from .selection import Selection
from .selection import apply as select
from .settings import ScanOptions, SourceScopes
from .sources.base import Artifact, Snapshot, SourceError
from .sources.claims import claim_findings
from .targets import parse_target, source_for

if TYPE_CHECKING:
    from .policy.loader import Policy
    from .sources.hf import HFResolved

COPY_CHUNK = 1 << 20


class PullError(Exception):
    """The pull could not complete (unreachable source, disk full, bad destination); exit 2."""


@dataclass
class PullOptions:
    to: Path | None = None  # plain folder; None: the HF cache for hf:// targets, the current folder for URLs
    cache_dir: Path | None = None  # HF cache root (default: $HF_HUB_CACHE or $HF_HOME/hub)
    source_options: dict[str, object] = field(default_factory=dict)
    scan: ScanOptions = field(default_factory=ScanOptions)
    progress: bool | None = None  # None: on when stderr is a TTY and CI is unset
    policy: Policy | None = None  # None: the built-in default
    locked: LockedModel | None = None  # the lockfile's pin for this target: resolve it, verify against it


@dataclass
class PullOutcome:
    report: ScanReport
    installed: list[str] = field(default_factory=list)
    destination: str | None = None
    message: str = ""


def _quiet() -> bool:
    return not sys.stderr.isatty() or bool(os.environ.get("CI"))


class _Progress:
    """A rich progress bar on stderr for downloads; silent when not a TTY or under CI."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._p = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._p.start()
        self._task = self._p.add_task("downloading + hashing", total=total)

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def describe(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._task, description=text[:40])

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


@dataclass
class _Fetched:
    artifact: Artifact
    local: Path
    sha256: str
    git_sha1: str
    size: int
    problems: list = field(default_factory=list)  # IntegrityProblem from the reader


class _DownloadFailed(Exception):
    def __init__(self, message: str, problems: list) -> None:
        super().__init__(message)
        self.problems = problems


_INTEGRITY_RULES = frozenset(
    {"REGISTRY-SIZE-MISMATCH", "REGISTRY-DIGEST-MISMATCH", "REGISTRY-CONTENT-CHANGED"}
)


def _download(art: Artifact, dest: Path, progress: _Progress) -> _Fetched:
    """Stream one artifact into ``dest``, hashing every byte written (sha256 and git blob sha1)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h256 = hashlib.sha256()
    h1 = hashlib.sha1(b"blob %d\0" % art.size, usedforsecurity=False)
    n = 0
    reader = None
    try:
        reader = art.open()
        with open(dest, "xb") as out:
            for chunk in reader.stream(0, None, COPY_CHUNK):
                out.write(chunk)
                h256.update(chunk)
                h1.update(chunk)
                n += len(chunk)
                progress.advance(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except ReaderError as exc:
        raise _DownloadFailed(
            str(exc), list(reader.integrity_problems if reader is not None else [])
        ) from None
    finally:
        if reader is not None:
            reader.close()
    return _Fetched(
        art, dest, h256.hexdigest(), h1.hexdigest(), n, list(reader.integrity_problems if reader else [])
    )


def _verify(f: _Fetched, rules: RuleDB) -> list:
    """Compare what was written with what the registry claims; every mismatch is a finding."""
    a = f.artifact
    out = []
    if f.size != a.size:
        out.append(
            rules.finding(
                "REGISTRY-SIZE-MISMATCH",
                f"downloaded {f.size} bytes, the registry claims {a.size}",
                a.path,
                evidence={"claimed": a.size, "served": f.size},
            )
        )
    if a.claimed_sha256 and f.sha256 != a.claimed_sha256.lower():
        out.append(
            rules.finding(
                "REGISTRY-DIGEST-MISMATCH",
                f"downloaded bytes have sha256 {f.sha256}, the registry claims {a.claimed_sha256}",
                a.path,
                evidence={"algorithm": "sha256", "claimed": a.claimed_sha256, "actual": f.sha256},
            )
        )
    if a.claimed_git_sha1 and f.git_sha1 != a.claimed_git_sha1.lower():
        out.append(
            rules.finding(
                "REGISTRY-DIGEST-MISMATCH",
                f"downloaded bytes have git blob sha1 {f.git_sha1}, the registry claims {a.claimed_git_sha1}",
                a.path,
                evidence={"algorithm": "git-sha1", "claimed": a.claimed_git_sha1, "actual": f.git_sha1},
            )
        )
    if not a.claimed_sha256 and not a.claimed_git_sha1:
        out.append(
            rules.finding(
                "REGISTRY-UNVERIFIED",
                "no registry digest to compare with (pin one, e.g. URL#sha256=<hex>)",
                a.path,
                evidence={"sha256": f.sha256},
            )
        )
    out.extend(claim_findings(a, None, None, rules))  # the Hub's own status, as information
    return out


def _blocked_result(art: Artifact, findings: list, note: str) -> FileResult:
    fr = FileResult(
        path=art.path, size=art.size, format="not-read", coverage=Coverage.NONE, coverage_notes=[note]
    )
    fr.findings.extend(findings)
    return fr


class _Plan:
    """Where the files go and where they wait meanwhile (same filesystem, so installing is a rename)."""

    def __init__(self, snapshot: Snapshot, opts: PullOptions, hf: HFResolved | None) -> None:
        self.snapshot = snapshot
        self.hf = hf
        self.created: list[Path] = []
        if hf is not None and opts.to is None:
            from .sources.hf import hf_hub_cache

            self.cache_root = (opts.cache_dir or hf_hub_cache()).expanduser()
            self.repo_dir = self.cache_root / hf.ref.cache_folder
            rev = hf.ref.revision or "main"
            if not _safe_ref_name(rev):  # refs/<rev> is written into the cache: it must stay there
                raise PullError(
                    f"revision {rev[:200]!r} cannot be recorded in the Hugging Face cache (a ref name "
                    f"must not be absolute or contain '..', empty parts or backslashes)"
                )
            self.plain: Path | None = None
            parent = self.cache_root
        else:
            self.plain = (opts.to or Path.cwd()).expanduser().absolute()
            if self.plain.exists() and not self.plain.is_dir():
                raise PullError(f"{self.plain}: exists and is not a folder")
            parent = self.plain.parent if not self.plain.exists() else self.plain
        self._mkdirs(parent)
        self.dest_parent = parent
        # Quarantine lives in a modelward-owned folder no scan of the destination sees; a killed pull's
        # quarantine (and a killed cross-filesystem install's staging copy) is removed by the next pull.
        clean_stale(self.repo_dir / "blobs" if self.plain is None else parent, STAGING_PREFIX)
        clean_stale(
            parent, LEGACY_PREFIX
        )  # older releases quarantined here, without a lock: removed once old
        try:
            self._q = open_quarantine()
        except OSError as exc:
            raise PullError(
                f"{quarantine_root()}: cannot create a quarantine folder: {exc.strerror}"
            ) from None
        self.quarantine = self._q.path

    def _mkdirs(self, path: Path) -> None:
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PullError(f"{path}: cannot create: {exc.strerror}") from None
        self.created.extend(missing)  # deepest first: removed again when the pull fails

    def check_space(self, total: int) -> None:
        places = [self.quarantine]
        if not self._q.same_filesystem(self.dest_parent):
            places.append(self.dest_parent)  # installing copies: both filesystems need the room
        for place in places:
            free = shutil.disk_usage(place).free
            if total > free:
                raise PullError(f"{place}: needs {total} bytes, only {free} free")

    def discard(self, *, remove_created: bool) -> None:
        self._q.discard()
        if remove_created:
            for d in self.created:
                try:
                    d.rmdir()
                except OSError:
                    pass

    # ---- install ------------------------------------------------------------------------------------

    def install(self, fetched: list[_Fetched]) -> tuple[str, list[str]]:
        if self.plain is None:
            return self._install_hf_cache(fetched)
        return self._install_plain(fetched)

    def _install_plain(self, fetched: list[_Fetched]) -> tuple[str, list[str]]:
        assert self.plain is not None
        installed = []
        if not self.plain.exists():
            staged = self.quarantine / "tree"
            move_tree(staged, self.plain)  # the whole folder appears at once
            return str(self.plain), [str(self.plain / f.artifact.path) for f in fetched]
        self._check_targets(fetched)
        for f in fetched:
            target = self.plain / f.artifact.path
            target.parent.mkdir(parents=True, exist_ok=True)
            move_file(self.quarantine / "tree" / f.artifact.path, target, self.plain)
            installed.append(str(target))
        return str(self.plain), installed

    def _check_targets(self, fetched: list[_Fetched]) -> None:
        """Refuse before moving anything when a file cannot be put in place (a folder where a file goes,
        a file where a folder goes): a failure half-way would leave some files installed and others not."""
        assert self.plain is not None
        for f in fetched:
            target = self.plain / f.artifact.path
            if target.is_dir() and not target.is_symlink():
                raise PullError(f"{target}: is a folder where the file {f.artifact.path} goes")
            parent = target.parent
            while parent != self.plain and self.plain in parent.parents:
                if (parent.exists() or parent.is_symlink()) and not parent.is_dir():
                    raise PullError(f"{parent}: is not a folder, but {f.artifact.path} goes inside it")
                parent = parent.parent

    def _install_hf_cache(self, fetched: list[_Fetched]) -> tuple[str, list[str]]:
        hf = self.hf
        assert hf is not None  # no plain folder: an HF cache install
        commit = hf.commit
        blobs = self.repo_dir / "blobs"
        snap_dir = self.repo_dir / "snapshots" / commit
        blobs.mkdir(parents=True, exist_ok=True)
        snap_dir.mkdir(parents=True, exist_ok=True)
        installed = []
        for f in fetched:  # 1. content-addressed blobs (each rename atomic; names are verified digests)
            move_file(self.quarantine / "tree" / f.artifact.path, blobs / _blob_name(f), blobs)
        for f in fetched:  # 2. snapshot links, each swapped in atomically
            etag = _blob_name(f)
            link = snap_dir / f.artifact.path
            link.parent.mkdir(parents=True, exist_ok=True)
            depth = len(PurePosixPath(f.artifact.path).parts) - 1
            rel = os.path.join(*([".."] * (depth + 2)), "blobs", etag)
            tmp = link.with_name(f".{link.name}.modelward-tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(rel, tmp)
            os.replace(tmp, link)
            installed.append(str(link))
        rev = hf.ref.revision or "main"
        if rev != commit:  # 3. the ref last: once it points here, everything it names is in place
            ref_file = self.repo_dir / "refs" / rev
            ref_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = ref_file.with_name(f".{ref_file.name}.modelward-tmp")
            tmp.write_text(commit, encoding="utf-8")
            os.replace(tmp, ref_file)
        return str(snap_dir), installed


def _safe_ref_name(rev: str) -> bool:
    """A branch or tag name usable as a path under ``refs/`` (``refs/pr/1`` is; ``../x`` and ``/x`` are not)."""
    if not rev or "\\" in rev or "\0" in rev or rev.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in rev.split("/"))


def _blob_name(f: _Fetched) -> str:
    """The HF cache blob name: the digest computed over the bytes written, never the registry's text.

    The Hub names LFS blobs by sha256 and other files by git blob sha1; verification made the claim equal to
    what we computed, but only the computed hex digest is safe to use as a file name whatever the server said.
    """
    if f.artifact.claimed_sha256 or not f.artifact.claimed_git_sha1:
        return f.sha256
    return f.git_sha1


def _refuse_unverified(verdict: Verdict, results: list[FileResult]) -> None:
    """Bytes that contradict the registry's size or digest are never installed, whatever the policy says.

    A policy may downgrade findings (audit mode) for reporting, but ``pull`` promises verified files only:
    such a file turns the pull's verdict into BLOCK, so nothing is installed.
    """
    for fr in results:
        for finding in fr.findings:
            if finding.rule_id not in _INTEGRITY_RULES:
                continue
            verdict.decision = Decision.BLOCK
            verdict.file_decisions[fr.path] = Decision.BLOCK
            if any(
                r.decision is Decision.BLOCK and r.path == fr.path and r.rule_id == finding.rule_id
                for r in verdict.reasons
            ):
                continue  # the policy already blocks for this
            verdict.reasons.append(
                Reason(
                    decision=Decision.BLOCK,
                    message=f"the downloaded bytes do not match the registry ({finding.rule_id}); "
                    f"pull never installs unverified files, whatever the policy",
                    path=fr.path,
                    rule_id=finding.rule_id,
                )
            )


def _resolve(target: str, opts: PullOptions) -> tuple[Snapshot, HFResolved | None]:
    t = parse_target(target)
    if t.kind == "local":
        raise PullError(
            f"{target}: pull fetches remote targets (hf://, https://, oci://); scan local files instead"
        )
    if t.kind == "hf":
        from .sources.hf import HFSource, offline_mode

        if offline_mode():
            raise PullError(f"{target}: offline mode (HF_HUB_OFFLINE) is on; nothing can be pulled")
        res = HFSource(**opts.source_options).resolve_repo(target)  # type: ignore[arg-type]
        return res.snapshot, res
    return source_for(t, **opts.source_options).resolve(target), None


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during a pull: unwinds it like Ctrl-C, through every cleanup."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP (a cancelled CI job, a closed terminal, ``timeout``) end a pull through its cleanup.

    Their default action kills the process on the spot: the quarantine with its partly downloaded files, and
    the folders created for the destination, stayed behind. Here the signal unwinds the pull (its ``finally``
    discards both), then is delivered again with its default action, so the exit status is still the signal's.
    Only the main thread can take signals, and a handler someone else installed is left alone.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise _Terminated(signum)

    installed: dict[int, object] = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            installed[sig] = signal.signal(sig, stop)

    def restore() -> None:
        for sig, handler in installed.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        installed.clear()

    try:
        yield
    except _Terminated as t:
        restore()
        os.kill(os.getpid(), t.signum)  # the default action now: the process ends with the signal's status
        raise SystemExit(128 + t.signum) from None
    finally:
        restore()


def pull(
    target: str, opts: PullOptions | None = None, *, on_stage: Callable[[str], None] | None = None
) -> PullOutcome:
    """Download, verify, scan and install ``target``; raises PullError/SourceError when it cannot complete."""
    with _terminate_cleanly():
        return _pull(target, opts, on_stage=on_stage)


def _pull(
    target: str, opts: PullOptions | None = None, *, on_stage: Callable[[str], None] | None = None
) -> PullOutcome:
    opts = opts or PullOptions()
    rules = get_rule_db(opts.scan.rules_root)
    t0 = time.monotonic()
    try:
        snapshot, hf = _resolve(opts.locked.pinned_target(target) if opts.locked else target, opts)
        snapshot = select(snapshot, opts.scan.selection)  # --include/--exclude: only these are downloaded
    except SourceError as exc:
        raise PullError(redact(exc)) from None
    report = ScanReport(scanner_version=__version__, rules_version=rules.version, targets=[snapshot.target])
    plan = _Plan(snapshot, opts, hf)
    progress = _Progress(
        opts.progress if opts.progress is not None else not _quiet(), sum(a.size for a in snapshot.artifacts)
    )
    success = False
    try:
        plan.check_space(sum(a.size for a in snapshot.artifacts))
        fetched: list[_Fetched] = []
        blocked: list[FileResult] = []
        for art in snapshot.artifacts:
            if on_stage:
                on_stage(f"downloading {art.path}")
            progress.describe(art.path)
            try:
                f = _download(art, plan.quarantine / "tree" / art.path, progress)
            except _DownloadFailed as exc:
                integrity = [p for p in exc.problems if p.rule_id in _INTEGRITY_RULES]
                if not integrity:  # the transfer failed: nothing can be judged, nothing is installed
                    raise PullError(redact(f"{snapshot.target}/{art.path}: download failed: {exc}")) from None
                blocked.append(
                    _blocked_result(
                        art,
                        [
                            rules.finding(p.rule_id, p.message, art.path, evidence=dict(p.evidence))
                            for p in integrity
                        ],
                        f"not installed: {redact(exc)}",
                    )
                )
                continue
            fetched.append(f)
        progress.close()
        results = blocked + _scan_quarantined(snapshot, fetched, opts, rules)
        if opts.locked is not None:
            results += lock_drift(
                opts.locked,
                {f.artifact.path: (f.size, f.sha256) for f in fetched},
                {fr.path: fr for fr in results},
                rules,
                opts.scan.selection,
            )
        reroot(results, display_paths(snapshot))
        report.files = results
        report.bytes_read = sum(f.size for f in fetched)
        report.total_size = sum(a.size for a in snapshot.artifacts)
        report.duration_seconds = round(time.monotonic() - t0, 3)
        report.verdict = decide(report, opts.policy, rules)
        _refuse_unverified(report.verdict, results)
        if report.verdict.decision is Decision.BLOCK:
            return PullOutcome(report, message="blocked: nothing was installed")
        if on_stage:
            on_stage("installing")
        dest, installed = plan.install(fetched)
        success = True
        return PullOutcome(
            report,
            installed=installed,
            destination=dest,
            message=f"installed {len(installed)} verified file(s) into {dest}",
        )
    except OSError as exc:
        raise PullError(f"{plan.dest_parent}: {exc.strerror or exc}") from None
    finally:
        progress.close()
        plan.discard(remove_created=not success)


def lock_drift(
    locked: LockedModel,
    got: dict[str, tuple[int, str]],
    results: dict[str, FileResult],
    rules: RuleDB,
    selection: Selection | None = None,
) -> list[FileResult]:
    """Findings for bytes that differ from the lockfile's pins; returns results for pinned files that are gone."""
    pinned = {f.path: f for f in locked.files if selection is None or selection.wants(f.path)}
    extra: list[FileResult] = []
    for path, (size, sha) in got.items():
        fr = results.get(path)
        want = pinned.get(path)
        if fr is None:
            continue
        if want is None:
            fr.findings.append(
                rules.finding("LOCK-FILE-ADDED", f"{path} is not pinned in the lockfile", path)
            )
        elif (size, sha) != (want.size, want.sha256):
            fr.findings.append(
                rules.finding(
                    "LOCK-DIGEST-CHANGED",
                    f"{path} is {size} bytes sha256 {sha}, pinned {want.size} bytes sha256 {want.sha256}",
                    path,
                    evidence={"locked": want.sha256, "actual": sha},
                )
            )
    for path in sorted(set(pinned) - set(got)):
        fr = FileResult(path=path, size=0, format="missing")
        fr.findings.append(
            rules.finding("LOCK-FILE-MISSING", f"pinned file {path} is not served any more", path)
        )
        extra.append(fr)
    return extra


def _scan_quarantined(
    snapshot: Snapshot, fetched: list[_Fetched], opts: PullOptions, rules: RuleDB
) -> list[FileResult]:
    """Scan the quarantined bytes with the same pipeline as ``modelward scan``, as the source they came from.

    The signature is verified before anything is installed (model.sig in the repo, or --signature, over the
    quarantined tree; cosign over the manifest the registry served for OCI): a policy that requires
    signatures blocks an unsigned or wrongly signed model here, exactly as ``scan`` would judge it.
    """
    tree = None  # the quarantine's tree: the first file's path without its relative part
    if fetched:
        tree = fetched[0].local.parents[len(Path(fetched[0].artifact.path).parts) - 1]
    local = Snapshot(
        target=snapshot.target,
        kind="local",
        resolved=str(tree or ""),
        root=None,
        problems=list(snapshot.problems),
    )
    for f in fetched:
        p = str(f.local)
        local.artifacts.append(
            Artifact(
                path=f.artifact.path,
                size=f.size,
                opener=partial(FileReader, p, name=f.artifact.path),
                local_path=p,
            )
        )
    scan_opts = replace(
        opts.scan, known_sha256={**opts.scan.known_sha256, **{f.artifact.path: f.sha256 for f in fetched}}
    )
    if opts.policy is not None and scan_opts.scoped == SourceScopes():
        scan_opts = replace(scan_opts, scoped=compile_scan_settings(opts.policy))
    # OCI: cosign signs the manifest the registry served; elsewhere model.sig covers the quarantined tree
    signed = local if snapshot.kind != "oci" and tree is not None else snapshot
    results = Pipeline(rules, scan_opts).scan(local, source=redact_url(snapshot.target), signed=signed).files
    by_path = {fr.path: fr for fr in results}
    for f in fetched:
        fr = by_path.get(f.artifact.path)
        if fr is None:
            continue
        fr.sha256 = f.sha256
        fr.findings.extend(_verify(f, rules))
    return results
