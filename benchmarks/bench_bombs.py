"""Bombs benchmark: peak RSS and wall time of `modelward scan` on the issue #12 memory cases, beside peers.

Builds each case in a temporary folder (tests/bombs.py: deflate output of one repeated block,
so a 4 GiB member costs a second to write), scans it with ``modelward scan --no-hash`` and with
picklescan, ModelScan and ModelAudit when they are on PATH or in ``--peer-bin`` ("n/a" otherwise),
and prints a Markdown table. Every case is deleted after it is scanned (``--keep`` keeps them).

Cases (issue #12 item, and what the scanner did before the fix):
  zip-4g-zeros.zip        item 4: a deflated 4 GiB member of zeros (1088 MB peak)
  torch-2g-storage.pt     item 4: a torch zip whose 2 GiB storage is deflated (874 MB)
  torch-300m-pickle.pt    item 4: a benign 300 MB deflated data.pkl (662 MB)
  pickle-300m.gz / .lz4   item 4: a benign 300 MB pickle in one gzip / lz4 stream (269-582 MB)
  npz-300m.npz            item 4: a 300 MB float32 array deflated in an npz
  header-95m.safetensors  item 5: a loader-valid 95 MB JSON header (1.5 GB, 51 s at 99 MB)
  onnx-700k.onnx          item 5: 700k nodes (465 MB)
  gguf-20m-tokens.gguf    item 5: 20M token strings (69 s)
  memo-3m.pkl             item 8: 3M memoized dicts (156 MB)

Peak RSS is GNU time's %M for the scanner process (see bench_scan.py on why not wait4).

Usage:
  python benchmarks/bench_bombs.py                   # full sizes (needs ~1 GB of temp disk at a time)
  python benchmarks/bench_bombs.py --quick           # a tenth of the sizes
  python benchmarks/bench_bombs.py --cases zip-4g-zeros.zip,memo-3m.pkl --peer-bin /path/to/peervenv/bin
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_scan import TensorRef, data_pkl, find_tool, measure, weight_block  # noqa: E402

from tests import bombs  # noqa: E402

MB = 1 << 20


@dataclass
class Case:
    name: str
    item: str
    before: str
    build: Callable[[Path, float], Path]


def _torch_storage(d: Path, scale: float) -> Path:
    nbytes = int((2 << 30) * scale) // MB * MB
    rows = nbytes // 4 // 1024
    pkl = data_pkl([TensorRef("w", "0", rows * 1024, 0, (rows, 1024))])
    return bombs.zip_one_deflated(
        d / "torch-2g-storage.pt",
        "archive/data/0",
        [(weight_block(MB), nbytes // MB)],
        {"archive/data.pkl": pkl, "archive/version": b"3\n"},
    )


def _torch_pickle(d: Path, scale: float) -> Path:
    pieces = bombs.big_bytes_pickle_pieces(int((300 << 20) * scale), bombs.text_block())
    return bombs.zip_one_deflated(
        d / "torch-300m-pickle.pt", "archive/data.pkl", pieces, {"archive/version": b"3\n"}
    )


CASES = [
    Case(
        "zip-4g-zeros.zip",
        "4",
        "1088 MB",
        lambda d, s: bombs.zip_one_deflated(
            d / "zip-4g-zeros.zip", "weights.bin", bombs.zeros(int((4 << 30) * s))
        ),
    ),
    Case("torch-2g-storage.pt", "4", "874 MB", _torch_storage),
    Case("torch-300m-pickle.pt", "4", "662 MB", _torch_pickle),
    Case(
        "pickle-300m.gz",
        "4",
        "269-582 MB",
        lambda d, s: bombs.gzip_of(
            d / "pickle-300m.gz", bombs.big_bytes_pickle_pieces(int((300 << 20) * s), bombs.text_block())
        ),
    ),
    Case(
        "pickle-300m.lz4",
        "4",
        "269-582 MB",
        lambda d, s: bombs.lz4_of(
            d / "pickle-300m.lz4", bombs.big_bytes_pickle_pieces(int((300 << 20) * s), bombs.text_block())
        ),
    ),
    Case(
        "npz-300m.npz",
        "4",
        "269-582 MB",
        lambda d, s: bombs.zip_one_deflated(
            d / "npz-300m.npz", "arr_0.npy", bombs.npy_pieces(int((300 << 20) * s))
        ),
    ),
    Case(
        "header-95m.safetensors",
        "5",
        "1.5 GB, 51 s",
        lambda d, s: bombs.safetensors_big_header(d / "header-95m.safetensors", int((95 << 20) * s)),
    ),
    Case(
        "onnx-700k.onnx",
        "5",
        "465 MB",
        lambda d, s: bombs.onnx_many_nodes(d / "onnx-700k.onnx", int(700_000 * s)),
    ),
    Case(
        "gguf-20m-tokens.gguf",
        "5",
        "69 s",
        lambda d, s: bombs.gguf_many_tokens(d / "gguf-20m-tokens.gguf", int(20_000_000 * s)),
    ),
    Case("memo-3m.pkl", "8", "156 MB", lambda d, s: bombs.memo_pickle(d / "memo-3m.pkl", int(3_000_000 * s))),
]


def _size(p: Path) -> str:
    n = float(p.stat().st_size)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of every size")
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and case (worst RSS, median wall)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--modelward", help="modelward executable (default: beside this python or on PATH)")
    ap.add_argument("--peer-bin", action="append", default=[], help="extra folder to look for peer CLIs in")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    scale = 0.1 if args.quick else 1.0
    wanted = set(args.cases.split(",")) if args.cases else None
    mw = args.modelward or find_tool("modelward", [str(Path(sys.executable).parent)])
    if not mw:
        sys.exit("modelward not found")
    peers = {n: find_tool(n, args.peer_bin) for n in ("picklescan", "modelscan", "modelaudit")}
    env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1"}
    work = Path(tempfile.mkdtemp(prefix="bench-bombs-"))
    print(
        f"# bench_bombs: scale {scale}, temp {work}, peers: "
        + ", ".join(f"{k} {'found' if v else 'n/a'}" for k, v in peers.items())
    )
    print("\n| case | item | size | before | tool | wall (s) | peak RSS (MB) | exit |")
    print("|---|---|---|---|---|---:|---:|---|")
    try:
        for case in CASES:
            if wanted and case.name not in wanted:
                continue
            t0 = time.monotonic()
            path = case.build(work, scale)
            built = time.monotonic() - t0
            tools: dict[str, list[str] | None] = {"modelward --no-hash": [mw, "scan", "--no-hash", str(path)]}
            tools["picklescan"] = [peers["picklescan"], "-p", str(path)] if peers["picklescan"] else None
            tools["modelscan"] = [peers["modelscan"], "-p", str(path)] if peers["modelscan"] else None
            tools["modelaudit"] = (
                [peers["modelaudit"], "scan", str(path), "--no-cache", "-q"] if peers["modelaudit"] else None
            )
            first = True
            for tool, cmd in tools.items():
                head = (
                    f"| {case.name} | {case.item} | {_size(path)} | {case.before} |" if first else "| | | | |"
                )
                first = False
                if cmd is None:
                    print(f"{head} {tool} | n/a | n/a | n/a |", flush=True)
                    continue
                runs = sorted(
                    (measure(cmd, args.timeout, env) for _ in range(max(1, args.repeat))),
                    key=lambda r: r.wall,
                )
                mid = runs[len(runs) // 2]
                code = "timeout" if mid.code is None else str(mid.code)
                print(
                    f"{head} {tool} | {mid.wall:.2f} | {max(r.rss_mb for r in runs):.0f} | {code} |",
                    flush=True,
                )
            print(f"<!-- {case.name}: built in {built:.1f} s -->", file=sys.stderr)
            if not args.keep:
                path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
