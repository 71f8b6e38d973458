"""Scan benchmark: wall time and peak RSS of `modelward scan` beside peer scanners (issues #2 and #3).

Builds, in a temporary folder:
  * ``small.pt``  -- a PyTorch zip checkpoint with N float32 tensors (SIZE/10 tensor bytes);
  * ``big.pt``    -- the same N tensors with 10x the rows: the same pickle layout, 10x the tensor bytes;
  * ``views.pt``  -- small.pt's storages, but a data.pkl with many tensor views (a pickle ~100x larger);
  * ``big.safetensors`` -- a valid Llama-shaped BF16 checkpoint of about SIZE; the data section is a
    sparse hole (``--dense`` writes it), so building it costs no disk time;
  * ``big.onnx``  -- an MLP whose float32 initializers are embedded (raw_data): about SIZE/2, kept
    under protobuf's 2 GiB;
  * ``onnx-external/`` -- the same architecture with SIZE of initializers in ``model.onnx.data``
    (a few KB ``model.onnx``): a static scanner should judge it from the protobuf alone;
and scans them plus a mixed corpus (the repository's ``fixtures/`` folder) with
``modelward scan --no-hash``, ``modelward scan`` (SHA-256 of every byte), and picklescan,
ModelScan and ModelAudit when they are on PATH (or in ``--peer-bin``).

The claim it checks: static scan time follows pickle/header bytes, not tensor bytes, and memory
stays flat however big the file (target < 150 MB peak RSS). Only hashing reads every byte.
modelward's own count of bytes read comes from its JSON report (``bytes_read``).

The checkpoints are written without torch: the zip is built with ``zipfile`` (STORED members,
64-byte aligned data like torch's writer) and ``data.pkl`` is emitted opcode by opcode in the
shape ``torch.save`` produces (protocol 2, OrderedDict + _rebuild_tensor_v2 + BINPERSID storage
tuples, memoized globals, SETITEMS batches of 1000). The ONNX protobuf is encoded field by field
(the same wire bytes onnx.save writes), with raw_data streamed in chunks. Tensor bytes are a
repeated block written in chunks, so building a multi-GB file needs little memory.

Usage:
  python benchmarks/bench_scan.py --quick                 # ~300 MB big checkpoints
  python benchmarks/bench_scan.py                         # ~3 GiB big checkpoints
  python benchmarks/bench_scan.py --cases safetensors,onnx --peer-bin /path/to/peervenv/bin --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from array import array
from collections import Counter
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
        for t in tensors[start : start + 1000]:
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


def write_checkpoint(
    path: Path, storages: list[tuple[str, int]], tensors: list[TensorRef], block: bytes
) -> int:
    """Write a torch-layout zip; ``storages`` = (key, nbytes). Returns the data.pkl size."""
    pkl = data_pkl(tensors)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        small = [
            ("archive/data.pkl", pkl),
            ("archive/.format_version", b"1"),
            ("archive/.storage_alignment", b"64"),
            ("archive/byteorder", b"little"),
        ]
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
        tensors.append(
            TensorRef(f"model.layers.{i // 4}.self_attn.{PROJ[i % 4]}.weight", str(i), numel, 0, (rows, COLS))
        )
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


# --------------------------------------------------------------------------- tensor bytes


def weight_block(nbytes: int = 1 << 20, seed: int = 0) -> bytes:
    """float32 values drawn like trained weights (N(0, 0.02)), so weight-statistics checks see sane data."""
    rnd = random.Random(seed)
    return array("f", (rnd.gauss(0.0, 0.02) for _ in range(nbytes // 4))).tobytes()


def bf16_block(f32: bytes) -> bytes:
    """The upper half of each little-endian float32: the same values as bfloat16."""
    out = bytearray(len(f32) // 2)
    out[0::2] = f32[2::4]
    out[1::2] = f32[3::4]
    return bytes(out)


def write_repeated(f, nbytes: int, block: bytes) -> None:  # type: ignore[no-untyped-def]
    while nbytes:
        n = min(nbytes, len(block))
        f.write(block[:n])
        nbytes -= n


# --------------------------------------------------------------------------- safetensors writer

HIDDEN, INTER, VOCAB = 2048, 5632, 32000  # TinyLlama-1.1B's shapes; the layer count scales with SIZE


def safetensors_layout(size: int) -> list[tuple[str, list[int]]]:
    """(name, shape) of a Llama-style BF16 checkpoint of about ``size`` bytes."""
    per_layer = (4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTER + 2 * HIDDEN) * 2
    layers = max(1, round((size - 2 * VOCAB * HIDDEN * 2) / per_layer))
    out: list[tuple[str, list[int]]] = [("model.embed_tokens.weight", [VOCAB, HIDDEN])]
    for i in range(layers):
        pre = f"model.layers.{i}"
        out += [
            (f"{pre}.input_layernorm.weight", [HIDDEN]),
            (f"{pre}.post_attention_layernorm.weight", [HIDDEN]),
        ]
        out += [(f"{pre}.self_attn.{p}.weight", [HIDDEN, HIDDEN]) for p in PROJ]
        out += [
            (f"{pre}.mlp.gate_proj.weight", [INTER, HIDDEN]),
            (f"{pre}.mlp.up_proj.weight", [INTER, HIDDEN]),
            (f"{pre}.mlp.down_proj.weight", [HIDDEN, INTER]),
        ]
    out += [("model.norm.weight", [HIDDEN]), ("lm_head.weight", [VOCAB, HIDDEN])]
    return out


def write_safetensors(path: Path, size: int, block: bytes | None) -> tuple[int, int]:
    """A valid file: contiguous offsets that cover the data section exactly, header padded to 8 bytes.

    ``block=None`` leaves the data section a sparse hole (reads as zeros, costs no disk time).
    Returns (header bytes, tensor count).
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    pos = 0
    layout_ = safetensors_layout(size)
    for name, shape in layout_:
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        if block is None:
            f.truncate(8 + len(raw) + pos)
        else:
            write_repeated(f, pos, block)
    return len(raw), len(layout_)


# --------------------------------------------------------------------------- ONNX writer

ONNX_DIM = 4096  # each initializer is a float32 [4096, 4096] matrix: 64 MiB
ONNX_MAX_PROTOBUF = 1792 << 20  # embedded models stay well under protobuf's 2 GiB


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): submessage, string or bytes."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _vi(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _value_info(name: str, dims: list[int]) -> bytes:
    shape = b"".join(_ld(1, _vi(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    return _ld(1, name.encode()) + _ld(2, _ld(1, _vi(1, 1) + _ld(2, shape)))  # TypeProto.tensor_type


def write_onnx(path: Path, n_weights: int, block: bytes, external: str | None = None) -> int:
    """An MLP ``x -> (MatMul W_i -> Relu)* -> y`` with ``n_weights`` float32 [D, D] initializers.

    Embedded: raw_data is streamed into the protobuf. ``external``: the initializers point into
    that file (ONNX's external-data layout: location/offset/length, data_location=EXTERNAL) and
    the tensor bytes are written there. Returns the tensor bytes written.
    """
    d = ONNX_DIM
    nbytes = d * d * 4
    nodes = b""
    prev = "x"
    for i in range(n_weights):
        out = "y" if i == n_weights - 1 else f"h{i}"
        mm = out if i == n_weights - 1 else f"mm{i}"
        nodes += _ld(
            1,
            _ld(1, prev.encode())
            + _ld(1, f"W{i}".encode())
            + _ld(2, mm.encode())
            + _ld(3, f"matmul_{i}".encode())
            + _ld(4, b"MatMul"),
        )
        if i != n_weights - 1:
            nodes += _ld(
                1, _ld(1, mm.encode()) + _ld(2, out.encode()) + _ld(3, f"relu_{i}".encode()) + _ld(4, b"Relu")
            )
        prev = out
    heads: list[bytes] = []  # each initializer's TensorProto without its raw_data payload
    for i in range(n_weights):
        t = _vi(1, d) + _vi(1, d) + _vi(2, 1) + _ld(8, f"W{i}".encode())  # dims, FLOAT, name
        if external:
            for k, v in (("location", external), ("offset", str(i * nbytes)), ("length", str(nbytes))):
                t += _ld(13, _ld(1, k.encode()) + _ld(2, v.encode()))
            t += _vi(14, 1)  # data_location = EXTERNAL
        else:
            t += _varint(9 << 3 | 2) + _varint(nbytes)  # raw_data, payload follows
        heads.append(t)
    tensor_len = [len(h) + (0 if external else nbytes) for h in heads]
    tail = _ld(11, _value_info("x", [1, d])) + _ld(12, _value_info("y", [1, d]))
    graph_len = (
        len(nodes)
        + len(_ld(2, b"mlp"))
        + len(tail)
        + sum(len(_varint(5 << 3 | 2)) + len(_varint(n)) + n for n in tensor_len)
    )
    with open(path, "wb") as f:
        f.write(_vi(1, 9) + _ld(2, b"modelward-bench") + _varint(7 << 3 | 2) + _varint(graph_len))
        f.write(nodes + _ld(2, b"mlp"))
        for h, n in zip(heads, tensor_len, strict=True):
            f.write(_varint(5 << 3 | 2) + _varint(n) + h)
            if not external:
                write_repeated(f, nbytes, block)
        f.write(tail + _ld(8, _ld(1, b"") + _vi(2, 17)))  # opset_import: ai.onnx 17
    if external:
        with open(path.parent / external, "wb") as f:
            write_repeated(f, n_weights * nbytes, block)
    return n_weights * nbytes


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
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
        )
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
        "modelward --no-hash": [mw, "scan", "{}", "--no-hash", "--format", "json", "-o", report]
        if mw
        else None,
        "modelward (sha256)": [mw, "scan", "{}", "--format", "json", "-o", report] if mw else None,
    }
    if args.no_peers:
        return tools
    ps, ms, ma = (find_tool(n, args.peer_bin) for n in ("picklescan", "modelscan", "modelaudit"))
    tools["picklescan"] = [ps, "-p", "{}"] if ps else None
    tools["modelscan"] = [ms, "-p", "{}"] if ms else None
    tools["modelaudit"] = (
        [ma, "scan", "{}", "--no-cache", "-q", "-f", "json", "-o", str(out_dir / "ma.json")] if ma else None
    )
    return tools


# Formats a peer does not read at all, checked by hand on small files: picklescan parses a
# safetensors or ONNX file as a pickle and stops at byte 0; ModelScan lists it as skipped.
DOES_NOT_HANDLE = {"picklescan": {"safetensors", "onnx"}, "modelscan": {"safetensors", "onnx"}}


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


@dataclass
class Case:
    name: str
    target: Path
    desc: str
    family: str  # "pt" | "fixtures" | "safetensors" | "onnx"
    built: list[Path]  # what to delete after scanning


CASE_GROUPS = ("pt", "fixtures", "safetensors", "onnx")


def _built(name: str, path: Path, t0: float, detail: str) -> None:
    total = (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )
    print(f"  built {name}: {human(total)} {detail} in {time.perf_counter() - t0:.1f}s", flush=True)


def iter_cases(
    work: Path,
    size: int,
    block: bytes,
    heavy_views: int,
    fixtures: Path | None,
    groups: set[str] | None = None,
    dense: bool = False,
) -> Iterator[Case]:
    groups = set(CASE_GROUPS) if groups is None else groups
    if "pt" in groups:
        n_tensors = 64
        rows = max(1, size // (n_tensors * 10 * COLS * 4))
        specs = [
            ("small.pt", layout(n_tensors, rows), "N tensors"),
            ("big.pt", layout(n_tensors, rows * 10), "same N, 10x rows"),
            (
                "views.pt",
                view_layout(n_tensors, rows, heavy_views),
                f"small.pt storages, {heavy_views} views",
            ),
        ]
        for name, (storages, tensors), what in specs:
            path = work / name
            t0 = time.perf_counter()
            pkl = write_checkpoint(path, storages, tensors, block)
            tensor_bytes = sum(n for _, n in storages)
            _built(
                name,
                path,
                t0,
                f"file, data.pkl {human(pkl)}, {len(tensors)} tensors / {len(storages)} storages, "
                f"{human(tensor_bytes)} tensor bytes ({what})",
            )
            yield Case(name, path, f"{human(path.stat().st_size)} / pickle {human(pkl)}", "pt", [path])
    if "fixtures" in groups and fixtures and fixtures.is_dir():
        files = [p for p in fixtures.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        yield Case("fixtures/ (mixed)", fixtures, f"{len(files)} files, {human(total)}", "fixtures", [])
    weights = weight_block()
    if "safetensors" in groups:
        path = work / "big.safetensors"
        t0 = time.perf_counter()
        hdr, n = write_safetensors(path, size, bf16_block(weights) if dense else None)
        how = "dense" if dense else "sparse"
        _built(path.name, path, t0, f"file, header {human(hdr)}, {n} BF16 tensors, data section {how}")
        yield Case(
            path.name,
            path,
            f"{human(path.stat().st_size)} / header {human(hdr)}, {n} tensors ({how})",
            "safetensors",
            [path],
        )
    if "onnx" in groups:
        embedded = max(1, min(size // 2, ONNX_MAX_PROTOBUF) // (ONNX_DIM * ONNX_DIM * 4))
        path = work / "big.onnx"
        t0 = time.perf_counter()
        write_onnx(path, embedded, weights)
        _built(
            path.name,
            path,
            t0,
            f"protobuf, {embedded} embedded float32 [{ONNX_DIM}, {ONNX_DIM}] initializers",
        )
        yield Case(
            path.name,
            path,
            f"{human(path.stat().st_size)} protobuf, {embedded} initializers embedded",
            "onnx",
            [path],
        )
        folder = work / "onnx-external"
        folder.mkdir()
        n_ext = max(1, size // (ONNX_DIM * ONNX_DIM * 4))
        t0 = time.perf_counter()
        write_onnx(folder / "model.onnx", n_ext, weights, external="model.onnx.data")
        _built("onnx-external/", folder, t0, f"folder, {n_ext} initializers in model.onnx.data")
        proto, data = (folder / "model.onnx").stat().st_size, (folder / "model.onnx.data").stat().st_size
        yield Case(
            "onnx-external/", folder, f"model.onnx {human(proto)} + .data {human(data)}", "onnx", [folder]
        )


@dataclass
class Row:
    case: Case
    tool: str
    run: Run | None
    note: str = ""  # "not installed" / "does not handle" when there is no run
    bytes_read: int | None = None
    result: str = ""


def modelward_result(report: Path) -> tuple[int | None, str]:
    """(bytes_read, verdict) from modelward's JSON report."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None, "no report"
    rules = sorted({f["rule_id"] for fr in data.get("files", []) for f in fr.get("findings", [])})
    verdict = data.get("verdict", {}).get("decision", "?")
    return data.get("bytes_read"), verdict + (f" ({', '.join(rules[:3])})" if rules else "")


def modelaudit_result(report: Path) -> str:
    """ModelAudit's summary: 'does not handle' when no scanner claimed the files, else issues by severity."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return "no report"
    types = {a.get("type") for a in data.get("assets", [])}
    if not data.get("scanner_names") or types <= {"unknown", None}:
        return "does not handle"
    sev = Counter(str(i.get("severity", "?")) for i in data.get("issues", []))
    text = ", ".join(f"{n} {s}" for s, n in sev.most_common()) or "clean"
    return text if data.get("success", True) else f"{text}; incomplete"


def network_prefix() -> list[str]:
    """``unshare -n`` runs every scanner without a network (needs CAP_SYS_ADMIN); [] when it cannot."""
    tool = shutil.which("unshare")
    if not tool:
        return []
    ok = subprocess.run([tool, "-n", "true"], capture_output=True).returncode == 0
    return [tool, "-n"] if ok else []


def run_tool(
    tool: str,
    cmd: list[str],
    case: Case,
    work: Path,
    env: dict[str, str],
    prefix: list[str],
    args: argparse.Namespace,
) -> Row:
    argv = [*prefix, *(str(case.target) if a == "{}" else a for a in cmd)]
    runs = []
    bytes_read, result = None, ""
    for _ in range(max(1, args.repeat)):
        for stale in ("report.json", "ma.json"):
            (work / stale).unlink(missing_ok=True)
        run_env = env
        if tool == "modelaudit":  # a fresh HOME per run: no cache, config or auth from earlier runs
            home = Path(tempfile.mkdtemp(prefix="ma-home-", dir=work))
            run_env = {
                **env,
                "HOME": str(home),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_CONFIG_HOME": str(home / ".config"),
            }
        runs.append(measure(argv, args.timeout, run_env))
        if tool == "modelaudit":
            shutil.rmtree(home, ignore_errors=True)
            result = modelaudit_result(work / "ma.json")
        elif tool.startswith("modelward"):
            bytes_read, result = modelward_result(work / "report.json")
    return Row(case, tool, median_run(runs), bytes_read=bytes_read, result=result)


def print_table(rows: list[Row]) -> None:
    print("\n| case | size | tool | wall (s) | peak RSS (MB) | exit | bytes read | result |")
    print("|---|---|---|---:|---:|---|---:|---|")
    for r in rows:
        desc = r.case.desc
        if r.run is None:
            print(f"| {r.case.name} | {desc} | {r.tool} | {r.note} | | | | |")
            continue
        code = "timeout" if r.run.code is None else str(r.run.code)
        read = human(r.bytes_read) if r.bytes_read is not None else ""
        print(
            f"| {r.case.name} | {desc} | {r.tool} | {r.run.wall:.2f} | {r.run.rss_mb:.0f} | {code} | {read} | {r.result} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--size-gib",
        type=float,
        default=3.0,
        help="tensor bytes of big.pt, big.safetensors and the external ONNX data (default 3 GiB); "
        "big.onnx gets half, at most 1.75 GiB",
    )
    ap.add_argument("--quick", action="store_true", help="big checkpoints of ~300 MB")
    ap.add_argument("--views", type=int, default=100_000, help="tensor views in views.pt (pickle-heavy case)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and case (median wall, max RSS)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--modelward", help="modelward executable (default: on PATH or beside this python)")
    ap.add_argument("--peer-bin", action="append", default=[], help="extra folder to look for peer CLIs in")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--fixtures", type=Path, default=REPO / "fixtures", help="mixed corpus folder")
    ap.add_argument(
        "--cases",
        default=",".join(CASE_GROUPS),
        help=f"comma-separated case groups to run, from {', '.join(CASE_GROUPS)} (default: all)",
    )
    ap.add_argument(
        "--dense", action="store_true", help="write big.safetensors' data section instead of a sparse hole"
    )
    ap.add_argument(
        "--workdir", type=Path, help="where to build the checkpoints (default: a temp dir, removed)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the built checkpoints")
    args = ap.parse_args()
    groups = {g.strip() for g in args.cases.split(",") if g.strip()}
    if groups - set(CASE_GROUPS):
        ap.error(f"unknown case group(s): {', '.join(sorted(groups - set(CASE_GROUPS)))}")

    size = int((0.3 if args.quick else args.size_gib) * GIB)
    work = Path(tempfile.mkdtemp(prefix="mw-bench-", dir=args.workdir))
    env = {**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"}
    tools = tool_commands(args, work)
    prefix = network_prefix()
    block = os.urandom(8 << 20)
    print(
        f"modelward scan benchmark: big checkpoints ~{human(size)}, repeat={args.repeat}, cpus={os.cpu_count()}, "
        f"python {sys.version.split()[0]}, cases {','.join(g for g in CASE_GROUPS if g in groups)}"
    )
    print(f"  network: {'none (unshare -n)' if prefix else 'NOT isolated (unshare -n unavailable)'}")
    for name, cmd in tools.items():
        print(f"  {name}: {cmd[0] if cmd else 'not installed'}")
    rows: list[Row] = []
    try:
        for case in iter_cases(work, size, block, args.views, args.fixtures, groups, args.dense):
            for tool, cmd in tools.items():
                if cmd is None or case.family in DOES_NOT_HANDLE.get(tool, ()):
                    rows.append(Row(case, tool, None, "not installed" if cmd is None else "does not handle"))
                    continue
                row = run_tool(tool, cmd, case, work, env, prefix, args)
                rows.append(row)
                assert row.run is not None
                code = "timeout" if row.run.code is None else f"exit {row.run.code}"
                read = f"  read {human(row.bytes_read)}" if row.bytes_read is not None else ""
                print(
                    f"    {case.name:<18} {tool:<20} {row.run.wall:8.2f} s {row.run.rss_mb:8.1f} MB  {code}{read}  "
                    f"{row.result}",
                    flush=True,
                )
            if not args.keep:
                for p in case.built:
                    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print_table(rows)


if __name__ == "__main__":
    main()
