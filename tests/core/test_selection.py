"""--include/--exclude/.modelwardignore: what is left out is reported, and a target cannot hide its own files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.selection import Selection

EVIL = b"cos\nsystem\n(S'x'\ntR."


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("*.safetensors", "model.safetensors", True),
        ("*.safetensors", "shards/a.safetensors", True),
        ("onnx/*", "onnx/model.onnx", True),
        ("onnx/*", "model.onnx", False),
        ("onnx/", "onnx/x/y.bin", True),
        ("*.bin", "model.binx", False),
    ],
)
def test_globs_match_like_hf_download(glob: str, path: str, hit: bool) -> None:
    assert Selection(include=(glob,)).wants(path) is hit
    assert Selection(exclude=(glob,)).wants(path) is not hit


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (root / "ok.pkl").write_bytes(pickle.dumps([1]))
    (root / "sub" / "evil.pkl").write_bytes(EVIL)
    return root


def test_excluded_files_are_reported_not_silent(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["scan", str(_tree(tmp_path)), "--exclude", "sub/*", "-f", "json"])
    assert res.exit_code == 0
    notes = [
        f
        for fr in json.loads(res.stdout)["files"]
        for f in fr["findings"]
        if f["rule_id"] == "FILES-EXCLUDED"
    ]
    assert len(notes) == 1 and "sub/evil.pkl" in notes[0]["message"]


def test_an_ignore_file_inside_the_target_is_not_obeyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    (root / ".modelwardignore").write_text("sub/*\n")  # planted by the repository's author
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["scan", str(root)]).exit_code == 1
    (tmp_path / ".modelwardignore").write_text("# the user's own project\nsub/*\n")
    assert CliRunner().invoke(app, ["scan", str(root)]).exit_code == 0
