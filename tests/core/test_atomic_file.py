"""Whole-or-nothing writes for lockfiles, rule-database pointers and known-bad stores (scanner/io/atomic_file.py).

The writers used a fixed ``NAME.part``: a link planted there made them overwrite the link's target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.gate.lockfile import Lock
from scanner.io.atomic_file import replacing, write_atomic


def test_a_link_planted_at_the_old_part_name_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = tmp_path / "modelward.lock"
    (tmp_path / "modelward.lock.part").symlink_to(victim)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "modelward.lock",
        "modelward.lock.part",
        "victim.txt",
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "active.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as f:
        f.write(b"half")
        raise RuntimeError("killed half-way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["active.json"]


def test_lockfile_write_uses_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "modelward.lock.part").symlink_to(victim)
    Lock(tmp_path / "modelward.lock", {}).write()
    assert victim.read_text() == "keep"
    assert (tmp_path / "modelward.lock").read_text().startswith("#")
