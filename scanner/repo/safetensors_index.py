"""model.safetensors.index.json against its shards.

Loaders open exactly the shard files the index's weight_map names, so an
entry naming a missing file, a '../' path or an absolute path sends the loader
outside the scanned set. Shard headers are re-read (header bytes only) to see
that every indexed tensor is really there.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..findings import FileResult, Severity
from ..formats.parsers.json_cost import value_bound
from ..io.reader import FileReader, Reader, ReaderError
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Artifact, Snapshot

INDEX_SUFFIX = ".safetensors.index.json"
MAX_SHARDS = 10_000
MAX_LISTED = 20


@dataclass
class Sibling:
    path: str  # snapshot-relative
    size: int
    artifact: Artifact | None  # None: found on disk next to a single scanned file
    local_path: str | None

    def open(self) -> Reader:
        if self.artifact is not None:
            return self.artifact.open()
        assert self.local_path is not None
        return FileReader(self.local_path, name=self.path)


def resolve_relative(base_file: str, rel: str) -> str:
    """The snapshot path of ``rel`` written inside ``base_file`` (already checked to contain no '..')."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_file), rel.replace("\\", "/")))


def find_sibling(snapshot: Snapshot, path: str) -> Sibling | None:
    """An artifact of the snapshot; for a single local file, also a regular file next to it on disk."""
    for a in snapshot.artifacts:
        if a.path == path:
            return Sibling(path, a.size, a, a.local_path)
    if snapshot.kind == "local" and snapshot.root and Path(snapshot.resolved).is_file():
        p = os.path.join(snapshot.root, *path.split("/"))
        try:
            if os.path.isfile(p):
                return Sibling(path, os.path.getsize(p), None, p)
        except OSError:
            return None
    return None


def local_file_path(snapshot: Snapshot, path: str) -> str | None:
    """The unresolved on-disk path of a snapshot file (links not followed), for local snapshots only."""
    if snapshot.kind != "local" or not snapshot.root:
        return None
    return os.path.join(snapshot.root, *path.split("/"))


def result_for(results: dict[str, FileResult], extra: list[FileResult], path: str, fmt: str) -> FileResult:
    fr = results.get(path)
    if fr is None:
        fr = FileResult(path=path, size=0, format=fmt)
        results[path] = fr
        extra.append(fr)
    return fr


def _load_index(art: Artifact, limits: Limits) -> tuple[Any, str | None]:
    if art.size > limits.max_json_bytes:
        return None, f"index of {art.size} bytes exceeds the JSON limit"
    try:
        with art.open() as r:
            raw = r.read(0, r.size)
        if value_bound(raw) > limits.max_json_values:  # json.loads would cost up to ~25x the text
            return None, f"index holds more than {limits.max_json_values} JSON values; not parsed"
        return json.loads(raw), None
    except (ReaderError, OSError) as exc:
        return None, f"index could not be read: {exc}"
    except (ValueError, RecursionError) as exc:
        return None, f"index is not valid JSON: {exc}"[:200]


def check_indexes(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    extra: list[FileResult] = []
    for art in snapshot.artifacts:
        if not art.path.lower().endswith(INDEX_SUFFIX):
            continue
        # the format modules load only for a repository with an index (a one-file scan never imports them)
        from ..formats.onnx.onnx_model import check_location
        from ..formats.safetensors_file import read_header

        fr = result_for(results, extra, art.path, "json")

        def add(message: str, severity: Severity | None = None, fr: FileResult = fr, **ev: Any) -> None:
            fr.findings.append(
                rules.finding("SAFETENSORS-INDEX-MISMATCH", message, fr.path, severity=severity, evidence=ev)
            )

        index, err = _load_index(art, limits)
        if err:
            add(err)
            continue
        wm = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wm, dict) or not all(isinstance(v, str) for v in wm.values()):
            add("index has no weight_map object of tensor name -> shard file")
            continue
        by_shard: dict[str, list[str]] = {}
        for tensor, shard in wm.items():
            by_shard.setdefault(shard, []).append(tensor)
        if len(by_shard) > MAX_SHARDS:
            add(
                f"index names {len(by_shard)} shards; only the first {MAX_SHARDS} were checked",
                Severity.MEDIUM,
            )
        for shard, tensors in list(by_shard.items())[:MAX_SHARDS]:
            why = check_location(shard)
            if why:
                add(
                    f"weight_map names shard {shard[:200]!r} outside the model folder ({why})",
                    shard=shard[:300],
                    reason=why,
                )
                continue
            path = resolve_relative(art.path, shard)
            sib = find_sibling(snapshot, path)
            if sib is None:
                add(
                    f"weight_map names shard {shard[:200]!r}, which is not in the repository ({len(tensors)} tensors)",
                    shard=shard[:300],
                    tensors=len(tensors),
                )
                continue
            try:
                with sib.open() as r:
                    header = read_header(r)
            except (ReaderError, OSError):
                continue  # the shard's own result reports why it cannot be read
            if not header.parsed:
                continue
            missing = [t for t in tensors if t not in header.tensors]
            if missing:
                add(
                    f"{len(missing)} tensor(s) listed for {shard[:200]!r} are not in that shard: {', '.join(missing[:5])}"[
                        :400
                    ],
                    Severity.MEDIUM,
                    shard=shard[:300],
                    missing=missing[:MAX_LISTED],
                )
    return extra


REPO_CHECKS = [check_indexes]
