from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from scanner.integrity.errors import IntegrityError
from scanner.integrity.manifest import Manifest, Resource, Serialization, compute_manifest, walk_model

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def names(m: Manifest) -> list[str]:
    return [r.name for r in m.resources]


def test_files_order_by_path_components_not_bytes(model_dir: Path) -> None:
    m = compute_manifest(model_dir)
    # byte-wise sorting would put "a.bin" before "a/z.bin"; model-signing sorts by components
    assert names(m) == ["a/z.bin", "a.bin", "config.json", "empty.txt", "sub/deeper/weights.safetensors"]
    assert m.by_name()["a.bin"].digest == hashlib.sha256(b"A" * 1000).hexdigest()
    assert m.by_name()["empty.txt"].digest == EMPTY_SHA256
    assert {r.algorithm for r in m.resources} == {"sha256"}
    assert m.model_name == "model"
    assert m.serialization.ignore_paths == (".git", ".gitattributes", ".github", ".gitignore")


def test_root_digest_is_sha256_of_raw_digests_in_order(model_dir: Path) -> None:
    m = compute_manifest(model_dir, algorithm="blake2b")
    expected = hashlib.sha256(b"".join(bytes.fromhex(r.digest) for r in m.resources)).hexdigest()
    assert m.root_digest() == expected
    reordered = Manifest(m.model_name, m.serialization, tuple(reversed(m.resources)))
    assert reordered.root_digest() != expected
    assert m.by_name()["a.bin"].digest == hashlib.blake2b(b"A" * 1000).hexdigest()
    assert m.by_name()["a.bin"].algorithm == "blake2b"


def test_single_file_model_is_named_dot(model_dir: Path) -> None:
    m = compute_manifest(model_dir / "a.bin")
    assert names(m) == ["."]
    assert m.model_name == "a.bin"
    shards = compute_manifest(model_dir / "a.bin", method="shards", shard_size=600)
    assert names(shards) == [".:0:600", ".:600:1000"]


def test_ignore_paths_are_relative_prefixes(model_dir: Path) -> None:
    (model_dir / "sub" / ".gitignore").write_text("nested, not ignored by default")
    m = compute_manifest(model_dir, ignore_paths=["sub/deeper", "config.json"])
    assert names(m) == ["a/z.bin", "a.bin", "empty.txt", "sub/.gitignore"]
    assert "sub/deeper" in m.serialization.ignore_paths
    assert "config.json" in m.serialization.ignore_paths
    everything = compute_manifest(model_dir, ignore_git_paths=False)
    assert ".git/HEAD" in names(everything) and ".gitattributes" in names(everything)
    # entries escaping the model are dropped rather than matched against something outside
    assert names(compute_manifest(model_dir, ignore_paths=["../model/a.bin"])) == names(
        compute_manifest(model_dir)
    )


def test_shards_names_algorithm_and_empty_files(model_dir: Path) -> None:
    m = compute_manifest(model_dir, method="shards", shard_size=400)
    assert names(m)[:4] == ["a/z.bin:0:3", "a.bin:0:400", "a.bin:400:800", "a.bin:800:1000"]
    assert not any(r.path == "empty.txt" for r in m.resources)  # empty files produce no shard
    assert {r.algorithm for r in m.resources} == {"sha256-sharded-400"}
    assert m.by_name()["a.bin:800:1000"].digest == hashlib.sha256(b"A" * 200).hexdigest()
    assert m.serialization.to_json()["shard_size"] == 400
    # numeric order of offsets, not string order ("10240" < "2000" as text)
    big = compute_manifest(model_dir / "sub", method="shards", shard_size=2000)
    starts = [r.start for r in big.resources]
    assert starts == sorted(starts) and len(starts) == 6


def test_symlink_is_an_error_unless_allowed(model_dir: Path) -> None:
    os.symlink(model_dir / "a.bin", model_dir / "link.bin")
    with pytest.raises(IntegrityError, match=r"link\.bin: is a symbolic link"):
        compute_manifest(model_dir)
    m = compute_manifest(model_dir, allow_symlinks=True)
    assert m.by_name()["link.bin"].digest == m.by_name()["a.bin"].digest
    assert m.serialization.allow_symlinks is True


def test_symlinked_directory_is_not_walked_and_symlink_in_ignored_dir_is_fine(model_dir: Path) -> None:
    os.symlink(model_dir / "sub", model_dir / "linkdir")
    assert "linkdir/deeper/weights.safetensors" not in names(compute_manifest(model_dir, allow_symlinks=True))
    os.unlink(model_dir / "linkdir")
    os.symlink("/etc/passwd", model_dir / ".git" / "evil")
    assert "a.bin" in names(compute_manifest(model_dir))


def test_special_file_is_an_error(model_dir: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(IntegrityError, match="pipe: is a special file"):
        walk_model(model_dir)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="no such file"):
        compute_manifest(tmp_path / "absent")


def test_serialization_coerces_upstream_quirks() -> None:
    s = Serialization.from_json(
        {"method": "shards", "hash_type": "blake2", "shard_size": 1000.0, "allow_symlinks": False}
    )
    assert s.shard_size == 1000 and s.hash_type == "blake2b"
    assert s.resource_algorithm == "blake2b-sharded-1000"
    with pytest.raises(IntegrityError, match="shard_size"):
        Serialization.from_json(
            {"method": "shards", "hash_type": "sha256", "shard_size": 10.5, "allow_symlinks": False}
        )
    with pytest.raises(IntegrityError, match="method"):
        Serialization.from_json({"method": "tensors", "hash_type": "sha256", "allow_symlinks": False})


def test_resource_names_cannot_escape_the_model() -> None:
    digest = "00" * 32
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../x"):
        with pytest.raises(IntegrityError, match="outside the model"):
            Resource.parse(bad, "sha256", digest, "files")
    shard = Resource.parse("odd:name.bin:0:10", "sha256-sharded-10", digest, "shards")
    assert (shard.path, shard.start, shard.end) == ("odd:name.bin", 0, 10)


def test_matches_upstream_model_signing_hasher(model_dir: Path) -> None:
    """Same names, order and digests as model_signing's own hashing, for files and shards."""
    hashing = pytest.importorskip("model_signing.hashing")
    for ours, theirs in [
        (compute_manifest(model_dir), hashing.Config()),
        (
            compute_manifest(model_dir, method="shards", shard_size=300, algorithm="blake2b"),
            hashing.Config().use_shard_serialization(shard_size=300, hashing_algorithm="blake2"),
        ),
    ]:
        upstream = [
            (d.identifier, d.digest.algorithm, d.digest.digest_hex)
            for d in theirs.hash(model_dir).resource_descriptors()
        ]
        assert [(r.name, r.algorithm, r.digest) for r in ours.resources] == upstream
