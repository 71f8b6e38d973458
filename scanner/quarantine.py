"""Where a pull keeps bytes that are not verified yet, and how a killed pull's leftovers go away.

A quarantine inside the destination (or beside it, or in the HF cache) is seen by every later
``scan`` of that folder, and a SIGKILL leaves it there forever. So quarantines live in a folder
modelward owns (``$MODELWARD_QUARANTINE_DIR``, else ``quarantine/`` in the modelward cache folder),
each holding an ``owner.lock`` its pull keeps locked (``flock``) while it runs: the kernel drops
the lock when the owner dies however it dies, so the next pull removes every quarantine whose lock
it can take. Installing is a rename when the destination is on the same filesystem; otherwise the
file is copied beside its target under a hidden, locked staging name, fsynced and renamed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; stale quarantines are aged out instead
    fcntl = None  # type: ignore[assignment]

LEGACY_PREFIX = ".modelward-quarantine-"  # older releases put quarantines here, inside or beside --to
STAGING_PREFIX = ".modelward-staging-"  # cross-filesystem installs copy through these, beside the target
LEFTOVER_MARKERS = (LEGACY_PREFIX, STAGING_PREFIX)
LOCK_NAME = "owner.lock"
NO_LOCK_GRACE = (
    600.0  # a folder without a lock file is someone's mkdtemp-to-lock window, or a crash's leftover
)
COPY_CHUNK = 1 << 20


def quarantine_root() -> Path:
    env = os.environ.get("MODELWARD_QUARANTINE_DIR")
    if env:
        return Path(env).expanduser()
    cache_env = os.environ.get("MODELWARD_CACHE_DIR")
    if cache_env:
        return Path(cache_env).expanduser() / "quarantine"
    from .cache_key import modelward_cache_home

    return modelward_cache_home() / "quarantine"


def is_leftover_name(name: str) -> bool:
    """A pull's private folder or staging file that a scan must not treat as model content."""
    return name.startswith(LEFTOVER_MARKERS)


class _Lock:
    """An exclusive flock on ``owner.lock`` (with our pid in it, for people reading the folder)."""

    def __init__(self, folder: Path) -> None:
        self.fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _owner_dead(folder: Path) -> bool:
    """True when no live process holds the folder's lock (or it has none and is old enough)."""
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        try:
            return time.time() - folder.lstat().st_mtime > NO_LOCK_GRACE
        except OSError:
            return False
    except OSError:
        return False
    try:
        if fcntl is None:
            return time.time() - os.fstat(fd).st_mtime > 7 * 86400
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its pull is alive
        return True
    finally:
        os.close(fd)


def clean_stale(parent: Path, prefix: str = "") -> list[Path]:
    """Remove the folders under ``parent`` (named ``prefix*``) whose owner is gone; returns what went."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(prefix) or not e.is_dir(follow_symlinks=False):
            continue
        folder = Path(e.path)
        if _owner_dead(folder):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


class Quarantine:
    """A private, locked folder for one pull; ``tree/`` mirrors the repository's paths."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or quarantine_root()).absolute()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = self.root.lstat()
        if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            # a planted link or someone else's folder could point the quarantine (and its cleanup) elsewhere
            raise OSError(errno.EPERM, f"{self.root} is not a folder owned by this user")
        self.stale_removed = clean_stale(self.root)
        self.path = Path(tempfile.mkdtemp(prefix=f"pull-{os.getpid()}-", dir=self.root))
        self._lock = _Lock(self.path)
        self.tree = self.path / "tree"
        self.tree.mkdir()

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.release()

    def same_filesystem(self, dest: Path) -> bool:
        p = dest
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            return p.stat().st_dev == self.path.stat().st_dev
        except OSError:
            return False


def open_quarantine() -> Quarantine:
    """A quarantine in the configured root; if that cannot be used (read-only home), a private one in the
    system temp folder (installs then copy if it is another filesystem). ``MODELWARD_QUARANTINE_DIR`` is final."""
    roots = [quarantine_root()]
    if not os.environ.get("MODELWARD_QUARANTINE_DIR"):
        uid = os.getuid() if hasattr(os, "getuid") else 0
        roots.append(Path(tempfile.gettempdir()) / f"modelward-quarantine-{uid}")
    error: OSError | None = None
    for root in roots:
        try:
            return Quarantine(root)
        except OSError as exc:
            error = error or exc
    assert error is not None
    raise error


def move_file(src: Path, dst: Path, staging_parent: Path | None = None) -> None:
    """Atomically put ``src`` at ``dst``: a rename, or across filesystems a copy+fsync in a locked staging
    folder under ``staging_parent`` (default: beside ``dst``; a later pull cleans it if we die), then rename.
    """
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=staging_parent or dst.parent))
    lock = _Lock(staging)
    try:
        tmp = staging / "file"
        with open(src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
        src.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()


def move_tree(src: Path, dst: Path) -> None:
    """Make the folder ``dst`` (which must not exist) appear with ``src``'s content, all at once when possible."""
    try:
        src.rename(dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dst.parent))
    lock = _Lock(staging)
    try:
        tree = staging / "tree"
        shutil.copytree(src, tree, copy_function=_copy_synced)
        tree.rename(dst)
        _fsync_dir(dst.parent)
        shutil.rmtree(src, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()


def _copy_synced(src: str, dst: str) -> str:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        shutil.copyfileobj(fin, fout, COPY_CHUNK)
        fout.flush()
        os.fsync(fout.fileno())
    return dst


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
