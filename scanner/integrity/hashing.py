"""Streaming, parallel file hashing with bounded memory.

Why it looks like this:
- Model files are often tens of GB. Each worker reads through one reusable buffer with ``readinto``
  (no per-block allocation, never the whole file in memory).
- ``hashlib`` releases the GIL while hashing big buffers and file reads release it too, so plain
  threads give real parallelism across files and across byte ranges (the OMS "shards" method).
- A digest of a file that changed under us is worse than no digest: every read checks the file's
  identity (device, inode, size, mtime and ctime: ``os.utime`` can restore an mtime, nothing
  unprivileged can restore a ctime) before and after, and that the byte count is what was expected.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

from scanner.integrity.errors import FileChangedError, IntegrityError

DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
"""8 MiB: large enough that per-call overhead vanishes, small enough for many parallel workers."""

_ALIASES = {"sha256": "sha256", "sha-256": "sha256", "blake2b": "blake2b", "blake2": "blake2b"}
SUPPORTED_ALGORITHMS = ("sha256", "blake2b")

_T = TypeVar("_T")
_R = TypeVar("_R")


class Hasher(Protocol):
    """What we use of a ``hashlib`` object (``sha256()`` and ``blake2b()`` have different classes)."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def normalize_algorithm(name: str) -> str:
    """Map accepted spellings to the canonical name (model-signing writes ``blake2b`` but its
    guesser only accepts ``blake2``; we take both)."""
    canonical = _ALIASES.get(str(name).strip().lower())
    if canonical is None:
        raise IntegrityError(
            f"unsupported hash algorithm {name!r} (supported: {', '.join(SUPPORTED_ALGORITHMS)}; "
            "'blake2' is accepted as blake2b)"
        )
    return canonical


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hash object; blake2b uses its full 64-byte digest, as model-signing does."""
    algo = normalize_algorithm(algorithm)
    return hashlib.sha256() if algo == "sha256" else hashlib.blake2b()


def default_workers() -> int:
    return max(1, min(32, os.cpu_count() or 1))


FileIdentity = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class RangeJob:
    """Hash bytes ``[start, end)`` of ``path``; ``end=None`` means the whole file from ``start``.

    ``expected_size`` (the size seen when the job was planned) lets a range hash notice that the file
    grew or shrank between planning and reading, which a range-only read would otherwise miss.
    """

    path: Path
    start: int = 0
    end: int | None = None
    expected_size: int | None = None
    expected_identity: FileIdentity | None = None  # the file must still be exactly the one seen before


def file_identity(st: os.stat_result) -> FileIdentity:
    """What must not change while a file is read: any write moves the ctime, even if mtime is restored."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_identity = file_identity


def digest_fd_into(
    hasher: Hasher, fd: int, start: int, stop: int, block_size: int = DEFAULT_BLOCK_SIZE
) -> None:
    """Feed bytes ``[start, stop)`` of an open file to ``hasher`` with pread (the fd's offset is untouched).

    A file that ends early is a :class:`FileChangedError`: its size was measured before reading.
    """
    if stop - start > block_size and hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, start, stop - start, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass
    buf = bytearray(max(1, min(block_size, stop - start)))
    view = memoryview(buf)
    pos = start
    while pos < stop:
        want = min(len(buf), stop - pos)
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [view[:want]], pos)
            chunk = view[:got]
        else:  # no preadv (Windows): one copy per block
            chunk = memoryview(os.pread(fd, want, pos))
            got = len(chunk)
        if not got:
            raise FileChangedError(f"file changed while hashing: ended at byte {pos} of {stop}")
        hasher.update(chunk)
        pos += got


_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor on a regular file; ``OSError`` for anything else, and it never blocks.

    A plain ``open`` of a FIFO waits for a writer forever, and a terminal or device may block too: a file
    listed as regular but replaced by one before it is opened would hang the scan. The file is opened
    non-blocking, checked through the descriptor (the path may change again), then set back to blocking.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device, socket or directory)")
        if getattr(os, "O_NONBLOCK", 0) and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _digest_job(job: RangeJob, algorithm: str, block_size: int) -> bytes:
    path = job.path
    try:
        fd = open_regular(path)
    except OSError as exc:
        raise IntegrityError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise IntegrityError(f"{path} is not a regular file")
        size = before.st_size
        if job.expected_identity is not None and file_identity(before) != job.expected_identity:
            raise FileChangedError(f"{path} changed since it was verified (size/mtime/ctime/inode differ)")
        if job.expected_size is not None and size != job.expected_size:
            raise FileChangedError(f"{path} changed while hashing (size {job.expected_size} -> {size} bytes)")
        stop = size if job.end is None else job.end
        if job.start < 0 or stop < job.start:
            raise IntegrityError(f"invalid byte range [{job.start}, {stop}) for {path}")
        if stop > size:
            raise FileChangedError(
                f"{path} changed while hashing: range ends at {stop}, file has {size} bytes"
            )
        if hasattr(os, "posix_fadvise"):
            try:
                os.posix_fadvise(fd, job.start, stop - job.start, os.POSIX_FADV_SEQUENTIAL)
            except OSError:
                pass
        hasher = new_hasher(algorithm)
        buf = bytearray(max(1, min(block_size, stop - job.start)))
        view = memoryview(buf)
        with io.FileIO(fd, "rb", closefd=False) as raw:
            raw.seek(job.start)
            pos = job.start
            while pos < stop:
                got = raw.readinto(view[: min(len(buf), stop - pos)])
                if not got:
                    raise FileChangedError(f"{path} changed while hashing: ended at byte {pos} of {stop}")
                hasher.update(view[:got])
                pos += got
            if job.end is None and raw.readinto(view[:1]):
                raise FileChangedError(f"{path} changed while hashing: it grew past {size} bytes")
        after = os.fstat(fd)
        try:
            now = os.stat(path)
        except OSError:
            raise FileChangedError(f"{path} was removed while hashing") from None
        if _identity(after) != _identity(before) or _identity(now) != _identity(before):
            raise FileChangedError(f"{path} changed while hashing (size/mtime/ctime/inode differ)")
        return hasher.digest()
    finally:
        os.close(fd)


def run_parallel(func: Callable[[_T], _R], items: Sequence[_T], workers: int | None) -> list[_R]:
    """``[func(x) for x in items]`` on a thread pool; the first error cancels the rest and is raised."""
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1 or len(items) <= 1:
        return [func(item) for item in items]
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait  # only when hashing in parallel

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures: list[Future[_R]] = [pool.submit(func, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in done:
            if fut.exception() is not None:
                for other in pending:
                    other.cancel()
                raise fut.exception()  # type: ignore[misc]
        return [fut.result() for fut in futures]


def hash_range_bytes(
    path: str | os.PathLike[str],
    start: int,
    end: int,
    algorithm: str = "sha256",
    *,
    expected_size: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> bytes:
    return _digest_job(
        RangeJob(Path(path), start, end, expected_size), normalize_algorithm(algorithm), block_size
    )


def hash_range(
    path: str | os.PathLike[str],
    start: int,
    end: int,
    algorithm: str = "sha256",
    *,
    expected_size: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> str:
    """Hex digest of bytes ``[start, end)``; raises :class:`FileChangedError` if the file is shorter."""
    return hash_range_bytes(
        path, start, end, algorithm, expected_size=expected_size, block_size=block_size
    ).hex()


def hash_file(
    path: str | os.PathLike[str], algorithm: str = "sha256", *, block_size: int = DEFAULT_BLOCK_SIZE
) -> str:
    """Hex digest of a whole file, streamed."""
    return _digest_job(RangeJob(Path(path)), normalize_algorithm(algorithm), block_size).hex()


def hash_file_unchanged(
    path: str | os.PathLike[str],
    identity: FileIdentity,
    algorithm: str = "sha256",
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> str:
    """Hex digest of a whole file that must still have ``identity`` (device, inode, size, mtime, ctime).

    Binds a digest taken now to bytes read earlier under the same identity: nothing unprivileged can
    rewrite a file and put its ctime back, so an equal identity means the same bytes.
    """
    job = RangeJob(Path(path), 0, None, identity[2], identity)
    return _digest_job(job, normalize_algorithm(algorithm), block_size).hex()


def hash_jobs(
    jobs: Sequence[RangeJob],
    algorithm: str = "sha256",
    *,
    workers: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> list[bytes]:
    """Raw digests for many whole-file or range jobs, in job order, hashed in parallel."""
    algo = normalize_algorithm(algorithm)
    return run_parallel(lambda job: _digest_job(job, algo, block_size), list(jobs), workers)


def hash_files(
    paths: Iterable[str | os.PathLike[str]],
    algorithm: str = "sha256",
    workers: int | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> dict[Path, str]:
    """``{path: hex digest}`` for many files, one file per worker at a time."""
    plist = [Path(p) for p in paths]
    digests = hash_jobs([RangeJob(p) for p in plist], algorithm, workers=workers, block_size=block_size)
    return {p: d.hex() for p, d in zip(plist, digests, strict=True)}


def shard_bounds(size: int, shard_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` pairs covering ``size`` bytes; empty files have no shards (as in model-signing)."""
    if shard_size <= 0:
        raise IntegrityError(f"shard size must be positive, got {shard_size}")
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def hash_shards(
    path: str | os.PathLike[str],
    shard_size: int,
    algorithm: str = "sha256",
    workers: int | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> list[tuple[int, int, str]]:
    """Digest each ``shard_size`` slice of one (large) file in parallel: ``[(start, end, hex), ...]``."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise IntegrityError(f"cannot read {p}: {exc.strerror or exc}") from None
    bounds = shard_bounds(size, shard_size)
    jobs = [RangeJob(p, s, e, size) for s, e in bounds]
    digests = hash_jobs(jobs, algorithm, workers=workers, block_size=block_size)
    return [(s, e, d.hex()) for (s, e), d in zip(bounds, digests, strict=True)]
