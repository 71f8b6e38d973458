"""Repository-level checks: rules that need more than one file (auto_map code, shard indexes, LFS pointers).

Every module in this package that defines ``REPO_CHECKS = [fn, ...]`` is run
once per snapshot after the per-file scan. A check has the signature
``fn(snapshot, results_by_path, rules, limits) -> list[FileResult]``: it may
append findings to existing FileResults and returns any extra results (for
example a file that config.json names but the repository lacks).
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Callable

from ..findings import FileResult
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Snapshot

log = logging.getLogger(__name__)

RepoCheck = Callable[[Snapshot, dict[str, FileResult], RuleDB, Limits], list[FileResult]]


@functools.lru_cache(maxsize=1)
def repo_checks() -> tuple[RepoCheck, ...]:
    found: list[RepoCheck] = []
    for mod in pkgutil.iter_modules(__path__, prefix=__name__ + "."):
        module = importlib.import_module(mod.name)
        found.extend(getattr(module, "REPO_CHECKS", ()))
    return tuple(found)


def inspect_snapshot(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    extra: list[FileResult] = []
    for check in repo_checks():
        try:
            extra.extend(check(snapshot, results, rules, limits))
        except Exception as exc:  # fail closed: a crashed check is reported, not swallowed
            log.debug("repo check %s crashed", check, exc_info=True)
            name = getattr(check, "__module__", "repo")
            fr = FileResult(path=snapshot.root or snapshot.target, size=0, format="repository")
            fr.findings.append(
                rules.finding("INSPECTOR-ERROR", f"repository check {name} could not finish: {exc}"[:400], fr.path)
            )
            fr.coverage_notes.append(f"repository check {name} failed")
            extra.append(fr)
    return extra
