"""Which files of a target are scanned or pulled: ``--include``/``--exclude`` globs and ``.modelwardignore``.

Globs match the path inside the target (``*.safetensors``, ``onnx/*``) the way ``hf download`` does; a
pattern without a slash also matches the file name in any folder. The ignore file is read from the working
directory (the user's project), never from the scanned target: a repository must not be able to hide its
own files. What was left out is reported, so a selection is never a silent gap.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from .sources.base import Problem, Snapshot

IGNORE_FILE = ".modelwardignore"
SHOWN = 20


@dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    origin: str = "--include/--exclude"

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def wants(self, path: str) -> bool:
        if self.include and not any(_match(path, g) for g in self.include):
            return False
        return not any(_match(path, g) for g in self.exclude)


def _match(path: str, glob: str) -> bool:
    glob = glob.strip().lstrip("/")
    if glob.endswith("/"):
        return path.startswith(glob) or fnmatch.fnmatchcase(path, glob + "*")
    if fnmatch.fnmatchcase(path, glob):
        return True
    return "/" not in glob and fnmatch.fnmatchcase(PurePosixPath(path).name, glob)


def build(
    include: list[str] | None,
    exclude: list[str] | None,
    ignore_file: Path | None = None,
    cwd: Path | None = None,
) -> Selection:
    """The user's selection: flags, plus the ignore file (``--ignore-file`` or ./.modelwardignore)."""
    extra: list[str] = []
    origin = "--include/--exclude"
    path = ignore_file or (cwd or Path.cwd()) / IGNORE_FILE
    if path.is_file():
        extra = [
            ln.strip()
            for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
        origin = f"{origin} and {path.name}" if (include or exclude) else str(path.name)
    return Selection(tuple(include or ()), tuple([*(exclude or ()), *extra]), origin)


def apply(snap: Snapshot, selection: Selection | None) -> Snapshot:
    """The snapshot without the files the selection leaves out, and one note that lists them."""
    if not selection:
        return snap
    kept = [a for a in snap.artifacts if selection.wants(a.path)]
    dropped = [a.path for a in snap.artifacts if not selection.wants(a.path)]
    if not dropped:
        return snap
    shown = ", ".join(dropped[:SHOWN]) + (f" and {len(dropped) - SHOWN} more" if len(dropped) > SHOWN else "")
    note = Problem(
        path=".",
        rule_id="FILES-EXCLUDED",
        analyzed=True,
        message=f"{len(dropped)} file(s) not scanned, left out by {selection.origin}: {shown}",
        evidence={"count": str(len(dropped))},
    )
    return replace(snap, artifacts=kept, problems=[*snap.problems, note])
