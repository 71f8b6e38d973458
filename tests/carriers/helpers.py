"""Shared helpers for the carrier tests: scan a path, list findings, build zips and tars in memory."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from tests.conftest import scan


def verdict(path: Path) -> tuple[str, dict[str, list]]:
    """(decision, rule id -> findings) for one scanned path."""
    report = scan(path)
    by_rule: dict[str, list] = {}
    for f in report.all_findings():
        by_rule.setdefault(f.rule_id, []).append(f)
    return report.verdict.decision.value, by_rule


def worst(path: Path) -> str | None:
    report = scan(path)
    sev = [f.severity for f in report.all_findings()]
    return max(sev, key=lambda s: s.rank).value if sev else None


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def make_tar(entries: list[tuple[str, bytes]], mode: str = "w", fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=fmt) as t:  # type: ignore[call-overload]
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()
