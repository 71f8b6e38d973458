"""Judge many local files on several cores (zoo audits): one process per core, results in input order.

Inspection is CPU-bound Python, so threads would not help. Workers receive
paths, never open file handles or model bytes; each result comes back as the
FileResult model's JSON. ``executor_for`` picks the strategy an entry point hands to the pipeline.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .engine import SERIAL, Executor, LocalJob, judge_local_job, local_job, unjudged_result
from .findings import FileResult
from .rules import RuleDB, get_rule_db
from .settings import ScanOptions
from .sources.base import Artifact

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor


class _WorkerState:
    """What each worker process judges with, set once by the pool's initializer."""

    opts: ScanOptions = ScanOptions()
    rules: RuleDB | None = None


def _init(opts: ScanOptions, rules_root: str, parent: int) -> None:
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the pool
    _WorkerState.opts = opts
    _WorkerState.rules = get_rule_db(rules_root)


def _die_with(parent: int) -> None:
    """Linux: a worker is killed when the process that started it dies (SIGKILL, SIGTERM, OOM killer). Its pool
    cannot tell it so: each worker holds the job queue open itself and would wait on it forever."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def _judge(job: LocalJob) -> str:
    assert _WorkerState.rules is not None  # set by _init before any job runs
    return judge_local_job(job, _WorkerState.rules, _WorkerState.opts)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class ProcessExecutor:
    """Local files on ``workers`` processes; remote files, or too few to share out, in this process.

    A worker that dies (killed, out of memory, a crash in native code) breaks the whole pool and every
    file it had not returned. Those files are judged again: the few that may have been running when it
    died one at a time in a pool of their own, the rest in a new pool. A file whose own worker dies is an
    INSPECTOR-ERROR with no coverage, never a pass, and the other files are still judged.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def judge(self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions) -> Iterator[FileResult]:
        if len(artifacts) <= self.workers or not all(a.local_path for a in artifacts):
            yield from SERIAL.judge(artifacts, rules, opts)
            return
        from concurrent.futures.process import BrokenProcessPool  # multiprocessing only when a pool runs

        jobs = [local_job(a) for a in artifacts]
        shared = opts.for_workers()
        todo = list(range(len(jobs)))
        while todo:
            judged = 0
            with _pool(self.workers, shared, rules) as pool:
                futures: list[Future[str]] = []
                try:
                    futures.extend(pool.submit(_judge, jobs[i]) for i in todo)
                except BrokenProcessPool:
                    pass  # died while jobs were being handed out: the ones handed out fail below
                try:
                    for i, fut in zip(todo, futures, strict=False):
                        try:
                            fr = FileResult.model_validate_json(fut.result())
                        except BrokenProcessPool:
                            break
                        except Exception as exc:  # noqa: BLE001 - fail closed for that file, judge the others
                            fr = _failed(artifacts[i], f"{type(exc).__name__}: {exc}", rules)
                        judged += 1
                        yield _judged(fr, opts)
                finally:  # interrupted (Ctrl-C) or done: leaving the pool must not first judge what is queued
                    for fut in futures:
                        fut.cancel()
            # the pool broke: a job taken but not returned killed it; at most 2N+1 are taken (N run, N+1 queued)
            rest = todo[judged:]
            suspects, todo = rest[: 2 * self.workers + 1], rest[2 * self.workers + 1 :]
            for i in suspects:
                yield _judged(_alone(jobs[i], artifacts[i], shared, rules), opts)


def _pool(workers: int, opts: ScanOptions, rules: RuleDB) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        max_workers=workers, initializer=_init, initargs=(opts, str(rules.root), os.getpid())
    )


def _alone(job: LocalJob, art: Artifact, opts: ScanOptions, rules: RuleDB) -> FileResult:
    """One file in a worker of its own: if that worker dies too, this file is what killed it."""
    from concurrent.futures.process import BrokenProcessPool

    with _pool(1, opts, rules) as pool:
        try:
            return FileResult.model_validate_json(pool.submit(_judge, job).result())
        except BrokenProcessPool:
            return _failed(
                art, "the worker process judging it died (killed, out of memory or crashed)", rules
            )
        except Exception as exc:  # noqa: BLE001 - fail closed for that file
            return _failed(art, f"{type(exc).__name__}: {exc}", rules)


def _judged(fr: FileResult, opts: ScanOptions) -> FileResult:
    if opts.on_file:
        opts.on_file(fr)
    return fr


def _failed(art: Artifact, why: str, rules: RuleDB) -> FileResult:
    return unjudged_result(
        art, "its worker process failed: not judged", f"inspection in a worker process failed: {why}", rules
    )


def executor_for(workers: int = 1, dask_address: str | None = None) -> Executor:
    """The execution strategy for ``--workers``/``--dask``: a Dask cluster, local processes, or serial."""
    if dask_address:
        from .dask_exec import DaskExecutor

        return DaskExecutor(dask_address)
    if workers > 1:
        return ProcessExecutor(workers)
    return SERIAL
