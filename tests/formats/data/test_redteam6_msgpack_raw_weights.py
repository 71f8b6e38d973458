"""Raw tensor bytes that start like msgpack are not msgpack model files; real msgpack model files still are.

Red-team round 6: ONNX external data (``onnx.save_model(..., save_as_external_data=True)``), ``.bin``
shards and ``tofile`` output whose first byte is a msgpack map/array type byte were claimed by the msgpack
sniffer after a clean walk of a prefix (random bytes decode as msgpack for a while) and blocked as
MSGPACK-INVALID / MSGPACK-TRAILING-DATA. The sniffer now claims what a Flax ``msgpack_serialize`` file is:
the whole file one object (array, or map keyed by names), or a prefix that is a map keyed by names.
"""

from __future__ import annotations

import random
import struct

import pytest

from scanner.findings import Coverage, Severity
from scanner.formats.msgpack_file import SNIFF_ITEMS
from tests.harness import fixture, inspect_bytes, rule_ids

FIRST = sorted({*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF})  # the type bytes the msgpack sniffer looks at


def _encode(kind: str, vals: list[float]) -> bytes:
    if kind in ("f32n", "f32u"):
        return struct.pack(f"<{len(vals)}f", *vals)
    if kind == "f16n":
        return struct.pack(f"<{len(vals)}e", *vals)
    raw = struct.pack(f"<{len(vals)}f", *vals)  # bfloat16: the high half of each float32
    return b"".join(raw[i + 2 : i + 4] for i in range(0, len(raw), 4))


def _raw_weight_blobs(n: int, seed: int) -> list[tuple[str, bytes]]:
    """Little-endian tensors (normal and uniform float32, float16, bfloat16, int8) whose first byte is one
    the msgpack sniffer looks at: the first value is drawn until it gives such a byte."""
    rng = random.Random(seed)
    kinds = ("f32n", "f32u", "f16n", "bf16n", "bf16u", "i8")
    out: list[tuple[str, bytes]] = []
    while len(out) < n:
        kind = kinds[len(out) % len(kinds)]
        count = rng.choice((64, 256, 1024, 4096))
        if kind == "i8":
            out.append((kind, bytes([rng.choice(FIRST)]) + rng.randbytes(count - 1)))
            continue

        def draw(normal: bool = kind.endswith("n")) -> float:
            return rng.gauss(0.0, 1.0) if normal else rng.uniform(-1.0, 1.0)

        first = draw()
        while _encode(kind, [first])[0] not in FIRST:
            first = draw()
        out.append((kind, _encode(kind, [first] + [draw() for _ in range(count - 1)])))
    return out


@pytest.mark.slow
def test_raw_weight_blobs_are_not_claimed_as_msgpack() -> None:
    """2000 candidates: the old sniffer claimed 27 of them (about 1.4%), each then blocked as malformed msgpack."""
    claimed = []
    for i, (kind, data) in enumerate(_raw_weight_blobs(2000, seed=2)):
        fr = inspect_bytes(data, "model.onnx.data")
        if fr.format == "msgpack":
            claimed.append((i, kind, data[:4].hex(), sorted(rule_ids(fr))))
    assert not claimed, claimed


def test_reported_float32_blob_is_not_msgpack() -> None:
    """The shape from the report: 256 KiB of float32 weights starting 9b 15 e8 3e. 0x9b opens an 11-item array,
    a bin16/str16 item jumps past the 64 KiB the sniff walks, and that clean prefix was taken for msgpack."""
    rng = random.Random(62)
    vals = [rng.gauss(0.0, 0.5) for _ in range(65536)]
    data = bytes.fromhex("9b15e83e") + struct.pack("<65536f", *vals)
    fr = inspect_bytes(data, "model.onnx.data")
    assert fr.format == "unknown", rule_ids(fr)


def test_whole_file_array_with_non_utf8_str_is_not_claimed() -> None:
    """A 64-byte bfloat16 blob that happens to parse as one array holding a 31-byte str of non-UTF-8 bytes:
    Flax's msgpack_restore (raw=False) would refuse it, it is not a msgpack model file."""
    data = (
        b"\x92\xbf"
        + bytes([0xB2, 0x3F, 0x63, 0xBF, 0xE0, 0x3F] * 5)
        + b"\xbe"
        + b"\xdc\x00\x1e"
        + b"\x01" * 30
    )
    assert len(data) == 66
    assert inspect_bytes(data, "w.bin").format == "unknown"


def test_bfloat16_head_of_fixstr_keys_is_not_claimed() -> None:
    """bfloat16 weights near +-1 have 0xbe/0xbf high bytes, fixstr type bytes: a map of such "keys" that then
    breaks was claimed as msgpack gone wrong; its keys are not names."""
    rng = random.Random(9)

    def bf16(n: int) -> bytes:
        return b"".join(bytes([rng.randrange(256), rng.choice((0x3E, 0x3F, 0xBE, 0xBF))]) for _ in range(n))

    pairs = b"".join(b"\xbe" + bf16(15) + b"\x01" for _ in range(3))  # fixstr of 30 bytes, then an int
    data = b"\x87" + pairs + b"\xbe" + bf16(15) + b"\xdf\x3f\xbe\x3f\x07" + bf16(2000)  # then a map32 of 1e9
    assert inspect_bytes(data, "w.bin").format == "unknown"


# ---------------------------------------------------------------------- real msgpack model files are still claimed
def _flax_tree(n: int) -> bytes:
    """{"params": {"layer_i": {"kernel": ext1 float32[2]}, ...}} as flax.serialization.msgpack_serialize writes it."""
    arr = b"\x93\x91\x02\xa7float32\xc4\x08" + struct.pack("<2f", 0.5, -0.25)
    leaf = b"\x81\xa6kernel\xc7" + bytes([len(arr), 1]) + arr
    items = b"".join(_str(f"layer_{i}") + leaf for i in range(n))
    return b"\x81\xa6params" + b"\xde" + struct.pack(">H", n) + items


def _str(s: str) -> bytes:
    b = s.encode()
    return bytes([0xA0 | len(b)]) + b


def test_flax_tree_past_the_sniff_budget_is_claimed_and_clean() -> None:
    data = _flax_tree(SNIFF_ITEMS)  # more items than the sniff walks
    fr = inspect_bytes(data, "flax_model.msgpack")
    assert fr.format == "msgpack" and not fr.findings and fr.coverage is Coverage.FULL


@pytest.mark.parametrize("cut", [40, 200, 901, 956])
def test_truncated_flax_fixture_is_claimed_and_blocked(cut: int) -> None:
    data = fixture("msgpack/flax_model.msgpack").read_bytes()[:cut]
    fr = inspect_bytes(data, "flax_model.msgpack")
    assert fr.format == "msgpack" and "MSGPACK-INVALID" in rule_ids(fr), (cut, rule_ids(fr))
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH


def test_flax_tree_with_trailing_raw_bytes_is_claimed() -> None:
    data = _flax_tree(3) + bytes(range(200))
    fr = inspect_bytes(data, "flax_model.msgpack")
    assert fr.format == "msgpack" and "MSGPACK-TRAILING-DATA" in rule_ids(fr)


def test_msgpack_numpy_bin_keys_and_int_keyed_tables_are_claimed() -> None:
    """spaCy/thinc (srsly, msgpack-numpy) write arrays as maps with bin keys; vocab tables key by int."""
    nd = b"\x84\xc4\x02nd\xc3\xc4\x04type\xa3<f4\xc4\x05shape\x91\x02\xc4\x04data\xc4\x08" + b"\x00" * 8
    table = b"\x82\xcf" + b"\x11" * 8 + _str("cat") + b"\xcf" + b"\x22" * 8 + _str("dog")
    doc = (
        b"\x83" + _str("params") + nd + _str("table") + table + _str("big") + b"\xdc\x13\x88" + b"\x01" * 5000
    )
    assert inspect_bytes(doc, "model").format == "msgpack"
    fr = inspect_bytes(doc[:-100], "model")  # cut: claimed, and malformed
    assert fr.format == "msgpack" and "MSGPACK-INVALID" in rule_ids(fr)
