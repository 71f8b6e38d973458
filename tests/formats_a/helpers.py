"""Run one artifact or a hand-made snapshot through the real engine without touching disk."""

from __future__ import annotations

import time
from pathlib import Path

from scanner.engine import ScanOptions, inspect_artifact, scan_snapshot
from scanner.findings import FileResult, Severity
from scanner.io.reader import BytesReader, FileReader
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.rules import get_rule_db
from scanner.sources.base import Artifact, Snapshot
from tests.conftest import FIXTURES

GROUP = FIXTURES / "formats-a"


def artifact(data: bytes, name: str) -> Artifact:
    return Artifact(path=name, size=len(data), opener=lambda: BytesReader(data, name))


def inspect_bytes(data: bytes, name: str = "blob", limits: Limits = DEFAULT_LIMITS) -> FileResult:
    return inspect_artifact(artifact(data, name), get_rule_db(), ScanOptions(limits=limits, compute_sha256=False))


def inspect_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> FileResult:
    art = Artifact(path=path.name, size=path.stat().st_size, opener=lambda: FileReader(path, name=path.name))
    return inspect_artifact(art, get_rule_db(), ScanOptions(limits=limits, compute_sha256=False))


def remote_snapshot(files: dict[str, bytes], kind: str = "hf") -> Snapshot:
    """A snapshot whose artifacts exist only as bytes, like a registry listing."""
    snap = Snapshot(target="hf://org/model", kind=kind, resolved="0" * 40, root=None)
    snap.artifacts = [artifact(data, name) for name, data in sorted(files.items())]
    return snap


def scan_snap(snap: Snapshot) -> dict[str, FileResult]:
    return {fr.path: fr for fr in scan_snapshot(snap, ScanOptions(compute_sha256=False))}


def rules_of(fr: FileResult) -> set[str]:
    return {f.rule_id for f in fr.findings}


def worst(fr: FileResult) -> Severity | None:
    return fr.max_severity


def fuzz_one(data: bytes, name: str, budget_s: float = 10.0) -> FileResult:
    """Inspect mutated bytes: never an escaping exception, never unbounded time."""
    t0 = time.monotonic()
    fr = inspect_bytes(data, name)
    assert time.monotonic() - t0 < budget_s, f"{name}: inspection took too long"
    assert all(f.rule_id != "INSPECTOR-ERROR" for f in fr.findings), [f.message for f in fr.findings]
    return fr
