"""Audit memory benchmark: peak RSS and wall time of `modelward audit` per report format as the zoo grows.

Builds, under a temporary folder, one zoo per size N (default 5,000, 20,000 and 50,000 files): N small benign
pickles (~200 B each, sklearn-like dicts) in team/project folders, three of them replaced by malicious pickles
(``os.system`` reduce), so every report carries findings and a gating policy blocks. Then, for each N and each
format, runs a first audit into a fresh inventory (every file new: the largest report and audit section)::

    modelward audit ZOO --db FRESH.sqlite --policy default -f FORMAT -o REPORT

and, with ``--scan``, ``modelward scan ZOO -f FORMAT -o REPORT`` in each format for comparison (past 2,000
files a scan judges each file into an on-disk store, as audit does). Peak RSS is GNU time's ``%M``
(``/usr/bin/time -v``) for the modelward process; wall time is the whole process, start-up included.
Expected exit: 1 (the malicious files block under the default policy).

Usage:
  python benchmarks/bench_audit_memory.py                          # 5k, 20k, 50k files; every format
  python benchmarks/bench_audit_memory.py --sizes 2000 --formats json,html
  python benchmarks/bench_audit_memory.py --sizes 100000 --formats json --scan
  python benchmarks/bench_audit_memory.py --100k --scan                  # 5k, 20k, 50k and 100k files
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("modelward")
TIME = "/usr/bin/time"
FORMATS = ("json", "html", "markdown", "console", "sarif", "cyclonedx")
EVIL = b"cos\nsystem\n(S'echo modelward-bench'\ntR."


def build_zoo(root: Path, n: int, malicious: int = 3) -> None:
    rng = random.Random(n)
    for i in range(n):
        d = root / f"team{i % 50:02d}" / f"project{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps({"coef": [rng.random() for _ in range(8)], "id": i}, protocol=4)
        (d / f"model_{i}.pkl").write_bytes(data)
    for k in range(malicious):
        (root / f"team{k:02d}" / "project0" / f"model_{k * 50}.pkl").write_bytes(EVIL)


def timed(cmd: list[str]) -> tuple[float, int | None, int]:
    """Wall seconds, peak RSS in MB (None without GNU time) and exit code of ``cmd``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full = [TIME, "-v", *cmd] if Path(TIME).exists() else cmd
    t0 = time.monotonic()
    res = subprocess.run(full, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    rss = None
    for line in res.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) // 1024
    if res.returncode not in (0, 1):
        print(res.stderr[-2000:], file=sys.stderr)
    return wall, rss, res.returncode


def row(n: int, what: str, wall: float, rss: int | None, code: int, out: Path) -> None:
    size = out.stat().st_size if out.exists() else 0
    print(
        f"| {n:,} | {what} | {wall:.1f} | {rss if rss is not None else '?'} | {code} | {size / 1e6:.2f} MB |",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000,50000", help="comma-separated file counts")
    ap.add_argument("--100k", dest="big", action="store_true", help="add a 100,000-file zoo to --sizes")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated report formats")
    ap.add_argument("--workers", default="1")
    ap.add_argument("--scan", action="store_true", help="also `modelward scan ZOO -f FORMAT`")
    ap.add_argument("--keep", action="store_true", help="keep the zoos and reports")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.big and 100_000 not in sizes:
        sizes.append(100_000)
    formats = [f for f in args.formats.split(",") if f]
    work = Path(tempfile.mkdtemp(prefix="mw-bench-audit-mem-"))
    timed([str(BIN), "--version"])  # bytecode and caches warm, as an installed wheel would be
    print(f"# {BIN} on {os.cpu_count()} CPUs, workers {args.workers}, work dir {work}")
    print("| files | command | wall (s) | peak RSS (MB) | exit | report |")
    print("|---:|---|---:|---:|---|---:|")
    try:
        for n in sizes:
            zoo = work / f"zoo-{n}"
            build_zoo(zoo, n)
            time.sleep(2.5)  # past the racy-timestamp window, as a nightly audit would be
            for fmt in formats:
                db, out = work / f"{n}-{fmt}.sqlite", work / f"{n}.{fmt}"
                cmd = [str(BIN), "audit", str(zoo), "--db", str(db), "--policy", "default"]
                cmd += ["--workers", args.workers, "-f", fmt, "-o", str(out)]
                row(n, f"audit -f {fmt}", *timed(cmd), out)
                if not args.keep:
                    out.unlink(missing_ok=True)
                    for p in work.glob(f"{n}-{fmt}.sqlite*"):
                        p.unlink()
            for fmt in formats if args.scan else ():
                out = work / f"{n}.scan.{fmt}"
                cmd = [str(BIN), "scan", str(zoo), "--workers", args.workers, "-f", fmt, "-o", str(out)]
                row(n, f"scan -f {fmt}", *timed(cmd), out)
                if not args.keep:
                    out.unlink(missing_ok=True)
            if not args.keep:
                shutil.rmtree(zoo, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
