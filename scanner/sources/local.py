"""Local files and folders.

Symlinks are followed only while they stay inside the scanned tree (a Hugging
Face cache snapshot counts its repo folder, where ``blobs/`` lives, as the
tree); directory loops are cut. Nothing found is silently dropped: links out
of the tree, loops and special files become Problems, which become findings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..quarantine import is_leftover_name
from .base import Artifact, Problem, Snapshot, Source, SourceError


def _tree_root(path: Path) -> Path:
    """The folder links may point into: the HF cache repo folder for a cache snapshot."""
    parts = path.parts
    if (
        len(parts) >= 3
        and parts[-2] == "snapshots"
        and parts[-3].startswith(("models--", "datasets--", "spaces--"))
    ):
        return path.parent.parent
    return path


def _within(child: str, root: str) -> bool:
    return child == root or child.startswith(root.rstrip(os.sep) + os.sep)


class LocalSource(Source):
    def resolve(self, target: str) -> Snapshot:
        raw = target[len("file://") :] if target.startswith("file://") else target
        path = Path(raw).expanduser()
        if not os.path.lexists(path):
            raise SourceError(f"{target}: no such file or directory")
        try:
            st = path.stat()
        except OSError as exc:
            raise SourceError(f"{target}: cannot access: {exc.strerror}") from None
        abs_path = path.resolve()
        if stat.S_ISREG(st.st_mode):
            snap = Snapshot(target=target, kind="local", resolved=str(abs_path), root=str(abs_path.parent))
            snap.artifacts.append(self._artifact(abs_path, path.name, st.st_size))
            return snap
        if not stat.S_ISDIR(st.st_mode):
            raise SourceError(f"{target}: not a regular file or directory")
        if not os.access(path, os.R_OK | os.X_OK):
            raise SourceError(f"{target}: permission denied")
        snap = Snapshot(target=target, kind="local", resolved=str(abs_path), root=str(abs_path))
        self._walk(abs_path, _tree_root(abs_path).resolve(), snap)
        snap.artifacts.sort(key=lambda a: a.path)
        return snap

    @staticmethod
    def _artifact(real: Path, rel: str, size: int) -> Artifact:
        return Artifact(path=rel, size=size, local_path=str(real))  # opened as FileReader(local_path)

    def _walk(self, top: Path, tree: Path, snap: Snapshot) -> None:
        tree_s = str(tree)
        visited: set[tuple[int, int]] = set()
        stack: list[tuple[Path, str]] = [(top, "")]
        while stack:
            directory, rel_dir = stack.pop()
            try:
                dst = directory.stat()
            except OSError as exc:
                snap.problems.append(
                    Problem(rel_dir or ".", "FILE-UNREADABLE", f"cannot enter directory: {exc.strerror}")
                )
                continue
            key = (dst.st_dev, dst.st_ino)
            if key in visited:
                snap.problems.append(
                    Problem(
                        rel_dir, "SYMLINK-LOOP", "directory link leads back into the tree; not followed again"
                    )
                )
                continue
            visited.add(key)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                snap.problems.append(
                    Problem(rel_dir or ".", "FILE-UNREADABLE", f"cannot list directory: {exc.strerror}")
                )
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                full = Path(entry.path)
                if is_leftover_name(entry.name) and entry.is_dir(follow_symlinks=False):
                    snap.problems.append(
                        Problem(
                            rel + "/",
                            "PULL-LEFTOVER",
                            "unverified partial download left by an interrupted modelward pull; "
                            "not read (delete it)",
                        )
                    )
                    continue
                if entry.name == ".git" and entry.is_dir(follow_symlinks=False):
                    snap.problems.append(
                        Problem(
                            rel + "/",
                            "VCS-METADATA",
                            "git internals: not model content, not read",
                            analyzed=True,
                        )
                    )
                    continue
                try:
                    if entry.is_symlink():
                        target = os.path.realpath(full)
                        if not _within(target, tree_s):
                            snap.problems.append(
                                Problem(
                                    rel,
                                    "SYMLINK-ESCAPE",
                                    "symbolic link points outside the scanned tree; not followed",
                                    {"link": os.readlink(full)},
                                )
                            )
                            continue
                        if not os.path.exists(target):
                            snap.problems.append(Problem(rel, "FILE-UNREADABLE", "dangling symbolic link"))
                            continue
                    st = full.stat()
                except OSError as exc:
                    snap.problems.append(Problem(rel, "FILE-UNREADABLE", f"cannot access: {exc.strerror}"))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append((full, rel))
                elif stat.S_ISREG(st.st_mode):
                    snap.artifacts.append(self._artifact(full.resolve(), rel, st.st_size))
                else:
                    snap.problems.append(
                        Problem(rel, "SPECIAL-FILE", "special file (device, FIFO or socket); not read")
                    )
