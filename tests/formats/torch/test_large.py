"""A multi-hundred-MB torch zip is judged from its directory, its pickle and storage heads only."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

from scanner.pipeline import ScanOptions, scan_targets

STORAGE_BYTES = 400 << 20


def _data_pkl(numel: int) -> bytes:
    # {'w': _rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', numel)), 0, (numel,), (1,), False, OrderedDict())}
    return (
        b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ"
        + struct.pack("<i", numel)
        + b"tQK\x00J"
        + struct.pack("<i", numel)
        + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs."
    )


def write_sparse_torch_zip(path, storage_bytes: int = STORAGE_BYTES) -> None:
    central = bytearray()
    with open(path, "wb") as fh:

        def member(name: bytes, body: bytes | None, size: int) -> None:
            off = fh.tell()
            crc = zlib.crc32(body) if body is not None else 0
            fh.write(
                struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0)
                + name
            )
            if body is None:
                fh.seek(size, 1)  # a hole: no disk time, reads as zeros
            else:
                fh.write(body)
            central.extend(
                struct.pack(
                    "<4sHHHHHHIIIHHHHHII",
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    0,
                    0,
                    0x21,
                    crc,
                    size,
                    size,
                    len(name),
                    0,
                    0,
                    0,
                    0,
                    0,
                    off,
                )
                + name
            )

        pkl = _data_pkl(storage_bytes // 4)
        member(b"big/data.pkl", pkl, len(pkl))
        member(b"big/data/0", None, storage_bytes)
        member(b"big/version", b"3\n", 2)
        cd_off = fh.tell()
        fh.write(bytes(central))
        fh.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 3, 3, len(central), cd_off, 0))


def test_sparse_multi_hundred_mb_checkpoint(tmp_path):
    p = tmp_path / "big.pt"
    write_sparse_torch_zip(p)
    assert p.stat().st_size > STORAGE_BYTES
    tracemalloc.start()
    t0 = time.monotonic()
    report = scan_targets([str(p)], ScanOptions(compute_sha256=False))
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    fr = report.files[0]
    assert fr.format == "pytorch-zip"
    assert not [f for f in fr.findings if f.rule_id.startswith(("TORCH-", "ZIP-", "ARCHIVE-", "FORMAT-"))]
    assert fr.bytes_read < 1 << 20, fr.bytes_read
    assert peak < 150 << 20
    assert elapsed < 10


def test_sparse_checkpoint_with_oversized_reference(tmp_path):
    p = tmp_path / "big.pt"
    write_sparse_torch_zip(p, storage_bytes=64 << 20)
    blob = bytearray(p.read_bytes())
    numel = struct.pack("<i", (64 << 20) // 4)
    i = blob.index(b"cpuJ" + numel)
    blob[i + 4 : i + 8] = struct.pack("<i", (64 << 20) // 4 + 1)
    p.write_bytes(bytes(blob))
    fr = scan_targets([str(p)], ScanOptions(compute_sha256=False)).files[0]
    assert any("out-of-bounds" in f.message for f in fr.findings if f.rule_id == "TORCH-STORAGE-INVALID")
