"""The one test harness: scan bytes, a file, a reader or a snapshot; rule ids; payloads; seeded mutations.

Every helper runs the real product code. The levels differ in how much of it runs, and tests pick
the level their assertion is about:

- ``scan(*paths)`` / ``scan_file(path)`` / ``scan_on_disk(tmp_path, blob)``: the whole pipeline from
  disk plus the default policy decision (what ``modelward scan`` prints);
- ``inspect_bytes(data, name)`` / ``inspect_file(path)``: one artifact through the engine (no disk,
  no decision), and ``scan_snapshot`` / ``scan_files`` for hand-made repository snapshots;
- ``detect_bytes`` / ``detect_reader``: bare format detection with a fresh scan state, for tests that
  need a custom reader, pickle allowances, or the bytes-read count.

Nothing here loads model content: payloads are ``pickle.dumps`` of objects whose ``__reduce__`` names a
harmless command (dumps never calls it), and the suite checks the canary file never appears.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import tarfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from scanner.engine import inspect_artifact
from scanner.engine import scan_snapshot as _engine_scan_snapshot
from scanner.findings import Decision, FileResult, Finding, ScanReport, Severity
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.io.reader import BytesReader, FileReader, Reader
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.default import decide
from scanner.rules import get_rule_db
from scanner.sources.base import Artifact, Snapshot

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CANARY = Path("/tmp/modelward-canary")
CANARY_CMD = f"touch {CANARY}"

# os.system("touch /tmp/modelward-canary") as a protocol-2 pickle; never loaded, only scanned
EVIL_PICKLE = (
    b"\x80\x02cposix\nsystem\nq\x00X\x1c\x00\x00\x00touch /tmp/modelward-canaryq\x01\x85q\x02Rq\x03."
)
# the same call without a leading PROTO (protocol 0 opcodes): invisible to naive magic checks
EVIL_PICKLE_P0 = b"cposix\nsystem\n(Vtouch /tmp/modelward-canary\ntR."
BENIGN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


class _Canary:
    def __reduce__(self):  # type: ignore[no-untyped-def]  # noqa: D105 - pickled, never loaded
        return (os.system, (CANARY_CMD,))


def evil_pickle(protocol: int = 4) -> bytes:
    """pickle.dumps of a reduce to os.system; dumps does not call it, and nothing here loads it."""
    return pickle.dumps(_Canary(), protocol=protocol)


def benign_pickle() -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0, 3.0], "name": "layer"}, protocol=4)


# -- whole pipeline from disk, with the default policy's decision --


def scan(*paths: str | Path, **opts: object) -> ScanReport:
    """What ``modelward scan PATH...`` judges, verdict included."""
    report = scan_targets([str(p) for p in paths], ScanOptions(**opts))  # type: ignore[arg-type]
    report.verdict = decide(report)
    return report


def scan_file(path: Path, limits: Limits | None = None) -> FileResult:
    """The one file's result; its decision is kept for ``verdict``."""
    report = scan_targets([str(path)], ScanOptions(limits=limits) if limits else ScanOptions())
    assert len(report.files) == 1, report.errors
    fr = report.files[0]
    fr.__dict__["verdict"] = decide(report).decision
    return fr


def scan_on_disk(
    tmp_path: Path, blob: bytes, name: str = "model.pt", limits: Limits | None = None
) -> FileResult:
    """Write ``blob`` as ``tmp_path/name`` and ``scan_file`` it."""
    p = tmp_path / name
    p.write_bytes(blob)
    return scan_file(p, limits)


def verdict(fr: FileResult) -> Decision:
    """The decision ``scan_file`` recorded for this file."""
    return fr.__dict__["verdict"]


def path_verdict(path: Path) -> tuple[str, dict[str, list[Finding]]]:
    """(decision, rule id -> findings) for one scanned path."""
    report = scan(path)
    by_rule: dict[str, list[Finding]] = {}
    for f in report.all_findings():
        by_rule.setdefault(f.rule_id, []).append(f)
    assert report.verdict is not None
    return report.verdict.decision.value, by_rule


def path_worst(path: Path) -> str | None:
    """The worst severity of anything found in one scanned path, or None."""
    sev = [f.severity for f in scan(path).all_findings()]
    return max(sev, key=lambda s: s.rank).value if sev else None


# -- one artifact, or a hand-made snapshot, through the engine without touching disk --


def artifact(data: bytes, name: str) -> Artifact:
    return Artifact(path=name, size=len(data), opener=lambda: BytesReader(data, name))


def inspect_bytes(data: bytes, name: str = "blob", limits: Limits = DEFAULT_LIMITS) -> FileResult:
    return inspect_artifact(
        artifact(data, name), get_rule_db(), ScanOptions(limits=limits, compute_sha256=False)
    )


def inspect_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> FileResult:
    art = Artifact(path=path.name, size=path.stat().st_size, opener=lambda: FileReader(path, name=path.name))
    return inspect_artifact(art, get_rule_db(), ScanOptions(limits=limits, compute_sha256=False))


def remote_snapshot(files: dict[str, bytes | str], kind: str = "hf") -> Snapshot:
    """A snapshot whose artifacts exist only as bytes, like a registry listing."""
    snap = Snapshot(target="hf://org/model", kind=kind, resolved="0" * 40, root=None)
    snap.artifacts = [artifact(d.encode() if isinstance(d, str) else d, n) for n, d in sorted(files.items())]
    return snap


def scan_snapshot(snap: Snapshot, limits: Limits = DEFAULT_LIMITS) -> dict[str, FileResult]:
    """Every file of the snapshot, repository checks included, by path."""
    opts = ScanOptions(limits=limits, compute_sha256=False)
    return {fr.path: fr for fr in _engine_scan_snapshot(snap, opts)}


def scan_files(files: dict[str, bytes | str]) -> dict[str, FileResult]:
    """``scan_snapshot`` of a remote-like repository made of these files."""
    return scan_snapshot(remote_snapshot(files))


def fuzz_one(data: bytes, name: str, budget_s: float = 10.0) -> FileResult:
    """Inspect mutated bytes: never an escaping exception, never unbounded time, never a crashed inspector."""
    t0 = time.monotonic()
    fr = inspect_bytes(data, name)
    assert time.monotonic() - t0 < budget_s, f"{name}: inspection took too long"
    assert all(f.rule_id != "INSPECTOR-ERROR" for f in fr.findings), [f.message for f in fr.findings]
    return fr


# -- bare detection with a fresh state --


def detect_reader(
    reader: Reader,
    name: str = "sample.bin",
    limits: Limits | None = None,
    *,
    profiles: list[str] | None = None,
    extra: list[str] | None = None,
) -> FileResult:
    """Detection and inspection of one reader, with optional pickle allowances; records bytes read."""
    limits = limits or DEFAULT_LIMITS
    result = FileResult(path=name, size=reader.size, format="unknown")
    state = ScanState(
        rules=get_rule_db(),
        limits=limits,
        result=result,
        budget_left=limits.max_total_uncompressed,
        deadline=time.monotonic() + limits.file_seconds,
        allowed_profiles=profiles,
        extra_allowed_globals=list(extra or []),
    )
    inspect_with_detection(reader, InspectContext(state, name, dispatch=inspect_with_detection))
    result.bytes_read = reader.bytes_read
    return result


def detect_bytes(
    data: bytes, name: str = "sample.bin", limits: Limits | None = None, **allow: list[str] | None
) -> FileResult:
    return detect_reader(BytesReader(data, name), name, limits, **allow)


# -- what was found --


def rule_ids(found: FileResult | ScanReport | dict[str, FileResult]) -> set[str]:
    """Rule ids of a file result, a whole report, or a snapshot's results."""
    if isinstance(found, FileResult):
        return {f.rule_id for f in found.findings}
    if isinstance(found, ScanReport):
        return {f.rule_id for f in found.all_findings()}
    return {f.rule_id for fr in found.values() for f in fr.findings}


def findings(fr: FileResult, rule: str) -> list[Finding]:
    return [f for f in fr.findings if f.rule_id == rule]


def worst(fr: FileResult) -> Severity | None:
    return fr.max_severity


def blocked_for_payload(fr: FileResult) -> bool:
    """The canary payload was found (a high/critical pickle finding mentioning posix.system)."""
    return any(
        f.rule_id.startswith("PICKLE") and f.severity.rank >= 3 and "system" in (f.message + str(f.evidence))
        for f in fr.findings
    )


# -- archives built in memory --


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


# -- seeded mutations: the same seed always gives the same mutants --


def mutations(
    data: bytes,
    seed: int | str,
    *,
    cuts: Iterable[int] = (),
    random_cuts: int = 0,
    flips: int = 0,
    flips_per: Sequence[int] = (1, 1, 2, 8),
    head: int | None = None,
    overwrites: int = 0,
    at: Sequence[int] = (),
    values: Sequence[bytes] = (),
) -> list[tuple[str, bytes]]:
    """Labelled mutants of ``data``: truncations, bit flips, then overwritten fields.

    ``cuts`` are fixed truncation lengths, ``random_cuts`` adds that many drawn ones. Each of ``flips`` copies
    gets ``rng.choice(flips_per)`` flipped bits; with ``head``, 70 % of them land in the first ``head`` bytes,
    where headers and lengths are. Each of ``overwrites`` copies gets one of ``values`` (8 random bytes when
    empty) written at one of ``at`` (anywhere when empty), as a length, count or offset would be; the copy
    keeps the original length.
    """
    if not data:
        return []
    rng = random.Random(seed)
    drawn = {rng.randrange(1, len(data)) for _ in range(random_cuts)} if len(data) > 1 else set()
    out = [(f"cut{c}", data[:c]) for c in sorted(set(cuts) | drawn) if 0 < c < len(data)]
    for i in range(flips):
        b = bytearray(data)
        for _ in range(rng.choice(flips_per)):
            near = head is not None and rng.random() < 0.7
            pos = rng.randrange(min(len(b), head)) if near and head else rng.randrange(len(b))
            b[pos] ^= 1 << rng.randrange(8)
        out.append((f"flip{i}", bytes(b)))
    for i in range(overwrites):
        b = bytearray(data)
        pos = rng.choice(at) if at else rng.randrange(len(b))
        val = rng.choice(values) if values else rng.randbytes(8)
        b[pos : pos + len(val)] = val
        out.append((f"field{i}", bytes(b[: len(data)])))
    return out


def fixture(rel: str) -> Path:
    """A fixture file by its path under ``fixtures/`` (``<family>/...``)."""
    return FIXTURES / rel


def manifest_entries(*families: str) -> list[dict]:
    """The manifest entries of these fixture families, paths made relative to ``fixtures/``, sorted by path."""
    import json

    entries = [
        {**e, "path": f"{family}/{e['path']}"}
        for family in families
        for e in json.loads((FIXTURES / family / "manifest.json").read_text())["files"]
    ]
    return sorted(entries, key=lambda e: e["path"])


def header_mutations(data: bytes, seed: int | str, n: int = 40) -> list[tuple[str, bytes]]:
    """``mutations`` aimed at a binary header: cuts at field boundaries, flips and extreme lengths up front."""
    edges = {1, 4, 8, 9, 16, 24, 31, len(data) // 2, len(data) - 1}
    extremes = (b"\xff" * 8, b"\x00" * 8, b"\xff\xff\xff\x7f\x00\x00\x00\x00")
    return mutations(
        data,
        seed,
        cuts=edges,
        random_cuts=6,
        flips=n,
        head=512,
        overwrites=6,
        at=range(0, max(1, min(len(data) - 8, 256))),
        values=extremes,
    )
