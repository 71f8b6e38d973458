"""hydra/OmegaConf configs (YAML or JSON) whose instantiate targets are handed a true ``trust_remote_code``.

The per-file walk judges each ``_target_`` and a literal ``trust_remote_code: true``; this check reads the config
as hydra hands it to the callee: Python truthiness ("False" and "no" as strings, a list, a mapping, a nested
target's object are all true for ``if trust_remote_code:``), node interpolations (``${flag}``, ``${..flag}``)
followed, any other interpolation counted as true, YAML merge keys applied, and allowlisted targets that take it
positionally (``_args_``). NeMo's AutoTokenizer ran a tokenizer repository's code for each of these shapes
(hydra 1.3 instantiate, NeMo 2.7.3, transformers 4.57) while the file was allowed.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ..analysis.config_yaml import READERS_DIFFER, parse_yaml_config
from ..analysis.hydra_targets import Link, remote_code_args
from ..findings import Coverage, FileResult
from ..io.reader import ReaderError
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Snapshot
from .findings import RepoFindings

MAX_CONFIG_BYTES = 512 << 10  # as the per-file YAML walk (template_carriers.MAX_YAML_BYTES)
_NAMES = re.compile(r"\.(?:ya?ml|json)$", re.I)
# data files of model repositories no hydra/OmegaConf loader reads as a config: not read again (remote snapshots)
_NOT_CONFIGS = re.compile(
    r"(?:^|/)(?:tokenizer|vocab|special_tokens_map|added_tokens|merges)\.json$|\.index\.json$", re.I
)
MAX_REPORTED = 20
# a NeMo model's config restored from an extracted folder (restore_from a directory): NeMo hands every
# tokenizer/model mapping's trust_remote_code on to transformers, not only instantiate targets' (nemo_file.py)
NEMO_CONFIG = "model_config.yaml"


class _Configs(RepoFindings):
    def __init__(self, results: dict[str, FileResult], rules: RuleDB) -> None:
        self.results = results
        self.rules = rules
        self.extra: list[FileResult] = []


def _walk(data: Any, any_mapping: bool) -> list[tuple[str, str, str, dict[Any, Any]]]:
    """(key path, target, how) of every ``_target_`` node (every mapping: ``any_mapping``) given a true
    trust_remote_code; each container once."""
    out: list[tuple[str, str, str, dict[Any, Any]]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str, Link | None]] = [(data, "", None)]
    while stack and len(out) < MAX_REPORTED and len(seen) < 500_000:
        obj, path, parent = stack.pop()
        if not isinstance(obj, (dict, list)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        link: Link = (obj, parent)
        if isinstance(obj, dict):
            target = obj.get("_target_")
            if target is None and isinstance(obj.get("<<"), (dict, list)):
                target = "<merged>"
            if target is None and any_mapping:
                target = ""
            how = remote_code_args(obj, link, data) if target is not None else None
            if how is not None:
                out.append((path, str(target), how, obj))
            stack.extend((v, f"{path}.{k}".lstrip("."), link) for k, v in obj.items())
        else:
            stack.extend((v, f"{path}[{i}]", link) for i, v in enumerate(obj))
    return out


def check_config_targets(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    from ..analysis.template_carriers import remote_code_requested

    found = _Configs(results, rules)
    for art in snapshot.artifacts:
        name = posixpath.basename(art.path)
        if not _NAMES.search(name) or _NOT_CONFIGS.search(name) or art.size > MAX_CONFIG_BYTES:
            continue
        try:
            with art.open() as r:
                raw = r.read(0, min(r.size, MAX_CONFIG_BYTES))
        except (ReaderError, OSError):
            continue  # the per-file scan reports what it could not read
        nemo = name == NEMO_CONFIG
        if b"_target_" not in raw and b"\\" not in raw and not nemo:
            continue
        if not any(m in raw for m in (b"remote", b"_args_", b"<<", b"\\")):
            continue
        cfg = parse_yaml_config(raw, max_bytes=MAX_CONFIG_BYTES)
        if cfg.error == READERS_DIFFER:
            # the per-file walk judges both readings' targets; how each hands trust_remote_code on is not judged
            found.add(art.path, "CONFIG-TARGET-UNREADABLE", f"{name}: {READERS_DIFFER}")
            found.result(art.path).coverage = Coverage.PARTIAL
            found.result(art.path).coverage_notes.append("YAML readers disagree")
            continue
        if cfg.error or cfg.data is None:
            continue  # unparseable YAML with targets fails closed in the per-file walk
        for path, target, how, node in _walk(cfg.data, nemo):
            if how == "trust_remote_code" and target and remote_code_requested(node):
                continue  # a literal true on a target: reported by the per-file walk already
            found.add(
                art.path,
                "CONFIG-TARGET-UNLISTED",
                f"{path or '<root>'}: {f'_target_ {target[:200]!r}' if target else 'NeMo config'} is handed a true "
                f"trust_remote_code ({how}, as "
                "hydra resolves it and Python tests it); the repository code it loads is outside this scan",
                evidence={"key": f"{path}.trust_remote_code".lstrip(".")[:200], "target": target[:200]},
            )
    return found.extra


REPO_CHECKS = [check_config_targets]
