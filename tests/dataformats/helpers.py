"""Run bytes and hand-made snapshots through the real engine for the data-format tests."""

from __future__ import annotations

from pathlib import Path

from scanner.engine import ScanOptions, inspect_artifact, scan_snapshot
from scanner.findings import FileResult
from scanner.io.reader import BytesReader
from scanner.rules import get_rule_db
from scanner.sources.base import Artifact, Snapshot
from tests.conftest import FIXTURES

GROUP = FIXTURES / "formats-c"
OWN_FORMATS = {"sentencepiece", "msgpack", "coreml", "coreml-weights"}


def artifact(data: bytes, name: str) -> Artifact:
    return Artifact(path=name, size=len(data), opener=lambda: BytesReader(data, name))


def inspect_bytes(data: bytes, name: str = "blob") -> FileResult:
    return inspect_artifact(artifact(data, name), get_rule_db(), ScanOptions(compute_sha256=False))


def snapshot(files: dict[str, bytes | str]) -> dict[str, FileResult]:
    snap = Snapshot(target="hf://org/model", kind="hf", resolved="0" * 40)
    snap.artifacts = [artifact(d.encode() if isinstance(d, str) else d, n) for n, d in sorted(files.items())]
    return {fr.path: fr for fr in scan_snapshot(snap, ScanOptions(compute_sha256=False))}


def rules_of(fr: FileResult) -> set[str]:
    return {f.rule_id for f in fr.findings}


def fixture(rel: str) -> Path:
    return GROUP / rel
