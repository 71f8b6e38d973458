"""OpenSSF model-signing manifests: which files a signature covers and their digests.

The walk, names, ordering and ignore rules reproduce model-signing 1.1.1 byte for byte, because the
root digest in a signature is a hash over the resource digests *in listed order*: any difference in
naming or ordering would make our signatures unverifiable upstream and theirs unverifiable here.

Deliberate differences (documented, none changes a manifest upstream would produce):
- ignored directories are pruned, so a symlink or FIFO *inside* an ignored path (e.g. ``.git``) is not
  an error here, while upstream walks into it and fails;
- shard names are split from the right, so paths containing ``:`` survive a round trip.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from scanner.integrity.errors import IntegrityError
from scanner.integrity.hashing import (
    DEFAULT_BLOCK_SIZE,
    FileIdentity,
    RangeJob,
    file_identity,
    hash_jobs,
    normalize_algorithm,
    shard_bounds,
)

GIT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
DEFAULT_SHARD_SIZE = 1_000_000_000
METHODS = ("files", "shards")


@dataclass(frozen=True)
class Serialization:
    """``predicate.serialization``: the parameters a verifier needs to rebuild the manifest."""

    method: str = "files"
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    shard_size: int | None = None
    ignore_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise IntegrityError(
                f"unsupported serialization method {self.method!r} (expected files or shards)"
            )
        object.__setattr__(self, "hash_type", normalize_algorithm(self.hash_type))
        if self.method == "shards":
            size = DEFAULT_SHARD_SIZE if self.shard_size is None else self.shard_size
            object.__setattr__(self, "shard_size", _coerce_int(size, "shard_size"))
            if self.shard_size is None or self.shard_size <= 0:
                raise IntegrityError(f"shard_size must be a positive integer, got {self.shard_size!r}")
        else:
            object.__setattr__(self, "shard_size", None)

    @property
    def resource_algorithm(self) -> str:
        """The per-resource ``algorithm`` string model-signing writes for this serialization."""
        if self.method == "shards":
            return f"{self.hash_type}-sharded-{self.shard_size}"
        return self.hash_type

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "hash_type": self.hash_type}
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        out["allow_symlinks"] = self.allow_symlinks
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Serialization:
        """Parse leniently where upstream itself is sloppy (``1000.0`` shard sizes, ``blake2``)."""
        if not isinstance(obj, Mapping):
            raise IntegrityError("signature predicate.serialization is not an object")
        ignore = obj.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise IntegrityError("signature serialization.ignore_paths is not a list of strings")
        method = obj.get("method")
        hash_type = obj.get("hash_type")
        if not isinstance(method, str) or not isinstance(hash_type, str):
            raise IntegrityError("signature serialization lacks a method or hash_type string")
        return cls(
            method=method,
            hash_type=hash_type,
            allow_symlinks=_coerce_bool(obj.get("allow_symlinks", False)),
            shard_size=obj.get("shard_size") if method == "shards" else None,
            ignore_paths=tuple(ignore),
        )


def _coerce_int(value: Any, what: str) -> int:
    # protobuf Struct turns every number into a double, so model-signing writes 1000 as 1000.0
    if isinstance(value, bool):
        raise IntegrityError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise IntegrityError(f"{what} must be an integer, got {value!r}")


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise IntegrityError(f"allow_symlinks must be a boolean, got {value!r}")


@dataclass(frozen=True)
class Resource:
    """One ``predicate.resources`` entry: a whole file (``files``) or a byte range (``shards``)."""

    name: str
    algorithm: str
    digest: str  # lowercase hex
    path: str = field(default="", compare=False)
    start: int | None = field(default=None, compare=False)
    end: int | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, name: str, algorithm: str, digest: str, method: str) -> Resource:
        """Validate one signed entry; names that could escape the model folder are refused."""
        try:
            raw = bytes.fromhex(digest)
        except (ValueError, TypeError):
            raise IntegrityError(f"signature resource {name!r} has a malformed digest") from None
        if not raw:
            raise IntegrityError(f"signature resource {name!r} has an empty digest")
        start: int | None = None
        end: int | None = None
        path = name
        if method == "shards":
            parts = name.rsplit(":", 2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                raise IntegrityError(f"signature shard name {name!r} is not '<path>:<start>:<end>'")
            path, start, end = parts[0], int(parts[1]), int(parts[2])
            if end < start:
                raise IntegrityError(f"signature shard {name!r} ends before it starts")
        check_relative_name(path)
        return cls(name, algorithm, raw.hex(), str(PurePosixPath(path)), start, end)

    @property
    def sort_key(self) -> tuple[tuple[str, ...], int, int]:
        return resource_sort_key(self.path, self.start, self.end)


def resource_sort_key(
    path: str, start: int | None = None, end: int | None = None
) -> tuple[tuple[str, ...], int, int]:
    """model-signing orders by PurePosixPath (component-wise), so ``a/z.bin`` < ``a.bin``."""
    return (PurePosixPath(path).parts, start or 0, end or 0)


def check_relative_name(path: str) -> None:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or "\x00" in path:
        raise IntegrityError(f"signature names a path outside the model folder: {path!r}")


@dataclass(frozen=True)
class Manifest:
    """A model's resources in listed order plus how they were produced."""

    model_name: str
    serialization: Serialization
    resources: tuple[Resource, ...]

    def root_digest(self) -> str:
        """SHA-256 over the raw resource digests in listed order (always SHA-256, even for blake2b)."""
        h = hashlib.sha256()
        for res in self.resources:
            h.update(bytes.fromhex(res.digest))
        return h.hexdigest()

    def by_name(self) -> dict[str, Resource]:
        return {r.name: r for r in self.resources}

    def files(self) -> list[str]:
        """Distinct file paths covered, in manifest order."""
        return list(dict.fromkeys(r.path for r in self.resources))


@dataclass(frozen=True)
class ModelFile:
    rel: str  # POSIX path relative to the model root, "." for a single-file model
    path: Path  # what to open
    size: int
    identity: FileIdentity | None = None  # (dev, ino, size, mtime, ctime) when the walk saw it


def model_name_of(model_path: Path) -> str:
    name = model_path.name
    if not name or name == "..":
        name = os.path.basename(model_path.resolve())
    return name


def normalize_ignores(entries: Iterable[str | os.PathLike[str]]) -> list[tuple[str, ...]]:
    """Ignore entries as path-component tuples relative to the model root.

    Entries that would reach outside the model are dropped, as upstream does; ``.`` (empty tuple)
    matches everything, which is upstream behaviour too and worth a warning by the caller.
    """
    out: list[tuple[str, ...]] = []
    for entry in entries:
        text = os.fspath(entry).replace(os.sep, "/")
        p = PurePosixPath(text)
        if p.is_absolute() or ".." in p.parts:
            continue
        parts = tuple(part for part in p.parts if part != ".")
        if parts not in out:
            out.append(parts)
    return out


def is_ignored(rel_parts: Sequence[str], ignores: Iterable[tuple[str, ...]]) -> bool:
    return any(tuple(rel_parts[: len(ig)]) == ig for ig in ignores)


def _rel_text(parts: Sequence[str]) -> str:
    return "/".join(parts) if parts else "."


def _classify(
    path: Path, rel: str, allow_symlinks: bool, missing_ok: bool = False
) -> tuple[str, int, FileIdentity | None]:
    """Return ("file"|"dir"|"skip"|"missing", size, identity) for one path, or raise for what upstream refuses."""
    try:
        lst = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        if missing_ok:
            return "missing", 0, None
        raise IntegrityError(f"{rel}: no such file or directory") from None
    except OSError as exc:
        raise IntegrityError(f"{rel}: cannot stat: {exc.strerror or exc}") from None
    st = lst
    if stat.S_ISLNK(lst.st_mode):
        if not allow_symlinks:
            raise IntegrityError(f"{rel}: is a symbolic link; refusing to follow it (allow_symlinks is off)")
        try:
            st = os.stat(path)
        except OSError:
            raise IntegrityError(f"{rel}: is a broken symbolic link") from None
        if stat.S_ISDIR(st.st_mode):
            return "skip", 0, None  # upstream's recursive glob never descends into linked directories
    if stat.S_ISREG(st.st_mode):
        return "file", st.st_size, file_identity(st)
    if stat.S_ISDIR(st.st_mode):
        return "dir", 0, None
    raise IntegrityError(f"{rel}: is a special file (fifo, socket or device) and cannot be hashed")


def walk_model(
    model_path: str | os.PathLike[str],
    *,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
) -> list[ModelFile]:
    """Every regular file of a model folder (or the single model file), sorted as upstream sorts."""
    root = Path(model_path)
    ignores = normalize_ignores([*ignore_paths, *(GIT_IGNORES if ignore_git_paths else ())])
    kind, size, ident = _classify(root, str(root), allow_symlinks)
    if kind == "file":
        return [] if is_ignored((), ignores) else [ModelFile(".", root, size, ident)]
    if kind != "dir":
        raise IntegrityError(f"{root}: model path is a symbolic link to a directory, which is not walked")
    found: list[ModelFile] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        directory, rel_parts = stack.pop()
        try:
            with os.scandir(directory) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            raise IntegrityError(
                f"{_rel_text(rel_parts)}: cannot list directory: {exc.strerror or exc}"
            ) from None
        for name in names:
            parts = (*rel_parts, name)
            if is_ignored(parts, ignores):
                continue
            child = directory / name
            kind, size, ident = _classify(child, _rel_text(parts), allow_symlinks)
            if kind == "dir":
                stack.append((child, parts))
            elif kind == "file":
                found.append(ModelFile(_rel_text(parts), child, size, ident))
    found.sort(key=lambda f: resource_sort_key(f.rel))
    return found


def select_files(
    model_path: str | os.PathLike[str],
    names: Iterable[str],
    *,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
) -> list[ModelFile]:
    """Only the named files (``ignore_unsigned_files``); absent ones are skipped and so show up as missing."""
    root = Path(model_path)
    ignores = normalize_ignores([*ignore_paths, *(GIT_IGNORES if ignore_git_paths else ())])
    found: dict[str, ModelFile] = {}
    for name in names:
        check_relative_name(name)
        parts = tuple(p for p in PurePosixPath(name).parts if p != ".")
        rel = _rel_text(parts)
        if rel in found or is_ignored(parts, ignores):
            continue
        # every component must exist and obey the symlink rule, or the file counts as missing
        current = root
        kind, size, ident = _classify(current, str(root), allow_symlinks)
        for i, part in enumerate(parts):
            if kind != "dir":
                kind = "missing"
                break
            current = current / part
            kind, size, ident = _classify(current, _rel_text(parts[: i + 1]), allow_symlinks, missing_ok=True)
        if kind == "file":
            found[rel] = ModelFile(rel, current, size, ident)
    return sorted(found.values(), key=lambda f: resource_sort_key(f.rel))


def recorded_ignore_paths(
    ignore_paths: Iterable[str | os.PathLike[str]], ignore_git_paths: bool
) -> tuple[str, ...]:
    """What goes into ``serialization.ignore_paths`` (sorted: upstream's order is random anyway)."""
    entries = normalize_ignores([*ignore_paths, *(GIT_IGNORES if ignore_git_paths else ())])
    return tuple(sorted(_rel_text(parts) for parts in entries))


def hash_model_files(
    files: Sequence[ModelFile],
    serialization: Serialization,
    *,
    workers: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> list[Resource]:
    """Digest files (or their shards) in parallel and return resources in upstream order."""
    jobs: list[RangeJob] = []
    meta: list[tuple[str, str, int | None, int | None]] = []
    for f in files:
        if serialization.method == "files":
            jobs.append(RangeJob(f.path, 0, None, f.size))
            meta.append((f.rel, f.rel, None, None))
        else:
            assert serialization.shard_size is not None
            for start, end in shard_bounds(f.size, serialization.shard_size):
                jobs.append(RangeJob(f.path, start, end, f.size))
                meta.append((f"{f.rel}:{start}:{end}", f.rel, start, end))
    digests = hash_jobs(jobs, serialization.hash_type, workers=workers, block_size=block_size)
    algorithm = serialization.resource_algorithm
    resources = [
        Resource(name, algorithm, digest.hex(), rel, start, end)
        for (name, rel, start, end), digest in zip(meta, digests, strict=True)
    ]
    resources.sort(key=lambda r: r.sort_key)
    return resources


def compute_manifest(
    model_path: str | os.PathLike[str],
    *,
    method: str = "files",
    algorithm: str = "sha256",
    shard_size: int = DEFAULT_SHARD_SIZE,
    allow_symlinks: bool = False,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> Manifest:
    """Hash a model folder or file exactly as ``model_signing`` 1.1.1 does when signing.

    ``ignore_paths`` are relative to the model root (a directory entry excludes its subtree).
    """
    root = Path(model_path)
    ignore_list = list(ignore_paths)
    serialization = Serialization(
        method=method,
        hash_type=algorithm,
        allow_symlinks=allow_symlinks,
        shard_size=shard_size if method == "shards" else None,
        ignore_paths=recorded_ignore_paths(ignore_list, ignore_git_paths),
    )
    files = walk_model(
        root, ignore_paths=ignore_list, ignore_git_paths=ignore_git_paths, allow_symlinks=allow_symlinks
    )
    resources = hash_model_files(files, serialization, workers=workers)
    return Manifest(model_name_of(root), serialization, tuple(resources))
