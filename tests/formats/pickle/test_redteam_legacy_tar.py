"""Red team: torch's legacy tar branch, as tarfile reads the archive.

torch.load on a tar unpickles the 'storages' member first: a count pickle, then
one (key, location, type) pickle per storage between raw storage bytes. Two
ways out of the legacy-tar inspector (which walks that layout) used to leave
the member to generic content inspection, where the walk stops at the first
raw bytes and never reaches the next pickle:

* a tar header with a *signed* checksum (tarfile accepts both; the legacy
  sniffer summed unsigned bytes only), and
* a tar holding only 'storages' (torch runs its pickles before it notices the
  other members are missing).

Nothing here is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity
from scanner.formats.torch_legacy import tar_members
from scanner.io.reader import BytesReader
from tests.harness import blocked_for_payload, detect_bytes, worst

from .assembler import CANARY, U

EVIL = b"\x80\x02cos\nsystem\n" + U(CANARY) + b"\x85R."
STORAGE_HEADER = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."


def storages_member() -> bytes:
    """2 storages: the first one's raw bytes (4) end the walk of a generic pickle scan; the second header is the payload."""
    return b"\x80\x02K\x02." + STORAGE_HEADER + struct.pack("<q", 1) + b"\x04\x00\x00\x00" + EVIL


def header(name: bytes, size: int, *, signed: bool = False, ustar: bool = False) -> bytes:
    h = bytearray(512)
    h[: len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = b"0"
    if ustar:
        h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    total = sum(b - 256 if b > 127 else b for b in h) if signed else sum(h)
    h[148:156] = b"%06o\0 " % total
    return bytes(h)


def tar(members: list[tuple[bytes, bytes]], **kw: bool) -> bytes:
    out = b""
    for name, data in members:
        out += header(name, len(data), **kw) + data + b"\0" * (-len(data) % 512)
    return out + b"\0" * 1024


LAYOUTS = {
    "signed_checksum": tar(
        [
            ("\u00e9".encode(), b""),  # a non-ASCII name: signed and unsigned sums differ
            (b"storages", storages_member()),
            (b"pickle", b"\x80\x02K\x01."),
            (b"tensors", b"\x80\x02K\x00."),
        ],
        signed=True,
    ),
    "only_storages": tar([(b"storages", storages_member())]),
    "only_storages_ustar": tar([(b"storages", storages_member())], ustar=True),
    "signed_polyglot_name": tar([(b"\x80\x02K\x01.", b""), (b"storages", storages_member())], signed=True),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_storages_pickles_are_walked_as_torch_reads_them(name: str) -> None:
    r = detect_bytes(LAYOUTS[name], "model.pt")
    assert r.format == "pytorch-legacy-tar"
    assert blocked_for_payload(r)
    assert worst(r) is Severity.CRITICAL


def test_pax_size_and_path_apply_to_the_next_member() -> None:
    body = b"x" * 700
    pax = b"17 path=storages\n" + b"12 size=700\n"
    data = header(b"PaxHeaders/s", len(pax))[:156] + b"x" + header(b"PaxHeaders/s", len(pax))[157:]
    # rebuild with a valid checksum for type 'x'
    h = bytearray(data)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    raw = bytes(h) + pax + b"\0" * (-len(pax) % 512) + header(b"short", 10) + body + b"\0" * (-700 % 512)
    raw += b"\0" * 1024
    members, problem = tar_members(BytesReader(raw, "t.tar"), 10)
    assert problem is None
    assert [(m.name, m.size) for m in members] == [("storages", 700)]
