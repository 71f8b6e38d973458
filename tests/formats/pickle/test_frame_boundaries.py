"""A pickle opcode whose argument runs past the end of its FRAME, or a FRAME opened inside another.

pickle.py refuses both ("pickle exhausted before end of frame", "beginning of a new frame before end of
current frame"). _pickle.c reading a file drops the rest of the frame buffer and reads the argument from after
the frame, so it runs opcodes a linear walk took for string data (cpython issue 154848; the shape of
fickling's test_frame_boundary_divergence). Nothing here is unpickled.
"""

from __future__ import annotations

import pickle
import struct

import pytest

from scanner.findings import Severity
from tests.harness import benign_pickle, inspect_bytes, rule_ids, worst

HIDDEN = pickle.GLOBAL + b"os\nsystem\n" + pickle.UNICODE + b"echo canary\n" + pickle.TUPLE1 + pickle.REDUCE


def _framed(body: bytes, declared: int) -> bytes:
    return pickle.PROTO + b"\x05" + pickle.FRAME + struct.pack("<Q", declared) + body + pickle.STOP


def _divergent(pad: int) -> bytes:
    """A 2-byte frame holding BINBYTES and the first byte of its length: the walk swallows HIDDEN as bytes."""
    lead = pickle.NONE + pickle.UNICODE + b"a" * pad + b"\n" + pickle.POP
    return (
        pickle.PROTO
        + b"\x05"
        + lead
        + pickle.MARK
        + pickle.FRAME
        + struct.pack("<Q", 2)
        + pickle.BINBYTES
        + b"\x07\x01\x00\x00"
        + b"\x00\x00"
        + (HIDDEN + pickle.MARK).ljust(256 + 5, pickle.NONE)
        + pickle.POP_MARK
        + pickle.STOP
    )


@pytest.mark.parametrize("pad", [0, 8192 * 16 - 17], ids=["short", "past-read-buffer"])
def test_binbytes_straddling_a_frame_end_blocks(pad: int) -> None:
    fr = inspect_bytes(_divergent(pad), "model.pkl")
    assert "PICKLE-MALFORMED" in rule_ids(fr)
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        (pickle.BINBYTES + struct.pack("<I", 20) + b"A" * 20, 5),
        (b"\x8c\x14" + b"A" * 20, 3),  # SHORT_BINUNICODE
        (pickle.GLOBAL + b"macos\nsystem\n", 4),
        (pickle.UNICODE + b"hello world\n", 5),
        (pickle.BININT + struct.pack("<i", 7), 2),
        (pickle.BINFLOAT + struct.pack(">d", 1.0), 4),
        (pickle.LONG_BINGET + struct.pack("<I", 0), 3),
        (b"\x8e" + struct.pack("<Q", 3) + b"abc", 6),  # BINBYTES8
    ],
    ids=[
        "binbytes",
        "short-binunicode",
        "global",
        "unicode",
        "binint",
        "binfloat",
        "long-binget",
        "binbytes8",
    ],
)
def test_opcode_straddling_the_only_frame_blocks(body: bytes, declared: int) -> None:
    fr = inspect_bytes(_framed(body, declared), "m.pkl")
    assert "PICKLE-MALFORMED" in rule_ids(fr), [(f.rule_id, f.message) for f in fr.findings]


def test_straddle_in_a_middle_frame_is_found() -> None:
    # frame 1 ends cleanly, frame 2 ends inside a BINUNICODE, frame 3 follows at the walk's next opcode
    f1 = pickle.FRAME + struct.pack("<Q", 2) + pickle.EMPTY_LIST + pickle.MARK
    s = b"X" * 10
    f2_body = pickle.BINUNICODE + struct.pack("<I", len(s)) + s
    f2 = pickle.FRAME + struct.pack("<Q", 4) + f2_body
    f3 = pickle.FRAME + struct.pack("<Q", 2) + pickle.APPENDS + pickle.STOP
    fr = inspect_bytes(pickle.PROTO + b"\x04" + f1 + f2 + f3, "m.pkl")
    assert "PICKLE-MALFORMED" in rule_ids(fr)


def test_frame_opened_inside_a_frame_blocks() -> None:
    data = (
        pickle.PROTO
        + b"\x05"
        + pickle.FRAME
        + struct.pack("<Q", 13)
        + pickle.NONE
        + pickle.POP
        + pickle.FRAME
        + struct.pack("<Q", 2)
        + pickle.NONE
        + pickle.STOP
    )
    assert len(data) == 2 + 9 + 13
    fr = inspect_bytes(data, "m.pkl")
    assert "PICKLE-MALFORMED" in rule_ids(fr)
    assert "inside the previous frame" in " ".join(f.message for f in fr.findings)


def test_large_unframed_bytes_between_frames_are_fine() -> None:
    # what pickle.dumps writes for a big bytes value: the frame ends, the BINBYTES8 goes unframed
    big = bytes(range(256)) * 400
    data = pickle.dumps({"a": [1, 2, 3], "w": big, "b": "x" * 10}, protocol=5)
    fr = inspect_bytes(data, "m.pkl")
    assert "PICKLE-MALFORMED" not in rule_ids(fr), [(f.rule_id, f.message) for f in fr.findings]
    assert worst(fr) is None or worst(fr) <= Severity.INFO


@pytest.mark.parametrize("protocol", [4, 5])
def test_many_frames_written_by_pickle_are_fine(protocol: int) -> None:
    data = pickle.dumps([{"k": i, "s": "v" * (i % 50)} for i in range(20_000)], protocol=protocol)
    assert data.count(pickle.FRAME) > 3
    fr = inspect_bytes(data, "m.pkl")
    assert "PICKLE-MALFORMED" not in rule_ids(fr)


def test_benign_pickle_is_untouched() -> None:
    fr = inspect_bytes(benign_pickle(), "b.pkl")
    assert worst(fr) is None or worst(fr) <= Severity.INFO


@pytest.mark.slow
@pytest.mark.parametrize("straddle", [False, True])
def test_frame_larger_than_the_skip_chunk(straddle: bool) -> None:
    # a 2.5 MB frame of small opcodes (the skipper reads in 1 MiB chunks) ending with a BINUNICODE
    body = (pickle.NONE + pickle.POP) * 1_250_000 + pickle.EMPTY_LIST
    tail = pickle.BINUNICODE + struct.pack("<I", 6) + b"abcdef" + pickle.APPEND
    declared = len(body) + (4 if straddle else len(tail))
    data = pickle.PROTO + b"\x04" + pickle.FRAME + struct.pack("<Q", declared) + body + tail
    data += pickle.STOP  # unframed, so the aligned frame is skipped through too
    fr = inspect_bytes(data, "m.pkl")
    assert ("PICKLE-MALFORMED" in rule_ids(fr)) is straddle, [(f.rule_id, f.message) for f in fr.findings]
