"""Scan-result cache keyed by content digest, rule-database version and scan settings.

Only digests the scanner computed itself are used as keys: a registry's claimed
digest is not proof of the bytes, and a cached "clean" must never attach to
bytes nobody hashed. Entries are written atomically; a corrupt entry is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import __version__
from .findings import FileResult


def default_cache_dir() -> Path:
    env = os.environ.get("MODELWARD_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelward" / "results"


class ResultCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def key(self, sha256: str, rules_version: str, settings: str) -> str:
        raw = f"{sha256}|{rules_version}|{__version__}|{settings}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> FileResult | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            fr = FileResult.model_validate(data)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        fr.cached = True
        return fr

    def put(self, key: str, result: FileResult) -> None:
        path = self._path(key)
        tmp = path.with_name(path.name + f".{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(result.model_dump_json(), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
