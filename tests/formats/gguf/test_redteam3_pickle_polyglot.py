"""Red-team: a valid GGUF file that is also a pickle stream.

The magic's "G" is the pickle opcode BINFLOAT, which swallows the version and the tensor count's low byte;
a tensor count of 0x5600 makes the next byte UNICODE ('V', reads to a newline), a key/value count of 0x560A
ends that line and opens another, and the first key (0x560A bytes long) ends the third line with its own
newline and carries the payload. In a throwaway venv gguf-py 0.19 read it (22016 tensors) and ``pickle.load``
ran ``os.system``; saved as ``pytorch_model.bin`` (legacy ``torch.load``) the scan only warned about the name.
"""

from __future__ import annotations

import struct

import pytest

from tests.harness import fixture, inspect_bytes, rule_ids


def _s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def polyglot(payload: bytes = b"cos\nsystem\n(S'id'\ntR.") -> bytes:
    n_t, n_kv = 0x5600, 0x560A
    key0 = b"\n" + payload
    key0 += b"x" * (0x560A - len(key0))
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, n_t, n_kv))
    out += _s(key0) + struct.pack("<I", 0) + b"\x01"
    out += b"".join(_s(b"k%d" % i) + struct.pack("<I", 0) + b"\x01" for i in range(1, n_kv))
    out += b"".join(_s(b"t%d" % i) + struct.pack("<IQIQ", 1, 8, 0, i * 32) for i in range(n_t))
    out += b"\x00" * (-len(out) % 32 + n_t * 32)
    return bytes(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.gguf"])
def test_gguf_that_unpickles_to_os_system_blocks(name: str) -> None:
    fr = inspect_bytes(polyglot(), name)
    assert fr.format == "gguf"
    assert {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= rule_ids(fr)


def test_real_gguf_files_are_not_read_as_pickles() -> None:
    for name in ("benign_chatml.gguf", "benign_big_endian.gguf"):
        fr = inspect_bytes(fixture(f"gguf/{name}").read_bytes(), name)
        assert not rule_ids(fr) & {"PICKLE-DANGEROUS-GLOBAL", "FORMAT-PICKLE-POLYGLOT"}
