"""Whole-or-nothing file writes: a new, exclusively created temporary file beside the target, flushed, renamed.

A fixed temporary name (``NAME.part``) lets whoever can write the folder plant a link there and have the
writer overwrite the link's target, and lets two runs write one temporary file. Here the temporary name is
unpredictable, created with ``O_EXCL | O_NOFOLLOW``, and removed if anything fails, so the target is either
the old file or the complete new one (a lockfile, a report, a rule-database pointer).
"""

from __future__ import annotations

import errno
import io
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def new_file_beside(target: Path) -> tuple[int, Path]:
    """An open descriptor on a new, empty file in ``target``'s folder (mode 0666 less the umask)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


@contextmanager
def _becoming(target: Path) -> Iterator[tuple[int, Path]]:
    """A new temporary file beside ``target`` that replaces it when the block ends; removed on any exception."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_file_beside(target)
    try:
        yield fd, tmp
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


@contextmanager
def replacing(target: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes ``target`` when the block ends without an exception; removed otherwise."""
    with _becoming(target) as (fd, _tmp), os.fdopen(fd, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextmanager
def replacing_text(target: Path) -> Iterator[TextIO]:
    """``replacing`` for text written piece by piece (UTF-8, newlines as written): a report streamed to disk
    becomes ``target`` only once it is complete."""
    with replacing(target) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        try:
            yield text
            text.flush()
        finally:
            text.detach()  # ``replacing`` flushes, syncs and closes the file itself


def write_atomic(target: Path, data: bytes | str) -> None:
    """``target`` holds ``data`` (UTF-8 for text), or is left as it was; raises OSError."""
    with replacing(target) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_atomic_with(target: Path, produce: Callable[[Path], None]) -> None:
    """For writers that need a path (``tarfile.open``): ``produce(tmp)`` fills a fresh temporary file."""
    with _becoming(target) as (fd, tmp):
        os.close(fd)
        produce(tmp)
