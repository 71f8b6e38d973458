"""The MAC key that authenticates what modelward keeps in its cache folder, and where that folder is.

Separate from ``cache`` so that start-up code (``dataclass_code``) can load the key before any module with
dataclasses is imported.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


class CacheKeyError(Exception):
    """No trustworthy MAC key: the cache is not used (every lookup a miss, nothing written)."""


def modelward_cache_home() -> Path:
    """The user's modelward cache folder (``$XDG_CACHE_HOME/modelward``); results and quarantine live under it."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelward"


def default_key_file() -> Path:
    """``$MODELWARD_CACHE_KEY_FILE``, else ``$XDG_CONFIG_HOME/modelward/cache.key`` (never the cache folder)."""
    env = os.environ.get("MODELWARD_CACHE_KEY_FILE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "modelward" / "cache.key"


def _within(child: Path, root: Path) -> bool:
    try:
        child.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def load_key(cache_root: Path) -> bytes:
    """The MAC key: from the environment, else the user's key file (created on first use, mode 0600).

    A key file inside the cache folder, not owned by this user, or readable/writable by others is
    refused: whoever can read it can forge entries.
    """
    env = os.environ.get("MODELWARD_CACHE_KEY")
    if env:
        return hashlib.sha256(b"modelward-cache-key\0" + env.encode()).digest()
    path = default_key_file()
    if _within(path, cache_root):
        raise CacheKeyError(f"{path}: the cache key must not live inside the cache folder {cache_root}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise CacheKeyError(f"{path}: cannot create the cache key: {exc.strerror}") from None
    else:
        import secrets  # only the first run creates a key

        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise CacheKeyError(f"{path}: cannot read the cache key: {exc.strerror}") from None
    with os.fdopen(fd, "r") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CacheKeyError(f"{path}: the cache key is not a regular file")
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
            raise CacheKeyError(f"{path}: the cache key must be owned by this user and mode 0600")
        text = fh.read(200).strip()
    if len(text) < 32:
        raise CacheKeyError(f"{path}: the cache key is too short")
    return hashlib.sha256(b"modelward-cache-key\0" + text.encode()).digest()
