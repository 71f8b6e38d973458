"""``pyarrow.lib._restore_array`` is judged by the bounds pyarrow does not check (gadgets.yaml ``arrow_array``).

pyarrow rebuilds a pickled array with ``MakeArray`` and no validation: a length the buffers do not cover,
string/list offsets past their data or dictionary indices past the dictionary are out-of-bounds reads when the
array is used, and a null array of 2**40 elements is an allocation when converted. Real pickles (the
ecosystem corpus: ``fixtures/ecosystem/pyarrow/*.pkl`` and the pandas Arrow-backed string columns) are
allowed; the crafted variants below, built by hand in pyarrow's exact shape, block. Nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest

from scanner.findings import Severity
from scanner.limits import DEFAULT_LIMITS
from tests.harness import FIXTURES

from .assembler import U, rules, scan, worst

PA = FIXTURES / "ecosystem" / "pyarrow"
LIB = U("pyarrow.lib") + b"\x94"  # memo 0


def _alias(name: str) -> bytes:
    return b"h\x00" + U("type_for_alias") + b"\x93" + U(name) + b"\x85R"


def _int(n: int) -> bytes:
    return b"\x8a" + bytes([8]) + n.to_bytes(8, "little", signed=True)


def _buf(data: bytes | None) -> bytes:
    if data is None:
        return b"N"
    lit = b"C" + bytes([len(data)]) + data if len(data) < 256 else b"B" + struct.pack("<I", len(data)) + data
    return (
        b"h\x00" + U("py_buffer") + b"\x93" + U("builtins") + U("bytearray") + b"\x93" + lit + b"\x85R\x85R"
    )


def _data(
    type_: bytes,
    length: int | bytes,
    buffers: list[bytes | None],
    *,
    nulls: int = 0,
    offset: int = 0,
    children: list[bytes] = (),  # type: ignore[assignment]
    dictionary: bytes | None = None,
) -> bytes:
    n = length if isinstance(length, bytes) else _int(length)
    bufs = b"](" + b"".join(_buf(b) for b in buffers) + b"e"
    kids = b"](" + b"".join(children) + b"e" if children else b"]"
    return b"(" + type_ + n + _int(nulls) + _int(offset) + bufs + kids + (dictionary or b"N") + b"t"


def _restore(data: bytes) -> bytes:
    return b"\x80\x04" + LIB + b"h\x00" + U("_restore_array") + b"\x93" + data + b"\x85R."


def _i64(*vals: int) -> bytes:
    return struct.pack(f"<{len(vals)}q", *vals)


def _i32(*vals: int) -> bytes:
    return struct.pack(f"<{len(vals)}i", *vals)


def _blocked(data: bytes) -> set[str]:
    fr = scan(data, "arr.pkl")
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH, [(f.rule_id, f.message) for f in fr.findings]
    return rules(fr)


@pytest.mark.parametrize("name", ["array.pkl", "table.pkl", "layouts.pkl"])
def test_real_pyarrow_pickles_are_allowed(name: str) -> None:
    fr = scan((PA / name).read_bytes(), name)
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]


def test_handmade_int64_array_in_pyarrows_shape_is_allowed() -> None:
    fr = scan(_restore(_data(_alias("int64"), 2, [None, _i64(1, 2)])), "arr.pkl")
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]


def test_string_array_with_offsets_past_its_data_is_allowed_only_when_covered() -> None:
    ok = _data(_alias("string"), 2, [None, _i32(0, 1, 3), b"abc"])
    assert worst(scan(_restore(ok), "a.pkl")) is None


def test_huge_length_over_small_buffer_blocks() -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(_alias("int64"), 1 << 40, [None, _i64(1, 2)])))


def test_offset_past_the_buffer_blocks() -> None:
    data = _data(_alias("int64"), 2, [None, _i64(1, 2)], offset=1 << 20)
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(data))


def test_validity_bitmap_too_short_blocks() -> None:
    data = _data(_alias("int8"), 16, [b"\xff", bytes(16)], nulls=-1)
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(data))


def test_string_offsets_past_the_data_block() -> None:
    data = _data(_alias("string"), 2, [None, _i32(0, 1, 1 << 30), b"abc"])
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(data))


def test_decreasing_or_negative_offsets_block() -> None:
    assert _blocked(_restore(_data(_alias("string"), 2, [None, _i32(0, 3, 1), b"abc"])))
    assert _blocked(_restore(_data(_alias("large_binary"), 1, [None, _i64(-8, 1), b"abc"])))


def test_list_offsets_past_the_child_block() -> None:
    list_type = (
        b"h\x00" + U("list_") + b"\x93" + b"h\x00" + U("field") + b"\x93("
        + U("item") + _alias("int64") + b"\x88Nt" + b"R\x85R"
    )  # fmt: skip
    child = _data(_alias("int64"), 1, [None, _i64(7)])
    data = _data(list_type, 1, [None, _i32(0, 1000)], children=[child])
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(data))
    good = _data(list_type, 1, [None, _i32(0, 1)], children=[child])
    assert worst(scan(_restore(good), "l.pkl")) is None


def test_dictionary_index_past_the_dictionary_blocks() -> None:
    dtype = b"h\x00" + U("dictionary") + b"\x93" + _alias("int32") + _alias("string") + b"\x89\x87R"
    values = _data(_alias("string"), 1, [None, _i32(0, 1), b"x"])
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(
        _restore(_data(dtype, 2, [None, _i32(0, 5000)], dictionary=values))
    )
    # a null slot's index is never read: pyarrow leaves whatever was there
    masked = _data(dtype, 2, [b"\x01", _i32(0, 5000)], nulls=1, dictionary=values)
    assert worst(scan(_restore(masked), "d.pkl")) is None


def test_huge_null_array_is_an_allocation() -> None:
    assert "PICKLE-ALLOCATION-SIZE" in _blocked(
        _restore(_data(_alias("null"), 1 << 40, [None], nulls=1 << 40))
    )


def test_computed_length_is_unbounded() -> None:
    computed = U("builtins") + U("int") + b"\x93" + U("2") + b"\x85R"  # int('2'): allowlisted, a call result
    assert "PICKLE-ALLOCATION-SIZE" in _blocked(
        _restore(_data(_alias("int64"), computed, [None, _i64(1, 2)]))
    )


def test_buffer_not_made_by_py_buffer_blocks() -> None:
    data = b"(" + _alias("int64") + _int(1) + _int(0) + _int(0) + b"](N" + b"C\x08" + bytes(8) + b"e]Nt"
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(data))


def test_type_without_a_bounded_layout_blocks() -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(_alias("string_view"), 1, [None, bytes(16)])))


def test_wrong_buffer_count_blocks() -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(_alias("string"), 1, [None, _i32(0, 1)])))


def test_large_literal_offsets_are_read_back_from_the_file() -> None:
    """Offsets longer than max_string are kept as a Blob: their values are read from the file, not trusted."""
    limits = dataclasses.replace(DEFAULT_LIMITS, max_string=1024)
    n = 1000
    good = _i32(*range(n + 1))
    bad = _i32(*range(n), 1 << 30)
    ok = scan(_restore(_data(_alias("string"), n, [None, good, bytes(n)])), "a.pkl", limits=limits)
    assert worst(ok) is None, [(f.rule_id, f.message) for f in ok.findings]
    fr = scan(_restore(_data(_alias("string"), n, [None, bad, bytes(n)])), "a.pkl", limits=limits)
    assert "PICKLE-GADGET-ARGUMENT" in rules(fr)


def _buf_p2(data: bytes) -> bytes:
    """Protocols 0-2 (torch.save): py_buffer(bytearray(_codecs.encode(<str>, 'latin1')))."""
    text = U(data.decode("latin-1"))
    enc = U("_codecs") + U("encode") + b"\x93" + text + U("latin1") + b"\x86R"
    return (
        b"h\x00" + U("py_buffer") + b"\x93" + U("builtins") + U("bytearray") + b"\x93" + enc + b"\x85R\x85R"
    )


def test_protocol_2_buffers_are_read_through_codecs_encode() -> None:
    def pickled(offsets: bytes) -> bytes:
        bufs = b"](N" + _buf_p2(offsets) + _buf_p2(b"abc") + b"e"
        data = b"(" + _alias("large_string") + _int(2) + _int(0) + _int(0) + bufs + b"]Nt"
        return _restore(data)

    ok = scan(pickled(_i64(0, 1, 3)), "p2.pkl")
    assert worst(ok) is None or worst(ok) < Severity.MEDIUM, [(f.rule_id, f.message) for f in ok.findings]
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(pickled(_i64(0, 1, 1 << 40)))
