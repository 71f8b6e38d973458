"""Start-up benchmark: the whole `modelward scan` process on one small pickle and on a large checkpoint,
beside picklescan (issue #13: goal <= 2x picklescan's wall time on one small pickle, <= 1.5x on a 3 GiB file).

Each command runs --repeat times; the median wall time and the peak RSS are printed. picklescan is taken
from PATH or --peer-bin. The large checkpoint is a sparse torch-style zip (no disk time to build).

Usage:
  python benchmarks/bench_startup.py --peer-bin /path/to/peervenv/bin
  python benchmarks/bench_startup.py --large-gib 3 --repeat 7
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BIN = Path(sys.executable).with_name("modelward")


def run(cmd: list[str], repeat: int) -> tuple[float, float, int | None]:
    """Median wall and median user+sys CPU seconds (CPU compares better on a shared machine), peak RSS."""
    walls, cpus, rss = [], [], None
    for _ in range(repeat):
        t0 = time.monotonic()
        res = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *cmd], capture_output=True, text=True)
        walls.append(time.monotonic() - t0)
        try:
            user, system, kb = res.stderr.strip().splitlines()[-1].split()
            cpus.append(float(user) + float(system))
            rss = max(rss or 0, int(kb) // 1024)
        except (ValueError, IndexError):
            pass
    return statistics.median(walls), statistics.median(cpus) if cpus else float("nan"), rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-bin", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large-gib", type=float, default=3.0)
    args = ap.parse_args()
    peer = shutil.which("picklescan", path=args.peer_bin) if args.peer_bin else shutil.which("picklescan")
    with tempfile.TemporaryDirectory(prefix="mw-bench-start-") as tmp:
        small = Path(tmp) / "small.pkl"
        small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=4))
        large = Path(tmp) / "large.pt"
        with zipfile.ZipFile(large, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle.dumps({"step": 1}, protocol=2))
            z.writestr("archive/version", "3\n")
        with open(large, "r+b") as fh:
            fh.truncate(int(args.large_gib * (1 << 30)))
        print(f"{'case':38} {'median wall':>12} {'median CPU':>11} {'peak RSS':>10}")
        for label, target in (("one small pickle", small), (f"{args.large_gib:g} GiB checkpoint", large)):
            wall, cpu, rss = run([str(BIN), "scan", "--no-hash", "-q", str(target)], args.repeat)
            print(f"{'modelward scan ' + label:38} {wall:10.3f} s {cpu:9.3f} s {rss or '?':>7} MB")
            if peer:
                pwall, pcpu, prss = run([peer, "-p", str(target)], args.repeat)
                print(
                    f"{'picklescan ' + label:38} {pwall:10.3f} s {pcpu:9.3f} s {prss or '?':>7} MB"
                    f"   ratio wall {wall / pwall:.1f}x, CPU {cpu / pcpu:.1f}x"
                )


if __name__ == "__main__":
    main()
