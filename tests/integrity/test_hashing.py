from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scanner.integrity import hashing
from scanner.integrity.errors import FileChangedError, IntegrityError
from scanner.integrity.hashing import (
    hash_file,
    hash_files,
    hash_range,
    hash_shards,
    normalize_algorithm,
    shard_bounds,
)


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * 4096 + 123)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    return path, data


def test_hash_file_matches_hashlib_across_block_boundaries(blob: tuple[Path, bytes]) -> None:
    path, data = blob
    for block in (1, 4096, 5000, 1 << 20):
        assert hash_file(path, block_size=block) == hashlib.sha256(data).hexdigest()
    assert hash_file(path, "blake2b", block_size=4096) == hashlib.blake2b(data).hexdigest()
    assert hash_file(path, "blake2") == hashlib.blake2b(data).hexdigest()


def test_empty_file_is_sha256_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    assert hash_file(tmp_path / "e") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_hash_range_and_shards(blob: tuple[Path, bytes]) -> None:
    path, data = blob
    assert hash_range(path, 10, 5000, block_size=1024) == hashlib.sha256(data[10:5000]).hexdigest()
    shards = hash_shards(path, 4096, workers=4)
    assert [(s, e) for s, e, _ in shards] == shard_bounds(len(data), 4096)
    assert shards[-1][1] == len(data)
    for start, end, digest in shards:
        assert digest == hashlib.sha256(data[start:end]).hexdigest()
    assert shard_bounds(0, 10) == []


def test_range_beyond_end_is_a_change(blob: tuple[Path, bytes]) -> None:
    path, data = blob
    with pytest.raises(FileChangedError, match="range ends"):
        hash_range(path, 0, len(data) + 1)
    with pytest.raises(FileChangedError, match="size"):
        hash_range(path, 0, 10, expected_size=len(data) - 1)


def test_hash_files_parallel_equals_serial(tmp_path: Path) -> None:
    paths = []
    for i in range(12):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(1000 * i))
        paths.append(p)
    serial = hash_files(paths, workers=1)
    parallel = hash_files(paths, workers=6, block_size=512)
    assert serial == parallel
    assert serial[paths[3]] == hashlib.sha256(paths[3].read_bytes()).hexdigest()


class _Growing:
    """A hasher that appends to the file on its first update: a writer racing the hash."""

    def __init__(self, path: Path, real: object, mode: str) -> None:
        self.path, self.real, self.mode, self.done = path, real, mode, False

    def update(self, data: memoryview) -> None:
        if not self.done:
            self.done = True
            if self.mode == "grow":
                with open(self.path, "ab") as fh:
                    fh.write(b"more")
            else:
                os.truncate(self.path, 10)
        self.real.update(data)  # type: ignore[attr-defined]

    def digest(self) -> bytes:
        return self.real.digest()  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["grow", "shrink"])
def test_file_changing_while_hashed_is_detected(
    blob: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    path, _ = blob
    real = hashing.new_hasher
    monkeypatch.setattr(hashing, "new_hasher", lambda algo: _Growing(path, real(algo), mode))
    with pytest.raises(FileChangedError, match="changed while hashing"):
        hash_file(path, block_size=1024)


def test_unknown_algorithm_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="unsupported hash algorithm 'md5'"):
        normalize_algorithm("md5")
    with pytest.raises(IntegrityError, match="cannot read"):
        hash_file(tmp_path / "nope")


def test_error_in_one_worker_is_raised(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"x")
    with pytest.raises(IntegrityError, match="missing"):
        hash_files([good, tmp_path / "missing", good], workers=3)
