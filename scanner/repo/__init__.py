"""Repository-level checks: rules that need more than one file (auto_map code, shard indexes, LFS pointers).

``REPO_CHECKS`` lists every check, in the order they run, once per snapshot after
the per-file scan: imported explicitly, so a check that is missing or fails to
import is an error, never a silently skipped check. A check has the signature
``fn(snapshot, results_by_path, rules, limits) -> list[FileResult]``: it may
append findings to existing FileResults and returns any extra results (for
example a file that config.json names but the repository lacks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import cast

from ..findings import Coverage, FileResult
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Snapshot
from . import config_targets, hf_repo, mlflow_model, onnx_external, openvino, safetensors_index

log = logging.getLogger(__name__)

RepoCheck = Callable[[Snapshot, dict[str, FileResult], RuleDB, Limits], list[FileResult]]


REPO_CHECKS: tuple[RepoCheck, ...] = (
    *hf_repo.REPO_CHECKS,
    *config_targets.REPO_CHECKS,
    *mlflow_model.REPO_CHECKS,
    *onnx_external.REPO_CHECKS,
    *openvino.REPO_CHECKS,
    *safetensors_index.REPO_CHECKS,
)


def inspect_snapshot(
    snapshot: Snapshot, results: Mapping[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    """Run every check on ``results`` (``{path: result}``, or a ``ResultTable``, the same mapping on disk: the
    checks use a dict's ``get``, ``[]``, ``in`` and assignment, and ask it the questions in ``results``)."""
    extra: list[FileResult] = []
    by_path = cast(dict[str, FileResult], results)
    for check in REPO_CHECKS:
        try:
            extra.extend(check(snapshot, by_path, rules, limits))
        except Exception as exc:  # fail closed: a crashed check is reported, not swallowed
            log.debug("repo check %s crashed", check, exc_info=True)
            name = getattr(check, "__module__", "repo")
            fr = FileResult(
                path=snapshot.root or snapshot.target, size=0, format="repository", coverage=Coverage.PARTIAL
            )
            fr.findings.append(
                rules.finding(
                    "INSPECTOR-ERROR", f"repository check {name} could not finish: {exc}"[:400], fr.path
                )
            )
            fr.coverage_notes.append(f"repository check {name} failed")
            extra.append(fr)
    return extra
