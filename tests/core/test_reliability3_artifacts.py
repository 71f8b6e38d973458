"""A listed file costs less: artifacts without registry facts share one empty, read-only ``info`` mapping.

Every file of a zoo is an ``Artifact`` held for the whole run; an empty dict each was 64 of its ~340 bytes.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from scanner.sources.base import NO_INFO, Artifact
from scanner.sources.local import LocalSource


def test_artifacts_share_one_read_only_empty_info() -> None:
    a, b = Artifact(path="a", size=1, local_path="/x/a"), Artifact(path="b", size=1, local_path="/x/b")
    assert a.info is b.info is NO_INFO and dict(a.info) == {}
    with pytest.raises(TypeError):
        a.info["etag"] = "x"  # type: ignore[index]
    a.info = {"etag": "x"}  # facts are added by giving the artifact its own mapping
    assert b.info == {} and a.info == {"etag": "x"}


def test_a_listed_file_costs_under_300_bytes() -> None:
    tracemalloc.start()
    try:
        arts = [
            Artifact(
                path=f"t{i % 50:02d}/p{i % 500:03d}/m_{i:06d}.pkl", size=200, local_path=f"/z/m_{i:06d}.pkl"
            )
            for i in range(20_000)
        ]
        per_file = tracemalloc.get_traced_memory()[0] / len(arts)
    finally:
        tracemalloc.stop()
    assert per_file < 300, per_file  # before: ~340 (an empty dict each)


def test_local_listing_has_no_per_file_info(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"f{i}.json").write_text("{}")
    snap = LocalSource().resolve(str(tmp_path))
    assert len(snap.artifacts) == 3 and all(a.info is NO_INFO for a in snap.artifacts)
