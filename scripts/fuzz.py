#!/usr/bin/env python3
"""Long coverage-guided fuzzing run over every parser target; crashes become regression inputs.

Usage (from the repository root, in the project venv with ``pip install atheris``)::

    python scripts/fuzz.py                      # every target, 10 minutes each
    python scripts/fuzz.py --minutes 60 pickle zip
    python scripts/fuzz.py --strict             # also count fail-closed inspector crashes (INSPECTOR-ERROR)
    python scripts/fuzz.py --jobs 2             # targets in parallel (one process each)

Each target runs ``python -m tests.fuzz.run TARGET`` with a persistent corpus in
``build/fuzz-corpus/<target>/`` (grows across runs; seeded from ``fixtures/``), a per-input
timeout, and an RSS limit. A crash input (an exception escaping inspection, a timeout, an input
whose process grew past the RSS limit) is written to ``tests/fuzz/regressions/<target>/`` where
``tests/fuzz/test_fuzz.py`` replays it on every test run: fix the scanner, keep the input.
Exit status 1 if any target crashed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.targets import REGRESSIONS, TARGETS  # noqa: E402


def run_target(
    target: str, minutes: float, rss_mb: int, timeout_s: int, strict: bool
) -> tuple[str, int, list[Path]]:
    out = REGRESSIONS / target
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    cmd = [
        sys.executable, "-m", "tests.fuzz.run", target,
        "--corpus", str(REPO / "build" / "fuzz-corpus" / target),
        f"-max_total_time={int(minutes * 60)}", f"-rss_limit_mb={rss_mb}", f"-timeout={timeout_s}",
        f"-artifact_prefix={out}/", "-print_final_stats=1",
    ]  # fmt: skip
    if strict:
        cmd.insert(4, "--strict")
    log = REPO / "build" / "fuzz-logs" / f"{target}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        rc = subprocess.call(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    return target, rc, sorted(set(out.iterdir()) - before)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help=f"default: all of {', '.join(sorted(TARGETS))}")
    ap.add_argument("--minutes", type=float, default=10.0, help="per target")
    ap.add_argument(
        "--rss-mb",
        type=int,
        default=320,
        help="libFuzzer -rss_limit_mb: ~130 MB fuzzer baseline + the 150 MB goal",
    )
    ap.add_argument("--timeout", type=int, default=15, help="seconds per input")
    ap.add_argument("--strict", action="store_true", help="INSPECTOR-ERROR findings count as crashes")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    targets = args.targets or sorted(TARGETS)
    unknown = [t for t in targets if t not in TARGETS and t != "all"]
    if unknown:
        ap.error(f"unknown target(s): {', '.join(unknown)}")
    failed = False
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(run_target, t, args.minutes, args.rss_mb, args.timeout, args.strict) for t in targets
        ]
        for fut in futures:
            target, rc, new = fut.result()
            if rc == 3:
                print("atheris is not installed: pip install atheris", file=sys.stderr)
                return 2
            status = "ok" if rc == 0 else f"CRASH (exit {rc})"
            print(f"{target:12s} {status}  log: build/fuzz-logs/{target}.log")
            for p in new:
                print(f"    new regression input: {p.relative_to(REPO)}")
            failed |= rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
