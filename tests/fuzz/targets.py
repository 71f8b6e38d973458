"""Fuzz targets: one per parser family, each judged through the real engine exactly as ``scan`` would.

The invariant every target checks (``judge``): whatever the bytes, inspection returns a report
(no exception escapes), within a time bound, and under a memory bound (the caller's RSS limit).
With ``strict``, an inspector that crashed and only failed closed (INSPECTOR-ERROR) also counts as a
crash: that is a parser bug that costs coverage, worth a regression input.

Seeds come from ``fixtures/`` (by extension), plus a few built here where fixtures are thin (tar).
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scanner.findings import FileResult
from scanner.limits import Limits
from tests.harness import FIXTURES, inspect_bytes, remote_snapshot, scan_snapshot

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
MAX_SEED_BYTES = 256 << 10
MAX_SEEDS = 40
SECONDS_PER_INPUT = 10.0

# Hostile inputs must stay cheap; these keep one fuzz input's worst case small without changing semantics.
FUZZ_LIMITS = Limits(file_seconds=SECONDS_PER_INPUT, fickling_seconds=2.0)


class InvariantBroken(AssertionError):
    """The scanner did not produce a bounded report for an input: a crash for the fuzzer."""


def _tar_seeds() -> list[bytes]:
    out = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for name, data in (("config.json", b'{"a": 1}'), ("archive/data.pkl", b"\x80\x02}q\x00.")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        out.append(buf.getvalue())
    return out


def _zip_seeds() -> list[bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/version", b"3\n")
        zf.writestr("config.json", b'{"a": 1}', compress_type=zipfile.ZIP_DEFLATED)
    return [buf.getvalue()]


@dataclass(frozen=True)
class Target:
    name: str
    filename: str  # what the bytes are called: the engine routes names and content together
    suffixes: tuple[str, ...]  # fixture files that seed this target
    extra_seeds: Callable[[], list[bytes]] | None = None
    repo: bool = False  # judged as one file of a Hugging Face repo, so repo-level checks (templates) run


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("pickle", "data.pkl", (".pkl", ".pickle", ".joblib", ".dict")),
        Target("zip", "model.pt", (".pt", ".pth", ".keras", ".npz", ".pt2", ".zip"), _zip_seeds),
        Target("tar", "model.tar", (".tar",), _tar_seeds),
        Target("safetensors", "model.safetensors", (".safetensors",)),
        Target("gguf", "model.gguf", (".gguf",)),
        Target("npy", "array.npy", (".npy",)),
        Target("onnx", "model.onnx", (".onnx", ".pb", ".ort")),
        Target("json", "tokenizer_config.json", (".json", ".ipynb"), repo=True),
        Target("template", "chat_template.jinja", (".jinja",), repo=True),
    )
}


def seeds(target: str, limit: int | None = None) -> list[bytes]:
    """Small fixture files of the target's formats (sorted, capped), then built seeds; ``limit``: the smallest."""
    t = TARGETS[target]
    found = sorted(
        p
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.suffix.lower() in t.suffixes and 0 < p.stat().st_size <= MAX_SEED_BYTES
    )
    out = [p.read_bytes() for p in found[:MAX_SEEDS]]
    if t.extra_seeds:
        out.extend(t.extra_seeds())
    return sorted(out, key=len)[:limit] if limit else out


def judge(target: str, data: bytes, *, strict: bool = False) -> FileResult:
    """Inspect ``data`` as the target's file; raise InvariantBroken if the scanner did not cope."""
    tgt = TARGETS[target]
    name = tgt.filename
    t0 = time.monotonic()
    try:
        if tgt.repo:
            results = scan_snapshot(remote_snapshot({name: data}), FUZZ_LIMITS)
            fr = results[name]
            fr.findings.extend(
                f for r in results.values() if r is not fr for f in r.findings
            )  # repo-level verdicts
        else:
            fr = inspect_bytes(data, name, FUZZ_LIMITS)
    except Exception as exc:  # the invariant: nothing escapes inspection
        raise InvariantBroken(f"{target}: {type(exc).__name__} escaped inspection: {exc}") from exc
    elapsed = time.monotonic() - t0
    if not isinstance(fr, FileResult):
        raise InvariantBroken(f"{target}: no report")
    if elapsed > SECONDS_PER_INPUT * 1.5:
        raise InvariantBroken(
            f"{target}: {elapsed:.1f} s for {len(data)} bytes (budget {SECONDS_PER_INPUT} s)"
        )
    if strict:
        crashed = [f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR"]
        if crashed:
            raise InvariantBroken(f"{target}: inspector crashed (failed closed): {crashed[0]}")
    return fr


def split_selector(data: bytes) -> tuple[str, bytes]:
    """The ``all`` target: the first byte picks the parser, the rest is its input."""
    names = sorted(TARGETS)
    if not data:
        return names[0], b""
    return names[data[0] % len(names)], data[1:]


def all_seeds(limit: int | None = None) -> list[bytes]:
    names = sorted(TARGETS)
    return [bytes([i]) + s for i, n in enumerate(names) for s in seeds(n, limit)]


def regression_inputs() -> list[tuple[str, Path]]:
    """Saved inputs (crashes found by fuzzing, and hand-picked hard cases): ``regressions/<target>/*``."""
    out = []
    if REGRESSIONS.is_dir():
        for d in sorted(REGRESSIONS.iterdir()):
            if d.is_dir() and (d.name in TARGETS or d.name == "all"):
                out.extend(
                    (d.name, p) for p in sorted(d.iterdir()) if p.is_file() and not p.name.startswith(".")
                )
    return out


def replay(target: str, data: bytes, *, strict: bool = False) -> FileResult:
    if target == "all":
        target, data = split_selector(data)
    return judge(target, data, strict=strict)


def rss_mb() -> float:
    """Peak RSS of this process, MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if os.uname().sysname == "Linux" else peak / (1 << 20)
