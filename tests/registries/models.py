"""Small real model files built byte by byte (nothing is ever loaded), shared by tests and the remote benchmark."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

CANARY_CMD = "touch /tmp/modelward-canary"
_ZERO_CHUNK = bytes(16 << 20)


def _s(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def evil_pickle(cmd: str = CANARY_CMD) -> bytes:
    """os.system(cmd) as protocol-2 opcodes: GLOBAL posix.system, one string arg, REDUCE."""
    return b"\x80\x02cposix\nsystem\n" + _s(cmd) + b"\x85R."


def torch_state_dict_pickle(tensors: dict[str, int]) -> bytes:
    """The data.pkl torch.save writes for {name: float32 tensor of n elements}, storages keyed '0', '1', …"""
    out = bytearray(b"\x80\x02ccollections\nOrderedDict\n)R")
    for key, (name, n) in enumerate(tensors.items()):
        out += _s(name)
        out += b"ctorch._utils\n_rebuild_tensor_v2\n("
        out += b"(" + _s("storage") + b"ctorch\nFloatStorage\n" + _s(str(key)) + _s("cpu") + _int(n) + b"tQ"
        out += _int(0) + _int(n) + b"\x85" + _int(1) + b"\x85" + b"\x89" + b"ccollections\nOrderedDict\n)R"
        out += b"tR"
        out += b"s"
    out += b"."
    return bytes(out)


def _crc_zeros(n: int) -> int:
    crc = 0
    while n:
        k = min(n, len(_ZERO_CHUNK))
        crc = zlib.crc32(_ZERO_CHUNK[:k] if k < len(_ZERO_CHUNK) else _ZERO_CHUNK, crc)
        n -= k
    return crc


def write_stored_zip(path: Path, members: list[tuple[str, bytes | int]]) -> None:
    """A STORED zip like torch.save writes (64-byte aligned data); int members are zeros left as sparse holes.

    Sizes stay below 4 GiB (no zip64), which is enough for a 2+ GB benchmark checkpoint.
    """
    central = bytearray()
    with open(path, "wb") as f:
        for name, content in members:
            nb = name.encode()
            off = f.tell()
            n = len(content) if isinstance(content, bytes) else content
            crc = zlib.crc32(content) if isinstance(content, bytes) else _crc_zeros(n)
            pad = (-(off + 30 + len(nb) + 4)) % 64
            extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            f.write(
                struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, n, n, len(nb), len(extra))
            )
            f.write(nb + extra)
            if isinstance(content, bytes):
                f.write(content)
            else:
                f.seek(n, 1)
            central += (
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    0,
                    0,
                    0x21,
                    crc,
                    n,
                    n,
                    len(nb),
                    0,
                    0,
                    0,
                    0,
                    0,
                    off,
                )
                + nb
            )
        cd_off = f.tell()
        f.write(central)
        f.write(
            struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_off, 0)
        )


def write_torch_checkpoint(
    path: Path, tensors: dict[str, int], *, data_pkl: bytes | None = None, prefix: str = "archive"
) -> None:
    """A torch.save-style zip: data.pkl + one zero-filled float32 storage per tensor (sparse on disk)."""
    members: list[tuple[str, bytes | int]] = [
        (f"{prefix}/data.pkl", data_pkl or torch_state_dict_pickle(tensors)),
        (f"{prefix}/byteorder", b"little"),
    ]
    for key, n in enumerate(tensors.values()):
        members.append((f"{prefix}/data/{key}", n * 4))
    members += [
        (f"{prefix}/version", b"3\n"),
        (f"{prefix}/.data/serialization_id", b"0123456789012345678901"),
    ]
    write_stored_zip(path, members)


def safetensors_bytes(tensors: dict[str, int], metadata: dict[str, str] | None = None) -> bytes:
    """A valid safetensors file of float32 zero tensors (n elements each)."""
    header: dict = {}
    off = 0
    for name, n in tensors.items():
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(off)


def write_safetensors(path: Path, tensors: dict[str, int]) -> None:
    """Like safetensors_bytes, but the zero data is a sparse hole on disk (for multi-GB shards)."""
    header: dict = {}
    off = 0
    for name, n in tensors.items():
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + off)
