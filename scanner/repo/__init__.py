"""Repository-level checks: rules that need more than one file (auto_map code, shard indexes, LFS pointers).

``MODULES`` lists every module of checks, in the order they run, once per snapshot after
the per-file scan: named explicitly, so a check that is missing or fails to
import is an error, never a silently skipped check. A check has the signature
``fn(snapshot, results_by_path, rules, limits) -> list[FileResult]``: it may
append findings to existing FileResults and returns any extra results (for
example a file that config.json names but the repository lacks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import cast

from ..findings import Coverage, FileResult
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Snapshot

log = logging.getLogger(__name__)

RepoCheck = Callable[[Snapshot, dict[str, FileResult], RuleDB, Limits], list[FileResult]]

# Every module defining checks, in the order they run, with a necessary condition on a file's path for its
# checks to find anything (None: every snapshot). A module is imported only for a snapshot that holds such a
# file (issue #13: a one-file scan imported every check's module, hydra's target analysis with them).
MODULES: tuple[tuple[str, Callable[[str], bool] | None], ...] = (
    ("hf_repo", None),
    ("config_targets", lambda p: any(s in p.lower() for s in (".json", ".yaml", ".yml"))),  # _NAMES
    ("mlflow_model", lambda p: p.endswith("MLmodel")),
    ("onnx_external", None),  # ONNX files are found by content, not by name
    ("openvino", lambda p: ".xml" in p.lower()),
    ("safetensors_index", lambda p: ".safetensors.index.json" in p.lower()),  # INDEX_SUFFIX
)


def _checks_of(module: str) -> list[RepoCheck]:
    return list(import_module(f".{module}", __package__).REPO_CHECKS)


def checks_for(paths: Iterable[str]) -> list[RepoCheck]:
    """The checks that can act on a snapshot holding ``paths``, in order."""
    paths = list(paths)
    return [
        check
        for module, wanted in MODULES
        if wanted is None or any(map(wanted, paths))
        for check in _checks_of(module)
    ]


def __getattr__(name: str) -> tuple[RepoCheck, ...]:
    """``REPO_CHECKS``: every check of every module (imports them all; tools and tests)."""
    if name == "REPO_CHECKS":
        return tuple(check for module, _ in MODULES for check in _checks_of(module))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def inspect_snapshot(
    snapshot: Snapshot, results: Mapping[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    """Run every check on ``results`` (``{path: result}``, or a ``ResultTable``, the same mapping on disk: the
    checks use a dict's ``get``, ``[]``, ``in`` and assignment, and ask it the questions in ``results``)."""
    extra: list[FileResult] = []
    by_path = cast(dict[str, FileResult], results)
    for check in checks_for(a.path for a in snapshot.artifacts):
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
