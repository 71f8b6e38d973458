"""Judge many local files on several cores (zoo audits): one process per core, results in input order.

Inspection is CPU-bound Python, so threads would not help. Workers receive
paths, never open file handles or model bytes; each result comes back as the
FileResult model's JSON. ``executor_for`` picks the strategy an entry point hands to the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from .engine import SERIAL, Executor, LocalJob, judge_local_job, local_job
from .findings import FileResult
from .rules import RuleDB, get_rule_db
from .settings import ScanOptions
from .sources.base import Artifact


class _WorkerState:
    """What each worker process judges with, set once by the pool's initializer."""

    opts: ScanOptions = ScanOptions()
    rules: RuleDB | None = None


def _init(opts: ScanOptions, rules_root: str) -> None:
    _WorkerState.opts = opts
    _WorkerState.rules = get_rule_db(rules_root)


def _judge(job: LocalJob) -> str:
    assert _WorkerState.rules is not None  # set by _init before any job runs
    return judge_local_job(job, _WorkerState.rules, _WorkerState.opts)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class ProcessExecutor:
    """Local files on ``workers`` processes; remote files, or too few to share out, in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def judge(self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions) -> Iterator[FileResult]:
        if len(artifacts) <= self.workers or not all(a.local_path for a in artifacts):
            yield from SERIAL.judge(artifacts, rules, opts)
            return
        from concurrent.futures import ProcessPoolExecutor  # multiprocessing only when a pool runs

        with ProcessPoolExecutor(
            max_workers=self.workers, initializer=_init, initargs=(opts.for_workers(), str(rules.root))
        ) as pool:
            for raw in pool.map(_judge, [local_job(a) for a in artifacts], chunksize=8):
                fr = FileResult.model_validate_json(raw)
                if opts.on_file:
                    opts.on_file(fr)
                yield fr


def executor_for(workers: int = 1, dask_address: str | None = None) -> Executor:
    """The execution strategy for ``--workers``/``--dask``: a Dask cluster, local processes, or serial."""
    if dask_address:
        from .dask_exec import DaskExecutor

        return DaskExecutor(dask_address)
    if workers > 1:
        return ProcessExecutor(workers)
    return SERIAL
