"""Judge many local files on several cores (zoo audits): one process per core, results in input order.

Inspection is CPU-bound Python, so threads would not help. Workers receive
paths, never open file handles or model bytes; each result comes back as the
FileResult model's JSON.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from .findings import FileResult
from .io.reader import FileReader
from .sources.base import Artifact

_STATE: dict[str, object] = {}


def _init(opts: object, rules_root: object) -> None:
    from .rules import get_rule_db

    _STATE["opts"] = opts
    _STATE["rules"] = get_rule_db(rules_root)  # type: ignore[arg-type]


def _judge(job: tuple[str, str, int]) -> str:
    from .engine import inspect_artifact

    rel, local, size = job
    art = Artifact(path=rel, size=size, opener=lambda: FileReader(local, name=rel), local_path=local)
    return inspect_artifact(art, _STATE["rules"], _STATE["opts"]).model_dump_json()  # type: ignore[arg-type]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def judge_local(
    artifacts: list[Artifact],
    opts: object,
    rules_root: object,
    workers: int,
    on_file: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    """Yield a FileResult per artifact (all must be local files), in order."""
    jobs = [(a.path, a.local_path or "", a.size) for a in artifacts]
    picklable = replace(opts, on_file=None, reuse=None)  # type: ignore[type-var]
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init, initargs=(picklable, rules_root)
    ) as pool:
        for raw in pool.map(_judge, jobs, chunksize=8):
            fr = FileResult.model_validate_json(raw)
            if on_file:
                on_file(fr)
            yield fr
