"""Judge local files on an existing Dask cluster (``--dask tcp://scheduler:8786``): zoo audits past one machine.

Workers need modelward installed and read the files themselves (a shared file system); they receive
paths, never bytes. The coordinator keeps the inventory and records each result as it arrives. A task
whose worker dies is re-run elsewhere (``retries``); a task that still fails becomes an
INSPECTOR-ERROR finding for that file, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from .findings import Coverage, FileResult
from .sources.base import Artifact, SourceError

RETRIES = 2


def judge_job(job: tuple[str, str, int], opts: Any, rules_root: Any) -> str:
    """Runs on a Dask worker: judge one file exactly as a local scan would; the FileResult as JSON."""
    from .engine import inspect_artifact
    from .io.reader import FileReader
    from .rules import get_rule_db

    rel, local, size = job
    art = Artifact(path=rel, size=size, opener=lambda: FileReader(local, name=rel), local_path=local)
    return inspect_artifact(art, get_rule_db(rules_root), opts).model_dump_json()


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise SourceError("--dask needs dask.distributed: pip install 'modelward[dask]'") from None
    try:
        return Client(address, timeout=15, set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, CommClosedError ...
        raise SourceError(
            f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: {exc}"
        ) from None


def judge_on_dask(
    artifacts: list[Artifact],
    opts: Any,
    rules_root: Any,
    address: str,
    on_file: Callable[[FileResult], None] | None = None,
) -> Iterator[FileResult]:
    """Yield a FileResult per artifact in input order; each is passed to ``on_file`` as it arrives."""
    from distributed import as_completed

    picklable = replace(opts, on_file=None, reuse=None, dask_address=None)
    jobs = [(a.path, a.local_path or "", a.size) for a in artifacts]
    client = _client(address)
    try:
        [shared] = client.scatter([picklable], broadcast=True)
        futures = client.map(judge_job, jobs, opts=shared, rules_root=rules_root, retries=RETRIES, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        done: list[FileResult | None] = [None] * len(jobs)
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            try:
                fr = FileResult.model_validate_json(fut.result())
            except Exception as exc:  # the task failed on every try: fail closed for that file
                fr = _failed(artifacts[i], f"{type(exc).__name__}: {exc}")
            done[i] = fr
            if on_file:
                on_file(fr)
        yield from (fr for fr in done if fr is not None)
    finally:
        client.close()


def _failed(art: Artifact, why: str) -> FileResult:
    from .rules import get_rule_db

    fr = FileResult(
        path=art.path,
        size=art.size,
        format="unknown",
        coverage=Coverage.NONE,
        coverage_notes=[f"Dask task failed after {RETRIES + 1} tries"],
    )
    fr.findings.append(
        get_rule_db().finding("INSPECTOR-ERROR", f"distributed inspection failed: {why[:300]}", art.path)
    )
    return fr
