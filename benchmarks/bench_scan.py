"""Scan benchmark: wall time and peak RSS of `modelward scan` beside peer scanners (issue #2).

Builds, in a temporary folder:
  * ``small.pt``  -- a PyTorch zip checkpoint with N float32 tensors (SIZE/10 tensor bytes);
  * ``big.pt``    -- the same N tensors with 10x the rows: the same pickle layout, 10x the tensor bytes;
  * ``views.pt``  -- small.pt's storages, but a data.pkl with many tensor views (a pickle ~100x larger);
and scans them plus a mixed corpus (the repository's ``fixtures/`` folder) with
``modelward scan --no-hash``, ``modelward scan`` (SHA-256 of every byte), and picklescan,
ModelScan and ModelAudit when they are on PATH (or in ``--peer-bin``).

The claim it checks: static scan time follows pickle bytes, not tensor bytes, and memory
stays flat however big the file (target < 150 MB peak RSS). Only hashing reads every byte.

The checkpoints are written without torch: the zip is built with ``zipfile`` (STORED members,
64-byte aligned data like torch's writer) and ``data.pkl`` is emitted opcode by opcode in the
shape ``torch.save`` produces (protocol 2, OrderedDict + _rebuild_tensor_v2 + BINPERSID storage
tuples, memoized globals, SETITEMS batches of 1000). Tensor bytes are a repeated random block
written in chunks, so building a multi-GB file needs little memory.

Usage:
  python benchmarks/bench_scan.py --quick                 # ~300 MB big checkpoint
  python benchmarks/bench_scan.py                         # ~3 GiB big checkpoint
  python benchmarks/bench_scan.py --peer-bin /path/to/peervenv/bin --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIB = 1 << 30
COLS = 1024
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")


# --------------------------------------------------------------------------- data.pkl in torch's shape

class _Pickle:
    """Protocol-2 writer with a memo, matching the opcode choices pickle makes for torch.save."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo: dict[object, int] = {}

    def put(self, key: object | None = None) -> None:
        idx = len(self.memo) if key is None else self.memo.setdefault(key, len(self.memo))
        if key is None:
            self.memo[("anon", idx)] = idx
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)

    def get_or(self, key: object, emit: bytes) -> None:
        if key in self.memo:
            idx = self.memo[key]
            self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)
        else:
            self.out += emit
            self.put(key)

    def glob(self, module: str, name: str) -> None:
        self.get_or(("g", module, name), b"c" + f"{module}\n{name}\n".encode())

    def text(self, s: str, memo_key: bool = False) -> None:
        enc = s.encode()
        raw = b"X" + struct.pack("<I", len(enc)) + enc
        if memo_key:
            self.get_or(("s", s), raw)
        else:
            self.out += raw
            self.put()

    def int(self, n: int) -> None:
        if n < 256:
            self.out += b"K" + bytes([n])
        elif n < 65536:
            self.out += b"M" + struct.pack("<H", n)
        elif n < 2**31:
            self.out += b"J" + struct.pack("<i", n)
        else:
            b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(b)]) + b

    def ints(self, values: tuple[int, ...]) -> None:
        for v in values:
            self.int(v)
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(values)]
        self.put()


@dataclass(frozen=True)
class TensorRef:
    name: str
    key: str
    numel_storage: int
    offset: int
    shape: tuple[int, int]


def data_pkl(tensors: list[TensorRef]) -> bytes:
    p = _Pickle()
    p.glob("collections", "OrderedDict")
    p.out += b")R"
    p.put()
    for start in range(0, len(tensors), 1000):
        p.out += b"("
        for t in tensors[start:start + 1000]:
            p.text(t.name)
            p.glob("torch._utils", "_rebuild_tensor_v2")
            p.out += b"(("
            p.text("storage", memo_key=True)
            p.glob("torch", "FloatStorage")
            p.text(t.key, memo_key=True)
            p.text("cpu", memo_key=True)
            p.int(t.numel_storage)
            p.out += b"t"
            p.put()
            p.out += b"Q"
            p.int(t.offset)
            p.ints(t.shape)
            p.ints((t.shape[1], 1))
            p.out += b"\x89"  # requires_grad False
            p.glob("collections", "OrderedDict")
            p.out += b")R"
            p.put()
            p.out += b"t"
            p.put()
            p.out += b"R"
            p.put()
        p.out += b"u"
    p.out += b"."
    return bytes(p.out)


# --------------------------------------------------------------------------- checkpoint writer

def _aligned_info(zf: zipfile.ZipFile, name: str, size: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type = zipfile.ZIP_STORED
    zi.file_size = size
    assert zf.fp is not None
    pad = (-(zf.fp.tell() + 30 + len(name.encode()) + 4)) % 64
    zi.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    return zi


def write_checkpoint(path: Path, storages: list[tuple[str, int]], tensors: list[TensorRef], block: bytes) -> int:
    """Write a torch-layout zip; ``storages`` = (key, nbytes). Returns the data.pkl size."""
    pkl = data_pkl(tensors)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        small = [("archive/data.pkl", pkl), ("archive/.format_version", b"1"),
                 ("archive/.storage_alignment", b"64"), ("archive/byteorder", b"little")]
        for name, data in small:
            zf.writestr(_aligned_info(zf, name, len(data)), data)
        for key, nbytes in storages:
            zi = _aligned_info(zf, f"archive/data/{key}", nbytes)
            with zf.open(zi, "w") as w:
                left = nbytes
                while left:
                    n = min(left, len(block))
                    w.write(block[:n])
                    left -= n
        for name, data in (("archive/version", b"3\n"), ("archive/.data/serialization_id", b"0" * 40)):
            zf.writestr(_aligned_info(zf, name, len(data)), data)
    return len(pkl)


def layout(n_tensors: int, rows: int) -> tuple[list[tuple[str, int]], list[TensorRef]]:
    storages, tensors = [], []
    for i in range(n_tensors):
        numel = rows * COLS
        storages.append((str(i), numel * 4))
        tensors.append(TensorRef(f"model.layers.{i // 4}.self_attn.{PROJ[i % 4]}.weight", str(i), numel, 0, (rows, COLS)))
    return storages, tensors


def view_layout(n_storages: int, rows: int, n_views: int) -> tuple[list[tuple[str, int]], list[TensorRef]]:
    """Same storages as ``layout`` but many one-row views into them: a big pickle over small tensors."""
    storages, _ = layout(n_storages, rows)
    tensors = []
    for v in range(n_views):
        s = v % n_storages
        r = (v // n_storages) % rows
        tensors.append(TensorRef(f"model.views.{v}", str(s), rows * COLS, r * COLS, (1, COLS)))
    return storages, tensors


# --------------------------------------------------------------------------- measuring

@dataclass
class Run:
    wall: float
    rss_mb: float
    code: int | None  # None: timed out


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


def measure(cmd: list[str], timeout: float, env: dict[str, str]) -> Run:
    """Run ``cmd`` once and return wall time, peak RSS and exit code.

    Peak RSS is read by GNU time (``%M``) when available: a child spawned straight from
    this (large) Python process starts with its parent's RSS high-water mark, because
    Linux records the pre-exec memory image in ru_maxrss. GNU time is a tiny process,
    so its child's figure is the scanner's own. Without it, wait4() gives an upper bound.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        argv = [GNU_TIME, "-f", "%M", "-o", tf.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kb = float(usage.ru_maxrss)
        if GNU_TIME:
            lines = [ln for ln in Path(tf.name).read_text().splitlines() if ln.strip().isdigit()]
            rss_kb = float(lines[-1]) if lines else float("nan")
    return Run(wall, rss_kb / 1024, None if timed_out.is_set() else proc.returncode)


def find_tool(name: str, extra: list[str]) -> str | None:
    return shutil.which(name, path=os.pathsep.join([*extra, os.environ.get("PATH", "")]))


def tool_commands(args: argparse.Namespace, out_dir: Path) -> dict[str, list[str] | None]:
    mw = args.modelward or find_tool("modelward", [str(Path(sys.executable).parent)])
    report = str(out_dir / "report.json")
    tools: dict[str, list[str] | None] = {
        "modelward --no-hash": [mw, "scan", "{}", "--no-hash", "--format", "json", "-o", report] if mw else None,
        "modelward (sha256)": [mw, "scan", "{}", "--format", "json", "-o", report] if mw else None,
    }
    if args.no_peers:
        return tools
    ps, ms, ma = (find_tool(n, args.peer_bin) for n in ("picklescan", "modelscan", "modelaudit"))
    tools["picklescan"] = [ps, "-p", "{}"] if ps else None
    tools["modelscan"] = [ms, "-p", "{}"] if ms else None
    tools["modelaudit"] = [ma, "scan", "{}", "--no-cache", "-q", "-f", "json", "-o", str(out_dir / "ma.json")] if ma else None
    return tools


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.2f} TB"


def median_run(runs: list[Run]) -> Run:
    runs = sorted(runs, key=lambda r: r.wall)
    mid = runs[len(runs) // 2]
    return Run(mid.wall, max(r.rss_mb for r in runs), mid.code)


def iter_cases(work: Path, size: int, block: bytes, heavy_views: int, fixtures: Path | None) -> Iterator[tuple[str, Path, str]]:
    n_tensors = 64
    rows = max(1, size // (n_tensors * 10 * COLS * 4))
    specs = [
        ("small.pt", layout(n_tensors, rows), "N tensors"),
        ("big.pt", layout(n_tensors, rows * 10), "same N, 10x rows"),
        ("views.pt", view_layout(n_tensors, rows, heavy_views), f"small.pt storages, {heavy_views} views"),
    ]
    for name, (storages, tensors), what in specs:
        path = work / name
        t0 = time.perf_counter()
        pkl = write_checkpoint(path, storages, tensors, block)
        tensor_bytes = sum(n for _, n in storages)
        print(f"  built {name}: {human(path.stat().st_size)} file, data.pkl {human(pkl)}, "
              f"{len(tensors)} tensors / {len(storages)} storages, {human(tensor_bytes)} tensor bytes "
              f"({what}) in {time.perf_counter() - t0:.1f}s", flush=True)
        yield name, path, f"{human(path.stat().st_size)} / pickle {human(pkl)}"
    if fixtures and fixtures.is_dir():
        files = [p for p in fixtures.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        yield "fixtures/ (mixed)", fixtures, f"{len(files)} files, {human(total)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=3.0, help="tensor bytes of big.pt (default 3 GiB)")
    ap.add_argument("--quick", action="store_true", help="big.pt of ~300 MB")
    ap.add_argument("--views", type=int, default=100_000, help="tensor views in views.pt (pickle-heavy case)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and case (median wall, max RSS)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--modelward", help="modelward executable (default: on PATH or beside this python)")
    ap.add_argument("--peer-bin", action="append", default=[], help="extra folder to look for peer CLIs in")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--fixtures", type=Path, default=REPO / "fixtures", help="mixed corpus folder")
    ap.add_argument("--workdir", type=Path, help="where to build the checkpoints (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the built checkpoints")
    args = ap.parse_args()

    size = int((0.3 if args.quick else args.size_gib) * GIB)
    work = Path(tempfile.mkdtemp(prefix="mw-bench-", dir=args.workdir))
    env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}
    tools = tool_commands(args, work)
    block = os.urandom(8 << 20)
    print(f"modelward scan benchmark: big.pt ~{human(size)}, repeat={args.repeat}, cpus={os.cpu_count()}, python {sys.version.split()[0]}")
    for name, cmd in tools.items():
        print(f"  {name}: {cmd[0] if cmd else 'not installed'}")
    rows: list[tuple[str, str, str, Run | None]] = []
    try:
        for case, path, desc in iter_cases(work, size, block, args.views, args.fixtures):
            for tool, cmd in tools.items():
                if cmd is None:
                    rows.append((case, desc, tool, None))
                    continue
                argv = [str(path) if a == "{}" else a for a in cmd]
                run = median_run([measure(argv, args.timeout, env) for _ in range(max(1, args.repeat))])
                rows.append((case, desc, tool, run))
                code = "timeout" if run.code is None else f"exit {run.code}"
                print(f"    {case:<18} {tool:<20} {run.wall:8.2f} s {run.rss_mb:8.1f} MB  {code}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    print("\n| case | size | tool | wall (s) | peak RSS (MB) | exit |")
    print("|---|---|---|---:|---:|---|")
    for case, desc, tool, run in rows:
        if run is None:
            print(f"| {case} | {desc} | {tool} | not installed | | |")
        else:
            code = "timeout" if run.code is None else str(run.code)
            print(f"| {case} | {desc} | {tool} | {run.wall:.2f} | {run.rss_mb:.0f} | {code} |")


if __name__ == "__main__":
    main()
