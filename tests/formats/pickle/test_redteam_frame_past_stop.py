"""Red team: a FRAME that runs past STOP moves where the loader's next read starts.

Loaders read a whole frame before running it (the C unpickler with read(n) on
real files and BytesIO, joblib's pure-Python unpickler always), so after STOP
the file position is the frame's end. A loader that reads more than one thing
from the stream (torch's five legacy pickles, the pickles of a legacy tar's
'storages' member, joblib's stream after an object array, any pickle.load
loop) skips the bytes between STOP and the frame end, while a linear walk reads
them next: a BINBYTES header there swallowed the payload the loader runs.
Nothing here is unpickled.
"""

from __future__ import annotations

import struct

from scanner.findings import Severity

from .assembler import CANARY, S0, U, scan, worst

MAGIC_LONG = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
EVIL = b"\x80\x02cos\nsystem\n" + U(CANARY) + b"\x85R."
EVIL_NEUTRAL = b"cos\nsystem\n(" + S0(CANARY) + b"tR0"  # stack-neutral: the call, then POP


def _rules(r) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule_id for f in r.findings}


def test_pickle_load_loop_skipping_the_frame_tail_blocks() -> None:
    n = 140_000
    body = b"K\x01." + b"B" + struct.pack("<I", n - 8 + len(EVIL))  # the walk: BINBYTES over the payload
    data = b"\x80\x04\x95" + struct.pack("<Q", n) + body + b"\x00" * (n - len(body)) + EVIL
    r = scan(data, "stream.pkl")
    assert "PICKLE-LENIENT-OPCODE" in _rules(r)
    assert worst(r) is not None and worst(r) >= Severity.HIGH


def _legacy_frame_skip(gap: int) -> bytes:
    """torch legacy: the magic pickle's frame ends inside what the walk takes for raw storage bytes."""
    torch_view = b"\x80\x02M\xe9\x03." + b"\x80\x02}." + EVIL
    numel = gap + len(torch_view)
    main = (
        b"\x80\x02(X\x07\x00\x00\x00storagectorch\nByteStorage\nX\x01\x00\x00\x00kX\x03\x00\x00\x00cpuJ"
        + struct.pack("<i", numel)
        + b"tQ."
    )
    body = (
        MAGIC_LONG
        + b"."
        + b"\x80\x02M\xe9\x03."
        + b"\x80\x02}."
        + main
        + b"\x80\x02]X\x01\x00\x00\x00ka."
        + struct.pack("<q", numel)
    )
    frame = len(body) + gap
    return b"\x80\x04\x95" + struct.pack("<Q", frame) + body + b"\x00" * gap + torch_view


def test_torch_legacy_magic_frame_past_stop_blocks() -> None:
    r = scan(_legacy_frame_skip(140_000), "model.pt")
    assert r.format == "pytorch-legacy"
    assert "PICKLE-LENIENT-OPCODE" in _rules(r)
    assert worst(r) is not None and worst(r) >= Severity.HIGH


def _joblib_object_array(inner_frame_extra: bytes, after: bytes) -> bytes:
    """[arange-free] joblib stream: a list holding one object array whose inlined pickle ends a FRAME early."""
    wrapper = (
        b"\x80\x04]\x94"
        + U("joblib.numpy_pickle")
        + U("NumpyArrayWrapper")
        + b"\x93)\x81}("
        + U("subclass")
        + U("numpy")
        + U("ndarray")
        + b"\x93"
        + U("shape")
        + b"K\x01\x85"
        + U("order")
        + U("C")
        + U("dtype")
        + U("numpy")
        + U("dtype")
        + b"\x93"
        + U("O8")
        + b"\x89\x88\x87R(K\x03"
        + U("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
        + U("allow_mmap")
        + b"\x89"
        + U("numpy_array_alignment_bytes")
        + b"K\x10ub"
    )
    inner_body = b"]" + U("x") + b"a."  # ['x']
    inner = b"\x80\x05\x95" + struct.pack("<Q", len(inner_body) + len(inner_frame_extra)) + inner_body
    return wrapper + inner + inner_frame_extra + after + b"a."


def test_joblib_object_array_pickle_frame_past_stop_blocks() -> None:
    hide = b"B" + struct.pack("<I", len(EVIL_NEUTRAL))  # inside the inner frame: joblib never reads it
    r = scan(_joblib_object_array(hide, EVIL_NEUTRAL), "model.joblib")
    assert "PICKLE-LENIENT-OPCODE" in _rules(r)
    assert worst(r) is not None and worst(r) >= Severity.HIGH


def test_frames_that_end_at_stop_are_not_flagged() -> None:
    import pickle

    for proto in (4, 5):
        data = pickle.dumps({"a": list(range(5000)), "b": "x" * 70_000}, protocol=proto)
        assert "PICKLE-LENIENT-OPCODE" not in _rules(scan(data))
