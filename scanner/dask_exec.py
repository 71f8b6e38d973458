"""Judge local files on an existing Dask cluster (``--dask tcp://scheduler:8786``): zoo audits past one machine.

Workers need modelward installed and read the files themselves (a shared file system); they receive
paths, never bytes. The coordinator keeps the inventory and records each result as it arrives. A task
whose worker dies is re-run elsewhere (``retries``); a task that still fails becomes an
INSPECTOR-ERROR finding for that file, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .engine import SERIAL, LocalJob, judge_local_job, local_job, unjudged_result
from .findings import FileResult
from .rules import RuleDB, get_rule_db
from .settings import ScanOptions
from .sources.base import Artifact, SourceError

RETRIES = 2


def judge_job(job: LocalJob, opts: ScanOptions, rules_root: str) -> str:
    """Runs on a Dask worker: judge one file exactly as a local scan would; the FileResult as JSON."""
    return judge_local_job(job, get_rule_db(rules_root), opts)


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


class DaskExecutor:
    """Local files on the Dask scheduler at ``address``; remote files in this process."""

    def __init__(self, address: str) -> None:
        self.address = address

    def judge(self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions) -> Iterator[FileResult]:
        """Yield a FileResult per artifact in input order; each is passed to ``on_file`` as it arrives."""
        if not artifacts or not all(a.local_path for a in artifacts):
            yield from SERIAL.judge(artifacts, rules, opts)
            return
        from distributed import as_completed

        jobs = [local_job(a) for a in artifacts]
        client = _client(self.address)
        try:
            [shared] = client.scatter([opts.for_workers()], broadcast=True)
            futures = client.map(
                judge_job, jobs, opts=shared, rules_root=str(rules.root), retries=RETRIES, pure=False
            )
            index = {f.key: i for i, f in enumerate(futures)}
            done: list[FileResult | None] = [None] * len(jobs)
            for fut in as_completed(futures, loop=client.loop):
                i = index[fut.key]
                try:
                    fr = FileResult.model_validate_json(fut.result())
                except Exception as exc:  # the task failed on every try: fail closed for that file
                    fr = _failed(artifacts[i], f"{type(exc).__name__}: {exc}", rules)
                done[i] = fr
                if opts.on_file:
                    opts.on_file(fr)
            yield from (fr for fr in done if fr is not None)
        finally:
            client.close()


def _failed(art: Artifact, why: str, rules: RuleDB) -> FileResult:
    return unjudged_result(
        art, f"Dask task failed after {RETRIES + 1} tries", f"distributed inspection failed: {why}", rules
    )
