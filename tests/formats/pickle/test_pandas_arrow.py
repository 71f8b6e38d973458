"""pandas objects backed by Arrow (``ArrowExtensionArray``, ``ArrowDtype``) and the pyarrow types they pickle.

pandas writes an Arrow-backed column as ``ArrowExtensionArray.__new__`` + BUILD ``{_pa_array:
_restore_array(...), _dtype: ArrowDtype}`` and the dtype as ``ArrowDtype.__new__`` + BUILD ``{_storage,
pyarrow_dtype}``; pyarrow writes each type through its constructor (``timestamp(unit, tz)``, ``struct([field,
...])``, ``field(name, type, nullable, None)``, ``decimal128(p, s)``, ``list_``, ``large_list``, ``map_``,
``binary(width)``, ``dictionary``). The real files (fixtures/ecosystem/pandas_arrow and
legacy/pandas_arrow-2.2.3, pandas 3.0.6 and 2.2.3) are allowed; the same globals in shapes pandas and pyarrow
never write block: the classes called (``newobj-only``), the type constructors given a computed or unexpected
argument (``literal-args``), and array data whose types or child lengths do not cover what the parent declares
(``arrow_array``). Nothing is unpickled.
"""

from __future__ import annotations

import struct as st

import pytest

from scanner.findings import Severity
from tests.harness import FIXTURES

from .assembler import U, rules, scan, worst

REAL = sorted(
    [
        *(FIXTURES / "ecosystem" / "pandas_arrow").iterdir(),
        *(FIXTURES / "ecosystem" / "legacy").glob("pandas_arrow-*/*"),
    ]
)

# -- a tiny assembler for pyarrow's and pandas' shapes (protocol 4; memo 0 is 'pyarrow.lib') --
HEAD = b"\x80\x04" + U("pyarrow.lib") + b"\x940"


def _pa(name: str) -> bytes:
    return b"h\x00" + U(name) + b"\x93"


def _g(module: str, name: str) -> bytes:
    return U(module) + U(name) + b"\x93"


def _call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


def _int(n: int) -> bytes:
    return b"\x8a\x08" + n.to_bytes(8, "little", signed=True)


def _alias(name: str) -> bytes:
    return _call(_pa("type_for_alias"), U(name))


def _field(name: str, type_: bytes, metadata: bytes = b"N") -> bytes:
    return _call(_pa("field"), U(name), type_, b"\x88", metadata)


def _struct(*fields: bytes) -> bytes:
    return _call(_pa("struct"), b"](" + b"".join(fields) + b"e")


def _ts(unit: bytes = U("ns"), tz: bytes = b"N") -> bytes:
    return _call(_pa("timestamp"), unit, tz)


def _buf(data: bytes | None) -> bytes:
    if data is None:
        return b"N"
    return _call(_pa("py_buffer"), b"\x96" + len(data).to_bytes(8, "little") + data)


def _data(
    type_: bytes,
    length: int,
    buffers: list[bytes | None],
    children: list[bytes] = (),
    dictionary: bytes = b"N",
) -> bytes:  # type: ignore[assignment]
    bufs = b"](" + b"".join(_buf(b) for b in buffers) + b"e"
    kids = b"](" + b"".join(children) + b"e"
    return b"(" + type_ + _int(length) + _int(0) + _int(0) + bufs + kids + dictionary + b"t"


def _restore(data: bytes) -> bytes:
    return _call(_pa("_restore_array"), data)


def _i64(*vals: int) -> bytes:
    return st.pack(f"<{len(vals)}q", *vals)


def _i32(*vals: int) -> bytes:
    return st.pack(f"<{len(vals)}i", *vals)


def _dtype(type_: bytes) -> bytes:
    """ArrowDtype as pandas writes it: cls.__new__(cls) + BUILD {_storage, pyarrow_dtype}."""
    state = U("_storage") + U("pyarrow") + U("pyarrow_dtype") + type_
    return _g("pandas", "ArrowDtype") + b")\x81}(" + state + b"ub"


def _ext(array: bytes, type_: bytes, extra: bytes = b"") -> bytes:
    """ArrowExtensionArray as pandas writes it: cls.__new__(cls) + BUILD {_pa_array, _dtype}."""
    state = U("_pa_array") + array + U("_dtype") + _dtype(type_) + extra
    return _g("pandas.arrays", "ArrowExtensionArray") + b")\x81}(" + state + b"ub"


def _pickle(body: bytes) -> bytes:
    return HEAD + body + b"."


def _allowed(body: bytes) -> None:
    fr = scan(_pickle(body), "arrow.pkl")
    assert worst(fr) is None or worst(fr) <= Severity.LOW, [(f.rule_id, f.message) for f in fr.findings]


def _blocked(body: bytes) -> set[str]:
    fr = scan(_pickle(body), "arrow.pkl")
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH, [(f.rule_id, f.message) for f in fr.findings]
    return rules(fr)


TS_ARRAY = _restore(_data(_ts(), 2, [None, _i64(1, 2)]))
STRUCT_T = _struct(_field("a", _alias("int64")), _field("b", _ts(U("us"), U("UTC"))))
STRUCT_ARRAY = _restore(
    _data(
        STRUCT_T,
        2,
        [None],
        children=[
            _data(_alias("int64"), 2, [None, _i64(1, 2)]),
            _data(_ts(U("us"), U("UTC")), 2, [None, _i64(3, 4)]),
        ],
    )
)


@pytest.mark.parametrize("path", REAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_arrow_backed_pandas_pickles_are_allowed(path) -> None:  # type: ignore[no-untyped-def]
    fr = scan(path.read_bytes(), path.name)
    assert worst(fr) is None or worst(fr) <= Severity.LOW, [(f.rule_id, f.message) for f in fr.findings]


def test_real_files_span_every_arrow_type_constructor() -> None:
    text = b"".join(p.read_bytes() for p in REAL)
    for name in (b"timestamp", b"struct", b"field", b"decimal128", b"decimal256", b"large_list", b"map_", b"binary",
                 b"dictionary", b"list_", b"ArrowExtensionArray", b"ArrowDtype", b"ArrowStringArray"):  # fmt: skip
        assert name in text, name


def test_handmade_shapes_in_pandas_exact_form_are_allowed() -> None:
    _allowed(_ext(TS_ARRAY, _ts()))
    _allowed(_ext(STRUCT_ARRAY, STRUCT_T))
    _allowed(_dtype(_ts(U("ns"), U("Europe/Paris"))))
    _allowed(_dtype(_ts(U("ms"), U("+01:00"))))
    _allowed(_dtype(_call(_pa("decimal128"), b"K\x0a", b"K\x02")))
    _allowed(_dtype(_call(_pa("map_"), _field("key", _alias("string")), _field("value", _alias("int64")))))


# -- pandas' classes called instead of rebuilt (newobj-only) --
CALLED = {
    "arrowdtype_reduce_computed": _call(_g("pandas", "ArrowDtype"), _alias("int64")),
    "arrowdtype_reduce_module_path": _call(_g("pandas.core.dtypes.dtypes", "ArrowDtype"), _ts()),
    "extension_array_reduce": _call(_g("pandas.arrays", "ArrowExtensionArray"), TS_ARRAY),
    "extension_array_module_path_reduce": _call(
        _g("pandas.core.arrays.arrow.array", "ArrowExtensionArray"), TS_ARRAY
    ),
    "arrow_string_array_reduce": _call(_g("pandas.core.arrays.string_arrow", "ArrowStringArray"), TS_ARRAY),
    "arrowdtype_as_defaultdict_factory": _call(_g("collections", "defaultdict"), _g("pandas", "ArrowDtype")),
}


@pytest.mark.parametrize("name", sorted(CALLED))
def test_pandas_arrow_classes_called_block(name: str) -> None:
    assert "PICKLE-CONSTRAINT-VIOLATION" in _blocked(CALLED[name])


# -- BUILD states carrying what pandas never writes --
def test_extension_array_state_with_an_unlisted_global_blocks() -> None:
    assert _blocked(_ext(TS_ARRAY, _ts(), U("_cache") + _g("os", "system")))
    assert _blocked(_ext(_call(_g("builtins", "eval"), U("1")), _ts()))


def test_dtype_state_with_an_unlisted_call_blocks() -> None:
    assert _blocked(_dtype(_call(_g("subprocess", "getoutput"), U("id"))))


# -- type constructors given arguments pyarrow never writes (literal-args) --
BAD_TYPES = {
    "timestamp_computed_unit": _ts(_alias("string")),
    "timestamp_computed_tz": _ts(U("ns"), _call(_pa("py_buffer"), b"C\x01x")),
    "timestamp_tz_path": _ts(U("ns"), U("../../../../etc/passwd")),
    "timestamp_unknown_unit": _ts(U("ps")),
    "field_type_literal": _call(_pa("field"), U("a"), U("int64"), b"\x88", b"N"),
    "field_type_call_result": _call(_pa("field"), U("a"), _call(_pa("py_buffer"), b"C\x01x"), b"\x88", b"N"),
    "field_metadata_dict": _field("a", _alias("int64"), b"}" + U("k") + U("v") + b"s"),
    "struct_of_types": _call(_pa("struct"), b"](" + _alias("int64") + b"e"),
    "struct_of_a_global": _call(_pa("struct"), b"](" + _g("os", "getcwd") + b"e"),
    "decimal_computed": _call(_pa("decimal128"), _alias("int64"), b"K\x02"),
    "decimal256_str": _call(_pa("decimal256"), U("40"), b"K\x02"),
    "binary_computed": _call(_pa("binary"), _call(_g("builtins", "len"), U("ab"))),
    "list_computed_size": _call(_pa("list_"), _alias("int32"), _call(_g("builtins", "int"), U("2"))),
    "list_value_literal": _call(_pa("list_"), U("int64")),
    "large_list_of_type": _call(_pa("large_list"), _alias("int64")),
    "map_of_types": _call(_pa("map_"), _alias("string"), _alias("int64")),
    "dictionary_value_call": _call(
        _pa("dictionary"), _alias("int32"), _call(_pa("py_buffer"), b"C\x01x"), b"\x89"
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_TYPES))
def test_type_constructors_with_unwritten_arguments_block(name: str) -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_dtype(BAD_TYPES[name]))


# -- array data the new types do not cover (arrow_array): out-of-bounds reads when pandas uses the column --
def _struct_of_int64(child_len: int) -> bytes:
    t = _struct(_field("a", _alias("int64")))
    return _restore(
        _data(t, 4, [None], children=[_data(_alias("int64"), child_len, [None, _i64(*range(child_len))])])
    )


def test_struct_child_shorter_than_the_struct_blocks() -> None:
    _allowed(_ext(_struct_of_int64(4), _struct(_field("a", _alias("int64")))))
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_struct_of_int64(1))


def test_struct_child_of_another_type_than_declared_blocks() -> None:
    t = _struct(_field("a", _alias("int64")))
    child = _data(_alias("int8"), 2, [None, b"\x01\x02"])  # read as int64 through the struct's type
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(t, 2, [None], children=[child])))


def test_struct_with_a_missing_child_blocks() -> None:
    t = _struct(_field("a", _alias("int64")), _field("b", _alias("int64")))
    child = _data(_alias("int64"), 2, [None, _i64(1, 2)])
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(t, 2, [None], children=[child])))


@pytest.mark.parametrize(
    "type_,width",
    [
        (_ts(), 8),
        (_call(_pa("decimal128"), b"K\x0a", b"K\x02"), 16),
        (_call(_pa("decimal256"), b"K(", b"K\x02"), 32),
        (_call(_pa("binary"), b"K\x10"), 16),
    ],  # fmt: skip
)
def test_fixed_width_types_with_a_short_data_buffer_block(type_: bytes, width: int) -> None:
    _allowed(_restore(_data(type_, 2, [None, bytes(2 * width)])))
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(type_, 2, [None, bytes(2 * width - 1)])))


def test_fixed_size_list_values_shorter_than_the_lists_block() -> None:
    t = _call(_pa("list_"), _alias("int32"), b"K\x02")
    _allowed(_restore(_data(t, 2, [None], children=[_data(_alias("int32"), 4, [None, _i32(1, 2, 3, 4)])])))
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(
        _restore(_data(t, 2, [None], children=[_data(_alias("int32"), 3, [None, _i32(1, 2, 3)])]))
    )


def test_large_list_offsets_past_the_child_block() -> None:
    t = _call(_pa("large_list"), _field("item", _alias("int64")))
    child = _data(_alias("int64"), 2, [None, _i64(1, 2)])
    _allowed(_restore(_data(t, 1, [None, _i64(0, 2)], children=[child])))
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(
        _restore(_data(t, 1, [None, _i64(0, 1 << 20)], children=[child]))
    )


def test_map_entries_not_a_struct_of_its_key_and_item_block() -> None:
    key, item = _field("key", _alias("string")), _field("value", _alias("int64"))
    t = _call(_pa("map_"), key, item)
    keys = _data(_alias("string"), 1, [None, _i32(0, 1), b"k"])
    values = _data(_alias("int64"), 1, [None, _i64(7)])
    entries = _data(_struct(key, item), 1, [None], children=[keys, values])
    _allowed(_restore(_data(t, 1, [None, _i32(0, 1)], children=[entries])))
    wrong = _data(_struct(key, _field("value", _alias("int8"))), 1, [None], children=[keys, values])
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(t, 1, [None, _i32(0, 1)], children=[wrong])))
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(_restore(_data(t, 1, [None, _i32(0, 1)], children=[values])))


def test_dictionary_data_of_another_type_than_declared_blocks() -> None:
    t = _call(_pa("dictionary"), _alias("int32"), _alias("int64"), b"\x89")
    string_values = _data(_alias("string"), 1, [None, _i32(0, 1), b"x"])  # read as int64 through the type
    assert "PICKLE-GADGET-ARGUMENT" in _blocked(
        _restore(_data(t, 1, [None, _i32(0)], dictionary=string_values))
    )


def test_list_view_and_union_types_stay_blocked() -> None:
    # pandas holds them, but they have no measured pickle and no bounded layout: not allowlisted
    assert _blocked(_dtype(_call(_pa("list_view"), _field("item", _alias("int64")))))
    assert _blocked(_restore(_data(_alias("string_view"), 1, [None, bytes(16), b""])))
