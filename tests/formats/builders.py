"""Builders shared by the torch, numpy and zip tests: a raw zip writer (so anomalies can be crafted) and samples.

``samples/`` holds small real torch/numpy files written by ``make_samples.py``; scanning goes through
``tests/harness.py``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "samples"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass
class Member:
    name: str
    data: bytes
    method: int = 0
    flags: int = 0
    local_name: str | None = None
    crc: int | None = None
    external_attr: int = 0
    local_method: int | None = None


def build_zip(
    members: list[Member], prefix: bytes = b"", adjust_offsets: bool = False, trailing: bytes = b""
) -> bytes:
    """A zip written byte by byte so tests can make every field lie.

    ``prefix`` is prepended; with ``adjust_offsets`` the recorded offsets include
    it (like ``zip -A``), otherwise they are relative to the zip (like ``cat``).
    """
    out = bytearray()
    central = bytearray()
    base = len(prefix) if adjust_offsets else 0
    for m in members:
        payload = zlib.compress(m.data)[2:-4] if m.method == 8 else m.data
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        name = m.name.encode()
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        lmethod = m.method if m.local_method is None else m.local_method
        off = len(out) + base
        out += (
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                m.flags,
                lmethod,
                0,
                0x21,
                crc,
                len(payload),
                len(m.data),
                len(lname),
                0,
            )
            + lname
            + payload
        )
        central += (
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                0x031E,
                20,
                m.flags,
                m.method,
                0,
                0x21,
                crc,
                len(payload),
                len(m.data),
                len(name),
                0,
                0,
                0,
                0,
                m.external_attr,
                off,
            )
            + name
        )
    cd_off = len(out) + base
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), cd_off, 0)
    return prefix + bytes(out) + bytes(central) + eocd + trailing


def torch_members(blob: bytes) -> list[Member]:
    """The members of a real torch zip (read with our own parser's view via zipfile for simplicity)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [Member(i.filename, zf.read(i)) for i in zf.infolist()]
