"""Stream structure, limits, joblib framing and the public analyze_pickle_stream API."""

from __future__ import annotations

import pickle
import struct
import time

from scanner.findings import Coverage, FileResult, Severity
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.formats.pickle import analyze_pickle_stream
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from scanner.rules import get_rule_db

from .assembler import (
    BUILD,
    DATA,
    EMPTY_DICT,
    EMPTY_TUPLE,
    INT,
    MARK,
    NEWOBJ,
    NONE,
    PROTO,
    SETITEM,
    SG,
    STOP,
    TUPLE,
    TUPLE3,
    B,
    Evil,
    U,
    finding,
    rules,
    scan,
)


def _ctx(data: bytes, limits: Limits | None = None) -> tuple[InspectContext, BytesReader]:
    limits = limits or Limits()
    state = ScanState(
        get_rule_db(),
        limits,
        FileResult(path="s", size=len(data), format="pickle"),
        limits.max_total_uncompressed,
        time.monotonic() + 60,
    )
    return InspectContext(state, "s", dispatch=inspect_with_detection), BytesReader(data, "s")


def test_truncated_after_payload_keeps_payload() -> None:
    data = pickle.dumps(Evil(), protocol=2)[:-1]  # no STOP
    r = scan(data)
    assert {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-MALFORMED"} <= rules(r)
    assert r.coverage is Coverage.PARTIAL


def test_invalid_opcode_tail_nullifai_style() -> None:
    data = pickle.dumps(Evil(), protocol=4)[:-1] + b"\xff" * 32
    r = scan(data)
    assert finding(r, "PICKLE-MALFORMED").severity is Severity.HIGH
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r)


def test_garbage_after_stop_is_low() -> None:
    r = scan(pickle.dumps({"a": 1}, protocol=4) + b"\x00\x01garbage\xfe")
    assert rules(r) == {"PICKLE-TRAILING-DATA"}
    assert r.max_severity is Severity.LOW
    assert r.coverage is Coverage.FULL


def test_payload_in_second_pickle() -> None:
    r = scan(pickle.dumps([1, 2], protocol=2) + pickle.dumps(Evil(), protocol=2))
    assert {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-MULTIPLE-STREAMS"} <= rules(r)


def test_stack_underflow_and_mark_misuse() -> None:
    assert "PICKLE-MALFORMED" in rules(scan(PROTO(2) + b"R" + STOP))
    assert "PICKLE-MALFORMED" in rules(scan(PROTO(2) + NONE + b"t" + STOP))  # TUPLE without MARK
    # a pop may not cross the innermost MARK (C unpickler fence)
    assert "PICKLE-MALFORMED" in rules(scan(PROTO(2) + NONE + MARK + b"\x85" + STOP))


def test_huge_declared_length_is_not_allocated() -> None:
    for op in (b"\x8d", b"\x8e", b"\x96"):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
        r = scan(PROTO(4) + op + struct.pack("<Q", 1 << 60) + b"x" * 10)
        assert "truncated" in finding(r, "PICKLE-MALFORMED").message
    r = scan(PROTO(4) + b"\x95" + struct.pack("<Q", 1 << 50) + NONE + STOP)  # FRAME
    assert "PICKLE-MALFORMED" in rules(r)
    r = scan(PROTO(2) + b"\x8b" + struct.pack("<i", -5) + STOP)  # LONG4 negative length
    assert "PICKLE-MALFORMED" in rules(r)


def test_opcode_limit() -> None:
    data = PROTO(2) + MARK + INT(1) * 500 + TUPLE + STOP
    r = scan(data, limits=Limits(max_pickle_opcodes=100))
    assert finding(r, "LIMIT-EXCEEDED").evidence["limit"] == "max_pickle_opcodes"
    assert r.coverage is Coverage.PARTIAL


def test_stack_and_memo_limits() -> None:
    r = scan(PROTO(2) + MARK * 5000 + STOP, limits=Limits(max_pickle_stack=1000))
    assert finding(r, "LIMIT-EXCEEDED").evidence["limit"] == "max_pickle_stack"
    memo = PROTO(4) + NONE + b"".join(b"r" + struct.pack("<I", i) for i in range(300)) + STOP
    r = scan(memo, limits=Limits(max_pickle_memo=100))
    assert finding(r, "LIMIT-EXCEEDED").evidence["limit"] == "max_pickle_memo"


def test_big_blob_is_skipped_not_read() -> None:
    blob = b"\x00" * (4 << 20)
    data = pickle.dumps({"blob": blob}, protocol=4)
    r = scan(data, limits=Limits(max_string=1 << 16))
    assert r.findings == []
    assert r.bytes_read < 1 << 20


def test_nesting_depth_cap() -> None:
    inner = pickle.dumps(Evil(), protocol=2)
    for _ in range(6):
        inner = PROTO(4) + SG("pickle", "loads") + B(inner) + b"\x85R" + STOP
    r = scan(inner, limits=Limits(max_pickle_nesting=3))
    assert finding(r, "LIMIT-EXCEEDED").evidence["limit"] == "max_pickle_nesting"


# -- joblib framing --


def _wrapper(dtype_code: str, state: bytes, shape: bytes, align: bool = True) -> bytes:
    dtype = SG("numpy", "dtype") + U(dtype_code) + b"\x89\x88" + TUPLE3 + b"R" + state + BUILD
    body = (
        EMPTY_DICT
        + U("subclass")
        + SG("numpy", "ndarray")
        + SETITEM
        + U("shape")
        + shape
        + SETITEM
        + U("order")
        + U("C")
        + SETITEM
        + U("dtype")
        + dtype
        + SETITEM
        + U("allow_mmap")
        + b"\x89"
        + SETITEM
    )
    if align:
        body += U("numpy_array_alignment_bytes") + INT(16) + SETITEM
    return SG("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + body + BUILD


_F8_STATE = (
    MARK + INT(3) + U("<") + NONE + NONE + NONE + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + INT(0) + TUPLE
)
_O_STATE = (
    MARK + INT(3) + U("|") + NONE + NONE + NONE + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + INT(63) + TUPLE
)


def test_joblib_raw_array_bytes_are_skipped() -> None:
    raw = b"\x63os\nsystem\n" + b"\x00" * 13  # 24 bytes = 3 float64; looks like opcodes, must be skipped
    data = PROTO(4) + _wrapper("f8", _F8_STATE, INT(3) + b"\x85") + b"\x03\xff\xff\xff" + raw + STOP
    r = scan(data, name="m.joblib")
    assert r.findings == [], [(f.rule_id, f.message) for f in r.findings]


def test_joblib_wrapper_with_unknown_dtype_fails_closed() -> None:
    data = PROTO(4) + _wrapper("f8", _F8_STATE, SG("mypkg", "shape") + b"\x85") + b"\x00" * 40 + STOP
    r = scan(data)
    assert "PICKLE-MALFORMED" in rules(r) and r.coverage is Coverage.PARTIAL


def test_joblib_raw_data_past_end_is_truncation() -> None:
    data = PROTO(4) + _wrapper("f8", _F8_STATE, INT(200) + b"\x85") + b"\x01\xff" + b"\x00" * 16 + STOP
    assert "truncated" in finding(scan(data), "PICKLE-MALFORMED").message


def test_joblib_object_array_nested_pickle_is_walked() -> None:
    inner = pickle.dumps([Evil()], protocol=2)
    data = PROTO(4) + _wrapper("O8", _O_STATE, INT(1) + b"\x85", align=False) + inner + STOP
    r = scan(data)
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r)
    assert "PICKLE-MALFORMED" not in rules(r)


def test_joblib_data_inside_frame_is_a_differential() -> None:
    body = _wrapper("f8", _F8_STATE, INT(1) + b"\x85") + b"\x01\xff" + b"\x00" * 8 + STOP
    data = PROTO(4) + b"\x95" + struct.pack("<Q", len(body)) + body
    assert "FRAME" in finding(scan(data), "PICKLE-MALFORMED").message


def test_real_joblib_files_are_walked_to_the_end() -> None:
    for p in sorted(DATA.glob("*.joblib")):
        ctx, reader = _ctx(p.read_bytes())
        s = analyze_pickle_stream(reader, ctx)
        assert s.complete and s.pickle_count == 1, p.name
        assert s.end_offset == reader.size, p.name
        assert s.joblib_arrays >= 1, p.name


# -- public API --


def test_api_legacy_torch_stack_and_persistent_ids() -> None:
    data = (DATA / "torch_legacy_state_dict.pt").read_bytes()
    ctx, reader = _ctx(data)
    s = analyze_pickle_stream(reader, ctx, max_pickles=5)
    assert s.pickle_count == 5 and s.complete
    assert 0 < s.end_offset < len(data)  # raw storages follow
    assert any(p[:2] == ("storage", "torch:FloatStorage") for p in s.persistent_ids if isinstance(p, tuple))
    assert "torch._utils:_rebuild_tensor_v2" in s.globals
    assert [f for f in ctx.state.result.findings if f.severity > Severity.LOW] == []


def test_api_window_and_summary_for_zip_member_pickle() -> None:
    pkl = (DATA / "torch_state_dict.data.pkl").read_bytes()
    data = b"JUNK" + pkl + b"MORE"
    ctx, reader = _ctx(data)
    s = analyze_pickle_stream(reader, ctx, start=4, end=4 + len(pkl))
    assert s.complete and s.pickle_count == 1 and s.end_offset == 4 + len(pkl)
    assert len(s.persistent_ids) == 7
    assert ctx.state.result.findings == []


def test_joblib_raw_region_holding_opcodes_is_reported() -> None:
    # without an alignment byte the data starts right after BUILD; plain pickle.load would run it
    payload = b"cos\nsystem\n(S'x'\ntR."
    payload += b"\x00" * (-len(payload) % 8)
    n = len(payload) // 8
    data = PROTO(4) + _wrapper("f8", _F8_STATE, INT(n) + b"\x85", align=False) + payload + STOP
    r = scan(data)
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r)


def test_fickling_evidence_never_writes_to_stdout(capfd) -> None:  # type: ignore[no-untyped-def]
    # fickling prints warnings for non-literal STACK_GLOBAL; stdout carries JSON/SARIF reports
    mod = SG("_codecs", "encode") + U("os") + U("latin1") + b"\x86R"
    scan(PROTO(4) + mod + U("system") + b"\x93" + U("x") + b"\x85R" + STOP)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_fickling_stays_quiet_on_malformed_pickles(capfd) -> None:  # type: ignore[no-untyped-def]
    # broken tails are handed to fickling with a STOP appended; whatever it makes of them, it must not print
    evil = pickle.dumps(Evil(), protocol=4)[:-1]
    mod = SG("_codecs", "encode") + U("os") + U("latin1") + b"\x86R"
    for data in (
        evil + b"\xff" * 16,  # invalid opcode after the payload
        evil[:-3],  # truncated inside the call
        PROTO(4) + mod + U("system") + b"\x93" + U("x") + b"\x85R" + b"t",  # TUPLE without MARK at the end
        PROTO(2) + b"cos\nsystem\n" + b"0" * 3 + b"R.",  # stack underflow
    ):
        r = scan(data)
        assert "PICKLE-MALFORMED" in rules(r)
        if data.startswith(evil):
            # fickling really ran on the broken stream
            assert "decompiled" in finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_json_report_on_stdout_stays_valid_for_malformed_pickle(tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from scanner.cli import app

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(Evil(), protocol=4)[:-1] + b"\xff" * 8)
    result = CliRunner().invoke(app, ["scan", str(bad), "--no-hash", "--format", "json"])
    report = json.loads(result.stdout)  # fickling output mixed in would break this
    assert report["verdict"]["decision"] == "block"
    out, err = capfd.readouterr()
    assert out == "" and err == ""
