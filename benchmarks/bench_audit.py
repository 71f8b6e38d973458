"""Audit benchmark: throughput of `modelward audit` on a zoo, first run vs unchanged re-run vs 1 % changed.

Builds, in a temporary folder:
  * ``small/`` -- N small pickles (default 100,000) in team folders (sklearn-like dicts, ~200 B each);
  * ``large/`` -- M large checkpoints (default 10 x 2 GiB = 20 GiB) as sparse torch-style zips, so the
    zoo costs no disk time to build (the scanner still hashes every byte on a first run);
then runs, per zoo: the first audit, an unchanged re-audit, and a re-audit after 1 % of the files were
rewritten; with ``--workers 1`` and ``2``, and with ``--dask`` when a scheduler address is given.
ModelAudit is run on the same zoo when it is on PATH (or in ``--peer-bin``).

Prints files/s, MB/s (of file bytes covered), wall seconds and peak RSS (the coordinator process and
its children, from ``/usr/bin/time -v`` when present). Targets: the unchanged re-audit of the large-file
zoo at least 100x faster than its first audit; memory flat in the number of files.

Usage:
  python benchmarks/bench_audit.py --small 20000 --large 2 --large-gib 1      # a quick run
  python benchmarks/bench_audit.py                                             # the full-size run
  python benchmarks/bench_audit.py --dask tcp://127.0.0.1:8786
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BIN = Path(sys.executable).with_name("modelward")


def build_small(root: Path, n: int) -> int:
    total = 0
    for i in range(n):
        d = root / f"team{i % 50:02d}" / f"project{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps({"coef": [random.random() for _ in range(8)], "id": i}, protocol=4)
        (d / f"model_{i}.pkl").write_bytes(data)
        total += len(data)
    return total


def build_large(root: Path, m: int, gib: float) -> int:
    root.mkdir(parents=True, exist_ok=True)
    size = int(gib * (1 << 30))
    for i in range(m):
        path = root / f"checkpoint_{i}.pt"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle.dumps({"step": i}, protocol=2))
            z.writestr("archive/version", "3\n")
        with open(path, "r+b") as fh:  # a sparse tail stands in for tensor storages: same bytes to hash
            fh.truncate(size)
    return m * size


def rewrite(root: Path, fraction: float) -> int:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    picked = files[:: max(1, int(1 / fraction))]
    for p in picked:
        if p.suffix == ".pkl":
            p.write_bytes(pickle.dumps({"changed": time.time()}, protocol=4))
        else:
            with open(p, "r+b") as fh:
                fh.seek(p.stat().st_size - 1)
                fh.write(b"\1")
    return len(picked)


def timed(cmd: list[str]) -> tuple[float, int | None, dict]:
    time_bin = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [time_bin, "-v", *cmd] if time_bin else cmd
    t0 = time.monotonic()
    res = subprocess.run(full, capture_output=True, text=True)
    wall = time.monotonic() - t0
    rss = None
    for line in res.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) // 1024
    doc: dict = {}
    try:
        doc = json.loads(res.stdout).get("audit", {})
    except json.JSONDecodeError:
        pass
    return wall, rss, doc


def audit(zoo: Path, db: Path, extra: list[str]) -> tuple[float, int | None, dict]:
    return timed([str(BIN), "audit", str(zoo), "--db", str(db), "-f", "json", *extra])


def report(label: str, files: int, size: int, wall: float, rss: int | None, doc: dict) -> None:
    print(
        f"{label:46} {wall:8.2f} s {files / wall:10.0f} files/s {size / wall / 1e6:10.1f} MB/s "
        f"rss {rss if rss is not None else '?':>5} MB  inspected {doc.get('inspected_files', '?')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=10)
    ap.add_argument("--large-gib", type=float, default=2.0)
    ap.add_argument("--dask", default=None)
    ap.add_argument("--peer-bin", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mw-bench-audit-"))
    try:
        zoos = {
            "small": (work / "small", build_small(work / "small", args.small), args.small),
            "large": (work / "large", build_large(work / "large", args.large, args.large_gib), args.large),
        }
        time.sleep(2.5)  # past the racy-timestamp window, as a nightly audit would be
        modes = [["--workers", "1"], ["--workers", "2"]] + ([["--dask", args.dask]] if args.dask else [])
        for name, (zoo, size, files) in zoos.items():
            for mode in modes:
                db = work / f"{name}-{'-'.join(mode).replace('/', '_').replace(':', '')}.sqlite"
                label = f"{name} {' '.join(mode)}"
                report(f"{label}: first audit", files, size, *audit(zoo, db, mode))
                report(f"{label}: unchanged re-audit", files, size, *audit(zoo, db, mode))
                changed = rewrite(zoo, 0.01)
                time.sleep(2.5)
                report(f"{label}: {changed} files changed", files, size, *audit(zoo, db, mode))
            peer = (
                shutil.which("modelaudit", path=args.peer_bin)
                if args.peer_bin
                else shutil.which("modelaudit")
            )
            if peer:
                wall, rss, _ = timed([peer, "scan", str(zoo), "--format", "json"])
                print(
                    f"{name + ': ModelAudit (no inventory, every run is a first run)':46} {wall:8.2f} s rss {rss} MB"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
