"""Start-up benchmark: the whole `modelward scan` process on one small pickle and on a large checkpoint,
beside picklescan (issue #13: goal <= 2x picklescan's wall time on one small pickle, <= 1.5x on a 3 GiB file).

Each command runs --repeat times; the median wall time and the peak RSS are printed. picklescan is taken
from PATH or --peer-bin. The large checkpoint is a valid torch-layout zip built by bench_scan.py (data.pkl, 3 GiB
of float32 storages); a zip truncated to size would have no end record and be judged as malformed.

With --instructions (needs valgrind), each command also runs once under callgrind and the instructions it
executed are printed: unlike wall and CPU time, that count does not move with the load of a shared machine.

How modelward is installed (--install): users install a wheel, and picklescan is measured as a regular
install, so by default the working tree is built into a wheel (`pip wheel --no-deps`) and installed into a
throwaway venv (--wheel-venv, kept between runs; its dependencies are pinned to the versions of the
interpreter running this script, so typer and friends are the same on both sides); only modelward itself is
reinstalled at each run. `--install editable` measures the `modelward` beside this interpreter instead (an
editable checkout: setuptools' editable finder costs ~50 M instructions at every start).

Usage:
  python benchmarks/bench_startup.py --peer-bin /path/to/peervenv/bin
  python benchmarks/bench_startup.py --large-gib 3 --repeat 7 --instructions
  python benchmarks/bench_startup.py --install editable
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_scan import layout, weight_block, write_checkpoint  # the sibling script's torch-layout writer

REPO = Path(__file__).resolve().parent.parent
EDITABLE_BIN = Path(sys.executable).with_name("modelward")
DEFAULT_WHEEL_VENV = Path(tempfile.gettempdir()) / "modelward-bench-wheel-venv"


# An installed package has its bytecode compiled; PYTHONDONTWRITEBYTECODE (set in some shells and CI images) would
# make an editable checkout recompile ~120 modules at every start, measuring the compiler instead of the start-up.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd: list[str], repeat: int) -> tuple[float, float, int | None, int]:
    """Median wall and median user+sys CPU seconds (CPU compares better on a shared machine), peak RSS, exit code."""
    walls, cpus, rss, code = [], [], None, -1
    subprocess.run(cmd, capture_output=True, env=ENV)  # warm-up: bytecode and modelward's parsed-rule cache
    for _ in range(repeat):
        t0 = time.monotonic()
        res = subprocess.run(
            ["/usr/bin/time", "-f", "%U %S %M", *cmd], capture_output=True, text=True, env=ENV
        )
        walls.append(time.monotonic() - t0)
        code = res.returncode
        try:
            user, system, kb = res.stderr.strip().splitlines()[-1].split()
            cpus.append(float(user) + float(system))
            rss = max(rss or 0, int(kb) // 1024)
        except (ValueError, IndexError):
            pass
    return statistics.median(walls), statistics.median(cpus) if cpus else float("nan"), rss, code


def instructions(cmd: list[str]) -> int | None:
    """Instructions the command executes (callgrind's total), or None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    res = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True,
        text=True,
        env=ENV,
    )
    for line in res.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    return None


def _pip(python: Path | str, *args: str) -> None:
    res = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, env=ENV)
    if res.returncode != 0:
        sys.exit(f"pip {' '.join(args[:2])} failed:\n{res.stderr[-3000:]}")


def wheel_install(venv: Path, rebuild: bool) -> Path:
    """The `modelward` of a wheel built from the working tree, installed into ``venv`` (created when missing,
    dependencies pinned to this interpreter's versions). Returns its console script."""
    if rebuild and venv.exists():
        shutil.rmtree(venv)
    with tempfile.TemporaryDirectory(prefix="mw-bench-wheel-") as tmp:
        _pip(sys.executable, "wheel", "--no-deps", "-q", str(REPO), "-w", tmp)
        wheel = next(Path(tmp).glob("modelward-*.whl"))
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            frozen = subprocess.run(
                [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            pins = Path(tmp) / "constraints.txt"
            pins.write_text(
                "".join(ln + "\n" for ln in frozen.splitlines() if "==" in ln and "modelward" not in ln)
            )
            _pip(python, "install", "-q", "-c", str(pins), str(wheel))
        _pip(python, "install", "-q", "--no-deps", "--force-reinstall", str(wheel))
    return venv / "bin" / "modelward"


def _millions(n: int | None) -> str:
    return f"{n / 1e6:8.0f} M" if n is not None else "       ?  "


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-bin", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large-gib", type=float, default=3.0)
    ap.add_argument("--instructions", action="store_true", help="also count instructions under callgrind")
    ap.add_argument(
        "--install",
        choices=("wheel", "editable"),
        default="wheel",
        help="measure a wheel of the working tree in a throwaway venv (default) or this checkout's editable install",
    )
    ap.add_argument(
        "--wheel-venv", type=Path, default=DEFAULT_WHEEL_VENV, help="the venv --install wheel uses"
    )
    ap.add_argument("--rebuild-venv", action="store_true", help="recreate --wheel-venv (new dependency pins)")
    args = ap.parse_args()
    bin_ = wheel_install(args.wheel_venv, args.rebuild_venv) if args.install == "wheel" else EDITABLE_BIN
    print(f"modelward: {bin_} ({args.install} install)")
    peer = shutil.which("picklescan", path=args.peer_bin) if args.peer_bin else shutil.which("picklescan")
    with tempfile.TemporaryDirectory(prefix="mw-bench-start-") as tmp:
        small = Path(tmp) / "small.pkl"
        small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=4))
        large = Path(tmp) / "large.pt"
        n_tensors = 32
        rows = max(1, int(args.large_gib * (1 << 30)) // (n_tensors * 4 * 1024))
        write_checkpoint(large, *layout(n_tensors, rows), weight_block())
        head = f"{'case':38} {'median wall':>12} {'median CPU':>11} {'peak RSS':>10} {'exit':>5}"
        print(head + (f" {'instructions':>10}" if args.instructions else ""))
        for label, target in (("one small pickle", small), (f"{args.large_gib:g} GiB checkpoint", large)):
            ours = [str(bin_), "scan", "--no-hash", "-q", str(target)]
            wall, cpu, rss, code = run(ours, args.repeat)
            n = instructions(ours) if args.instructions else None
            extra = f" {_millions(n)}" if args.instructions else ""
            print(
                f"{'modelward scan ' + label:38} {wall:10.3f} s {cpu:9.3f} s {rss or '?':>7} MB {code:>5}{extra}"
            )
            if peer:
                theirs = [peer, "-p", str(target)]
                pwall, pcpu, prss, pcode = run(theirs, args.repeat)
                pn = instructions(theirs) if args.instructions else None
                ratio = f", instructions {n / pn:.1f}x" if n and pn else ""
                extra = f" {_millions(pn)}" if args.instructions else ""
                print(
                    f"{'picklescan ' + label:38} {pwall:10.3f} s {pcpu:9.3f} s {prss or '?':>7} MB {pcode:>5}{extra}"
                    f"   ratio wall {wall / pwall:.1f}x, CPU {cpu / pcpu:.1f}x{ratio}"
                )


if __name__ == "__main__":
    main()
