"""Scan-result cache keyed by content digest, rule-database version and scan settings.

Only digests the scanner computed itself are used as keys: a registry's claimed
digest is not proof of the bytes, and a cached "clean" must never attach to
bytes nobody hashed. Entries are written atomically; a corrupt entry is a miss.

Whoever can write the cache folder (a CI cache restored from an untrusted branch,
a shared volume) must not be able to turn BLOCK into ALLOW, so every entry
carries an HMAC-SHA256 over its slot key and its result, made with a key that
does not live in the cache folder: ``MODELWARD_CACHE_KEY`` (CI secrets), else a
random key file created 0600 in the user's config folder. An entry whose MAC
does not verify is a miss, and the fresh result overwrites it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

from . import __version__
from .cache_key import CacheKeyError, load_key, modelward_cache_home
from .findings import FileResult

log = logging.getLogger(__name__)
ENTRY_VERSION = 1
_MAC_CONTEXT = b"modelward-result-cache-v1\0"


def default_cache_dir() -> Path:
    env = os.environ.get("MODELWARD_CACHE_DIR")
    if env:
        return Path(env)
    return modelward_cache_home() / "results"


SCANNER_ROOT = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def code_fingerprint(root: Path = SCANNER_ROOT) -> str:
    """Which scanner code judged a result: every source file of the package by name, size and mtime.

    A development checkout (or an install from a branch) keeps ``__version__`` while its analysis changes; a
    verdict cached by other code must not be reused for the same bytes. Stat-only, ~200 files: cheap enough for
    every process that opens the cache."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


class ResultCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.forged = 0  # entries whose MAC did not verify
        self._mac_key: bytes | None = None
        self.disabled: str | None = None  # why the cache is not used (no trustworthy key)

    def key(self, sha256: str, rules_version: str, settings: str) -> str:
        raw = f"{sha256}|{rules_version}|{__version__}|{code_fingerprint()}|{settings}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _key_bytes(self) -> bytes | None:
        if self._mac_key is None and self.disabled is None:
            try:
                self._mac_key = load_key(self.root)
            except CacheKeyError as exc:
                self.disabled = str(exc)
                log.warning("result cache not used: %s", exc)
        return self._mac_key

    def _mac(self, mac_key: bytes, slot: str, body: str) -> str:
        """Binds the result to its slot, so a valid ALLOW entry cannot be copied onto another digest."""
        msg = _MAC_CONTEXT + slot.encode() + b"\0" + body.encode()
        return hmac.new(mac_key, msg, hashlib.sha256).hexdigest()

    def get(self, key: str) -> FileResult | None:
        mac_key = self._key_bytes()
        if mac_key is None:
            self.misses += 1
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
            body, mac = entry["result"], entry["mac"]
            if entry.get("v") != ENTRY_VERSION or not isinstance(body, str) or not isinstance(mac, str):
                raise ValueError("unknown entry layout")
            if not hmac.compare_digest(mac, self._mac(mac_key, key, body)):
                self.forged += 1
                raise ValueError("bad MAC")
            fr = FileResult.model_validate_json(body)
        except (OSError, ValueError, KeyError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        fr.cached = True
        return fr

    def put(self, key: str, result: FileResult) -> None:
        mac_key = self._key_bytes()
        if mac_key is None:
            return
        body = result.model_dump_json()
        entry = json.dumps({"v": ENTRY_VERSION, "mac": self._mac(mac_key, key, body), "result": body})
        path = self._path(key)
        tmp = path.with_name(path.name + f".{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(entry, encoding="utf-8")
            tmp.replace(path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
