"""Red-team: a Core ML blob-storage weight file that is also a pickle stream.

The storage header starts with the blob count, so its first byte is any value; read as a pickle opcode it can
swallow the fixed header: UNICODE ('V', 86 blobs) reads up to a newline placed in the unchecked padding of the
first blob header, and the opcodes after it run. In a throwaway venv ``pickle.load`` of such an 11 KB file ran
``os.system`` (as did SHORT_BINBYTES 'C' and BINBYTES 'B' layouts); the scan allowed it as Core ML weights, so
named ``pytorch_model.bin`` it passed straight to a legacy ``torch.load``.
"""

from __future__ import annotations

import struct

from tests.harness import fixture, inspect_bytes, rule_ids


def _blob_storage(count: int, padding0: bytes = b"", data: bytes = b"\x01" * 16) -> bytes:
    out = bytearray(struct.pack("<II", count, 2) + b"\x00" * 56)
    for i in range(count):
        off = len(out) + 64
        pad = bytearray(40)
        if i == 0:
            pad[: len(padding0)] = padding0
        out += struct.pack("<IIQQ", 0xDEADBEEF, 1, len(data), off) + bytes(pad) + data
        out += b"\x00" * (-len(out) % 64)
    return bytes(out)


def test_weight_file_that_unpickles_to_os_system_blocks() -> None:
    data = _blob_storage(ord("V"), b"\n0cos\nsystem\n(S'id'\ntR.")
    fr = inspect_bytes(data, "pytorch_model.bin")
    assert fr.format == "coreml-weights"
    assert {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= rule_ids(fr)


def test_plain_weight_files_are_not_read_as_pickles() -> None:
    for count in (1, 2, ord("V"), ord("B"), ord("C"), 0x80):
        fr = inspect_bytes(_blob_storage(count), "weight.bin")
        assert fr.format == "coreml-weights" and not fr.findings, (count, rule_ids(fr))
    real = fixture("coreml/benign.mlpackage/Data/com.apple.CoreML/weights/weight.bin").read_bytes()
    assert not inspect_bytes(real, "weight.bin").findings
