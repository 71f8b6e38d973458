"""A compressed stream whose raw bytes are also a tar archive.

torch.load opens a file that does not start with a zip header through its legacy branch: ``tarfile`` mode
``'r:'``, no decompression. A gzip (or zlib) stream made of one stored deflate block carries arbitrary
literal bytes from offset 15 (10 for zlib's 2-byte header + 5), so the first 512 raw bytes can be a valid
tar header (name field: the gzip header and a benign pickle; checksum fixed up) followed by a ``storages``
member holding the payload. The scanner followed the decompressed view only (a benign pickle and trailing
bytes: a low finding) while torch 2.13 ``torch.load(weights_only=False)`` ran the payload.
"""

from __future__ import annotations

import pickle
import struct
import tarfile
import zlib

import pytest

from scanner.findings import Decision
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, scan_on_disk, verdict

BENIGN = pickle.dumps({"a": 1}, protocol=2)


def polyglot(kind: str = "gzip", payload: bytes = EVIL_PICKLE) -> bytes:
    header0 = bytearray(tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT))
    evil = tarfile.TarInfo("storages")
    evil.size = len(payload)
    rest = evil.tobuf(format=tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512) + b"\0" * 1024
    wrapper = b"\x1f\x8b\x08\x00\0\0\0\0\x00\xff" if kind == "gzip" else b"\x78\x01"
    literal_at = len(wrapper) + 5
    length = 512 + len(rest) - literal_at
    name = wrapper + b"\x01" + struct.pack("<HH", length, length ^ 0xFFFF) + BENIGN
    header0[: len(name)] = name
    header0[148:156] = b" " * 8
    header0[148:156] = b"%06o\0 " % sum(header0)
    raw = bytes(header0) + rest
    literal = raw[literal_at:]
    if kind == "gzip":
        return raw + struct.pack("<II", zlib.crc32(literal), len(literal))
    return raw + struct.pack(">I", zlib.adler32(literal))


@pytest.mark.parametrize("kind", ["gzip", "zlib"])
def test_the_views_really_differ(kind):
    import io

    blob = polyglot(kind)
    inflated = zlib.decompress(blob, 31 if kind == "gzip" else 15)
    assert inflated.startswith(BENIGN) and EVIL_PICKLE in inflated  # the payload is buried after a STOP
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as t:
        assert t.getnames()[-1] == "storages"


def test_raw_tar_members_of_a_gzip_stream_are_inspected(tmp_path):
    fr = scan_on_disk(tmp_path, polyglot("gzip"), name="model.pt")
    assert any("also a tar archive" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))
    assert blocked_for_payload(fr)
    assert verdict(fr) is Decision.BLOCK


def test_zlib_variant_is_blocked(tmp_path):
    # the legacy torch tar sniffer runs before the zlib one and claims this file (its raw tar view)
    fr = scan_on_disk(tmp_path, polyglot("zlib"), name="model.pt")
    assert blocked_for_payload(fr)
