"""Builders for large and hostile inputs (issue #12 items 4, 5 and 8), shared by tests and benchmarks/bench_bombs.py.

Every builder streams to disk in bounded memory, so multi-GB cases cost seconds:
deflate output of a repeated block is computed once with a full flush (which
resets the history) and the compressed bytes are repeated; CRCs are combined
block by block. Nothing here loads what it writes.
"""

from __future__ import annotations

import json
import pickle
import random
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

BLOCK = 1 << 20


def text_block(seed: int = 0, size: int = BLOCK) -> bytes:
    """Benign, compressible data (~4:1 with deflate): random words, as a text-heavy pickle would hold."""
    rnd = random.Random(seed)
    words = [bytes(rnd.choices(b"abcdefghijklmnopqrstuvwxyz", k=rnd.randint(2, 9))) for _ in range(4000)]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])


def _deflate_pieces(pieces: list[tuple[bytes, int]], level: int = 6) -> Iterator[tuple[bytes, int, int]]:
    """(compressed bytes, crc, raw length) for raw deflate of each (block, repeat) piece, in order.

    Each block is compressed once with Z_FULL_FLUSH; its output is independent of what came before,
    so it can be repeated. The final empty block closes the stream.
    """
    for block, repeat in pieces:
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        comp = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        crc = zlib.crc32(block)
        for _ in range(repeat):
            yield comp, crc, len(block)
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    yield c.flush(zlib.Z_FINISH), 0, 0


def _write_deflate(f, pieces: list[tuple[bytes, int]]) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Write one raw deflate stream; return (crc32, raw size, compressed size)."""
    crc, raw, comp_total = 0, 0, 0
    shifts: dict[int, list[int]] = {}
    for comp, bcrc, n in _deflate_pieces(pieces):
        f.write(comp)
        comp_total += len(comp)
        if n:
            if n not in shifts:
                shifts[n] = _crc_shift_operator(n)
            crc = _gf2_times(shifts[n], crc) ^ bcrc
            raw += n
    return crc, raw, comp_total


def _gf2_times(mat: list[int], vec: int) -> int:
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _crc_shift_operator(nbytes: int) -> list[int]:
    """The GF(2) operator that advances a CRC-32 over ``nbytes`` zero bytes (zlib's crc32_combine), as 32 columns."""
    op = [0xEDB88320] + [1 << (n - 1) for n in range(1, 32)]  # one zero bit
    result = [1 << n for n in range(32)]  # identity
    bits = nbytes * 8
    while bits:
        if bits & 1:
            result = [_gf2_times(op, c) for c in result]
        op = [_gf2_times(op, c) for c in op]
        bits >>= 1
    return result


def zip_one_deflated(
    path: Path, name: str, pieces: list[tuple[bytes, int]], extra_members: dict[str, bytes] | None = None
) -> Path:
    """A zip64 archive: stored ``extra_members`` first, then ``name`` deflated from ``pieces`` (block, repeat)."""
    central = bytearray()
    count = 0
    with open(path, "wb") as f:
        for mname, data in (extra_members or {}).items():
            off = f.tell()
            raw = mname.encode()
            crc = zlib.crc32(data)
            f.write(
                struct.pack(
                    "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(raw), 0
                )
            )
            f.write(raw + data)
            central += struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                0,
                0,
                0,
                crc,
                len(data),
                len(data),
                len(raw),
                0,
                0,
                0,
                0,
                0,
                off,
            )
            central += raw
            count += 1
        off = f.tell()
        raw = name.encode()
        z64 = struct.pack("<HHQQ", 1, 16, 0, 0)
        f.write(
            struct.pack(
                "<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 8, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(raw), len(z64)
            )
        )
        f.write(raw + z64)
        crc, usize, csize = _write_deflate(f, pieces)
        end = f.tell()
        f.seek(off + 14)
        f.write(struct.pack("<I", crc))
        f.seek(off + 30 + len(raw) + 4)
        f.write(struct.pack("<QQ", usize, csize))
        f.seek(end)
        cz64 = struct.pack("<HHQQQ", 1, 24, usize, csize, off)
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            45,
            45,
            0,
            8,
            0,
            0,
            crc,
            0xFFFFFFFF,
            0xFFFFFFFF,
            len(raw),
            len(cz64),
            0,
            0,
            0,
            0,
            0xFFFFFFFF,
        )
        central += raw + cz64
        count += 1
        cd_off = f.tell()
        f.write(central)
        z64_pos = f.tell()
        f.write(
            struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), cd_off)
        )
        f.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, z64_pos, 1))
        f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), 0xFFFFFFFF, 0))
    return path


def gzip_of(path: Path, pieces: list[tuple[bytes, int]]) -> Path:
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        crc, usize, _ = _write_deflate(f, pieces)
        f.write(struct.pack("<II", crc, usize & 0xFFFFFFFF))
    return path


def lz4_of(path: Path, pieces: list[tuple[bytes, int]]) -> Path:
    import lz4.frame

    with open(path, "wb") as f, lz4.frame.LZ4FrameCompressor() as c:
        f.write(c.begin())
        for block, repeat in pieces:
            for _ in range(repeat):
                f.write(c.compress(block))
        f.write(c.flush())
    return path


def big_bytes_pickle_pieces(total: int, block: bytes) -> list[tuple[bytes, int]]:
    """A benign protocol-4 pickle: one BINBYTES8 of ``total`` bytes built from ``block`` (rounded down)."""
    n = max(1, total // len(block))
    head = b"\x80\x04\x8e" + struct.pack("<Q", n * len(block))
    return [(head, 1), (block, n), (b"\x94.", 1)]


def npy_pieces(total: int) -> list[tuple[bytes, int]]:
    """A float32 .npy of about ``total`` bytes of data (a smooth ramp: compresses like real weights, ~3:1)."""
    n = max(1, total // BLOCK)
    rows = n * BLOCK // 4
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + str(rows) + ",), }"
    hb = header.encode()
    hb += b" " * ((64 - (10 + len(hb) + 1) % 64) % 64) + b"\n"
    pre = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hb)) + hb
    rnd = random.Random(1)
    block = struct.pack(f"<{BLOCK // 4}f", *(round(rnd.gauss(0, 0.02), 3) for _ in range(BLOCK // 4)))
    return [(pre, 1), (block, n)]


def zeros(total: int) -> list[tuple[bytes, int]]:
    return [(bytes(BLOCK), max(1, total // BLOCK))]


# --------------------------------------------------------------------------- huge headers and graphs (item 5)


def safetensors_big_header(path: Path, header_bytes: int) -> Path:
    """A valid safetensors file whose JSON header is about ``header_bytes`` (many 1-element F32 tensors)."""
    meta: dict[str, object] = {}
    n = 0
    est = 2
    while est < header_bytes:
        key = f"model.layers.{n}.weight"
        meta[key] = {"dtype": "F32", "shape": [1], "data_offsets": [4 * n, 4 * n + 4]}
        est += len(key) + 60
        n += 1
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.write(bytes(4 * n))
    return path


def _pb_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_field(num: int, payload: bytes) -> bytes:
    return _pb_varint(num << 3 | 2) + _pb_varint(len(payload)) + payload


def onnx_many_nodes(path: Path, nodes: int) -> Path:
    """A valid ONNX ModelProto: a chain of ``nodes`` Relu nodes (x -> t0 -> ... -> y)."""
    with open(path, "wb") as f:
        graph = bytearray()
        prev = "x"
        for i in range(nodes):
            out = "y" if i == nodes - 1 else f"t{i}"
            node = _pb_field(1, prev.encode()) + _pb_field(2, out.encode()) + _pb_field(3, f"n{i}".encode())
            node += _pb_field(4, b"Relu")
            graph += _pb_field(1, node)
            prev = out
        graph += _pb_field(2, b"g")
        vt = _pb_field(1, b"\x08\x01")  # TypeProto { tensor_type { elem_type: FLOAT } }
        graph += _pb_field(11, _pb_field(1, b"x") + _pb_field(2, vt))
        graph += _pb_field(12, _pb_field(1, b"y") + _pb_field(2, vt))
        model = _pb_varint(1 << 3) + _pb_varint(8)  # ir_version 8
        model += _pb_field(8, _pb_varint(2 << 3) + _pb_varint(17))  # opset_import { version: 17 }
        model += _pb_field(7, bytes(graph))
        f.write(model)
    return path


def gguf_many_tokens(path: Path, tokens: int, distinct: bool = True) -> Path:
    """A GGUF v3 file with no tensors and a ``tokenizer.ggml.tokens`` array of ``tokens`` short strings
    (``distinct=False``: all the same, written at disk speed)."""

    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 2))
        f.write(s("general.architecture") + struct.pack("<I", 8) + s("llama"))
        f.write(s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, tokens))
        if not distinct:
            one = struct.pack("<Q", 3) + b"tok"
            for start in range(0, tokens, 1 << 16):
                f.write(one * min(1 << 16, tokens - start))
            return path
        buf = bytearray()
        for i in range(tokens):
            t = b"t%d" % i
            buf += struct.pack("<Q", len(t)) + t
            if len(buf) > BLOCK:
                f.write(buf)
                buf.clear()
        f.write(buf)
    return path


# --------------------------------------------------------------------------- memo (item 8)


def memo_pickle(path: Path, entries: int, unit: bytes = b"}\x940") -> Path:
    """Protocol 4: ``entries`` values each MEMOIZEd and popped (default: a new empty dict each, the costliest
    memo entry the issue measured): the memo grows, the stack does not."""
    with open(path, "wb") as f:
        f.write(b"\x80\x04")
        chunk = unit * 65536
        left = entries
        while left > 0:
            k = min(left, 65536)
            f.write(chunk if k == 65536 else unit * k)
            left -= k
        f.write(b"N.")
    return path


def pickle_dumps_ok(obj: object) -> bytes:
    """pickle.dumps of plain data (never loads anything)."""
    return pickle.dumps(obj, protocol=4)


# --------------------------------------------------------------------------- measuring the real CLI process

GNU_TIME = "/usr/bin/time"


def cli_peak(args: list[str], modelward: str) -> tuple[int, int, float] | None:
    """(exit code, peak RSS bytes, wall seconds) of one ``modelward`` process, via GNU time; None without it.

    GNU time reports the scanner's own peak (wait4 from a Python parent would include the parent's
    pre-exec image).
    """
    import os
    import subprocess
    import tempfile
    import time

    if not os.access(GNU_TIME, os.X_OK):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        t0 = time.monotonic()
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", out.name, modelward, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        wall = time.monotonic() - t0
        text = out.read().strip().splitlines()
    kb = int(text[-1]) if text and text[-1].isdigit() else -1
    return proc.returncode, kb * 1024, wall
