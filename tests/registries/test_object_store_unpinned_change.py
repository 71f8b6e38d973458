"""An object store whose reads cannot be pinned (gcsfs, adlfs without versioning) still binds the verdict.

s3fs reads are pinned with If-Match (test_redteam2_object_store_consistency.py). For back ends that give no way
to pin a ranged read, the object's listed identity (generation, ETag, checksums, size, modification time) is
compared with a fresh ``info`` after inspection. fsspec's in-memory filesystem is a real back end with the same
``info``/``cat_file`` contract; the overwrite is made by the test between two ranged reads.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from scanner.engine import scan_snapshot
from scanner.settings import ScanOptions
from scanner.sources.base import Artifact, Snapshot
from scanner.sources.object_store import ObjectReader, listed_identity

fsspec = pytest.importorskip("fsspec")
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

BENIGN = pickle.dumps({"w": [0.1] * 2000}, protocol=4)
_PAYLOAD = b"\x80\x04cposix\nsystem\n(S'id'\ntR."
EVIL = _PAYLOAD + b"\x00" * (len(BENIGN) - len(_PAYLOAD))


class _RewrittenAfterFirstRead(MemoryFileSystem):
    """The bucket as the attacker sees it: the object is replaced right after the scanner's first range."""

    protocol = ("gcs-like",)
    reads = 0

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kw: Any) -> bytes:
        data = super().cat_file(path, start=start, end=end, **kw)
        type(self).reads += 1
        if type(self).reads == 1:
            self.pipe_file(
                path, EVIL
            )  # same size; a new creation time, as a real store gives a new generation
        return bytes(data)


def _snapshot(fs: MemoryFileSystem, key: str) -> Snapshot:
    meta = fs.info(key)
    art = Artifact(
        path="model.pkl",
        size=int(meta["size"]),
        opener=lambda: ObjectReader(
            fs, key, int(meta["size"]), "model.pkl", None, None, listed_identity(meta)
        ),
    )
    snap = Snapshot(
        target="gs://bucket/model.pkl", kind="objectstore", resolved="gs://bucket/model.pkl", root=""
    )
    snap.artifacts.append(art)
    return snap


def _rule_ids(results: list[Any]) -> set[str]:
    return {f.rule_id for r in results for f in r.findings}


def test_object_rewritten_between_reads_blocks() -> None:
    fs = _RewrittenAfterFirstRead(skip_instance_cache=True)
    fs.store.clear()
    _RewrittenAfterFirstRead.reads = 0
    key = "/bucket/model.pkl"
    fs.pipe_file(key, BENIGN)
    results = scan_snapshot(_snapshot(fs, key), ScanOptions(compute_sha256=False))
    assert "FILE-CHANGED-DURING-SCAN" in _rule_ids(results)
    (fr,) = [r for r in results if r.path == "model.pkl"]
    assert fr.coverage.value != "full"


def test_unchanged_object_gets_no_change_finding() -> None:
    fs = MemoryFileSystem(skip_instance_cache=True)
    fs.store.clear()
    fs.pipe_file("/bucket/ok.pkl", BENIGN)
    results = scan_snapshot(_snapshot(fs, "/bucket/ok.pkl"), ScanOptions(compute_sha256=False))
    assert "FILE-CHANGED-DURING-SCAN" not in _rule_ids(results)


@pytest.mark.parametrize(
    ("listed", "now", "moved"),
    [
        ({"generation": "1", "size": "10"}, {"generation": "2", "size": "10"}, True),  # gcsfs rewrite
        ({"etag": '"0x8D1"', "size": "10"}, {"etag": '"0x8D2"', "size": "10"}, True),  # adlfs rewrite
        ({"etag": '"0x8D1"', "size": "10"}, {"etag": '"0x8D1"', "size": "10"}, False),
    ],
)
def test_identity_fields_of_each_back_end(listed: dict[str, str], now: dict[str, str], moved: bool) -> None:
    class _Fs:
        protocol = ("gcs",)

        def info(self, key: str) -> dict[str, str]:
            return now

    reader = ObjectReader(_Fs(), "b/k", 10, "k", None, None, listed)
    assert (reader.changed() is not None) is moved


def test_deleted_or_unconfirmable_object_fails_closed() -> None:
    class _Gone:
        protocol = ("gcs",)

        def info(self, key: str) -> dict[str, str]:
            raise FileNotFoundError(key)

    class _Down:
        protocol = ("gcs",)

        def info(self, key: str) -> dict[str, str]:
            raise ConnectionError("reset by peer")

    assert "deleted" in (ObjectReader(_Gone(), "b/k", 1, "k", None, None, {"size": "1"}).changed() or "")
    assert "could not confirm" in (
        ObjectReader(_Down(), "b/k", 1, "k", None, None, {"size": "1"}).changed() or ""
    )
