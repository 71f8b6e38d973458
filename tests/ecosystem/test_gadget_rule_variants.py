"""Steered variants of the benign shapes tests/ecosystem/test_pending_gadget_rules.py allows.

Each allowance there (an ml_dtypes type as numpy.dtype's spec, pandas 1.x numeric index classes, pandas 3
_new_TimedeltaIndex, DateOffset() + a relativedelta, a vocabulary's '_target_' token) is narrow: the pickles here are
hand-assembled (opcode by opcode, never loaded) so that one slot differs from what the library writes, and each must
still block. The benign assembly of each shape is allowed, so a block below is the variant's, not the assembler's.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict

_BLOCKING = {"PICKLE-CALL-UNLISTED", "PICKLE-GADGET-ARGUMENT", "PICKLE-CONSTRAINT-VIOLATION"}


# -- a tiny pickle assembler (protocol 4 opcodes, no frames) --


def _u(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b if len(b) < 256 else b"X" + struct.pack("<I", len(b)) + b


def _g(path: str) -> bytes:
    mod, name = path.split(":")
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def _v(x: object) -> bytes:
    """A literal (or already assembled opcodes, given as a 1-tuple ('ops', bytes))."""
    if isinstance(x, tuple) and len(x) == 2 and x[0] == "ops":
        assert isinstance(x[1], bytes)
        return x[1]
    if x is None:
        return b"N"
    if x is True:
        return b"\x88"
    if x is False:
        return b"\x89"
    if isinstance(x, int):
        return b"K" + bytes([x]) if 0 <= x < 256 else b"J" + struct.pack("<i", x)
    if isinstance(x, float):
        return b"G" + struct.pack(">d", x)
    if isinstance(x, str):
        return _u(x)
    if isinstance(x, bytes):
        return b"C" + bytes([len(x)]) + x
    if isinstance(x, tuple):
        return b"(" + b"".join(_v(i) for i in x) + b"t"
    if isinstance(x, dict):
        return b"}(" + b"".join(_v(k) + _v(v) for k, v in x.items()) + b"u"
    raise TypeError(x)


def _ops(b: bytes) -> tuple[str, bytes]:
    return ("ops", b)


def _call(func: str, *args: object) -> bytes:
    return _g(func) + _v(tuple(args)) + b"R"


def _pickle(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def _allowed(tmp_path: Path, blob: bytes, name: str = "state.pkl") -> bool:
    fr = scan_on_disk(tmp_path, blob, name)
    return verdict(fr).value == "allow" and not (rule_ids(fr) & _BLOCKING)


# -- 1. numpy.dtype(<ml_dtypes type>, False, True) + BUILD --

_BF16_STATE = (3, "<", None, None, None, 2, 2, 64)


def _ml_array(
    spec: str = "ml_dtypes:bfloat16",
    state: object = _BF16_STATE,
    dtype_args: tuple[object, ...] = (False, True),
    raw: bytes = b"\x80?\x80?\x80?",
    n: int = 3,
    dtype_func: str = "numpy:dtype",
    extra_build: object = None,
) -> bytes:
    dt = _g(dtype_func) + b"(" + _g(spec) + b"".join(_v(a) for a in dtype_args) + b"tR"
    if state is not None:
        dt += _v(state) + b"b"
    if extra_build is not None:
        dt += _v(extra_build) + b"b"
    arr = _call("numpy.core.multiarray:_reconstruct", _ops(_g("numpy:ndarray")), (0,), b"b")
    arr += _v((1, (n,), _ops(dt), False, raw)) + b"b"
    return _pickle(arr)


@pytest.mark.parametrize(
    ("spec", "state", "raw", "n"),
    [
        ("ml_dtypes:bfloat16", _BF16_STATE, b"\x80?\x80?\x80?", 3),
        ("ml_dtypes:float8_e4m3fn", (3, "<", None, None, None, 1, 1, 64), b"\x00\x00", 2),
        ("ml_dtypes:int4", (3, "<", None, None, None, 1, 1, 64), b"\x01\x02", 2),
        # ml_dtypes 0.3.2-0.5.1 on numpy 1.26.4 pickle flags 80 (NPY_USE_SETITEM | NPY_NEEDS_PYAPI)
        ("ml_dtypes:bfloat16", (3, "<", None, None, None, 2, 2, 80), b"\x80?\x80?\x80?", 3),
    ],
)
def test_ml_dtypes_array_as_numpy_writes_it_is_allowed(
    tmp_path: Path, spec: str, state: tuple[object, ...], raw: bytes, n: int
) -> None:
    assert _allowed(tmp_path, _ml_array(spec, state, raw=raw, n=n))
    assert _allowed(tmp_path, _ml_array(spec, state, raw=raw, n=n, dtype_func="numpy.core.multiarray:dtype"))


@pytest.mark.parametrize(
    "state",
    [
        # dtype(bfloat16) is the process-wide registered descriptor and __setstate__ rewrites it: checked in a
        # throwaway venv (numpy 2.4.6, ml_dtypes 0.7.0) that this leaves np.dtype(ml_dtypes.bfloat16).itemsize == 8
        # and hasobject True for every later array in the process
        (3, "<", None, None, None, 8, 8, 1),
        (3, "<", None, None, None, 2, 2, 63),  # object flags on raw bytes
        (3, "<", None, None, None, 2, 2, 65),  # NPY_ITEM_REFCOUNT with the measured flags
        (3, "<", None, None, None, 2, 2, 81),
        (3, "<", None, None, None, 2, 2, 96),  # NPY_USE_GETITEM
        (3, "<", None, None, None, 1, 1, 64),  # a float8's state on the bf16 descriptor
        (3, "<", None, None, None, 64, 2, 64),  # itemsize
        (3, "<", None, None, None, 2, 64, 64),  # alignment
        (3, ">", None, None, None, 2, 2, 64),  # byte order of every later bf16 array
        (3, "<", None, None, None, 2, 2),  # 7 items: flags recomputed
        (3, "<", None, ("a",), None, 2, 2, 64),  # names
        (3, "<", ((_ops(_g("numpy:dtype") + _v(("f8", False, True)) + b"R")), (2,)), None, None, 2, 2, 64),
        (3, "<", None, None, None, True, 2, 64),  # a bool where numpy writes an int
    ],
)
def test_ml_dtypes_descriptor_state_other_than_numpys_blocks(tmp_path: Path, state: object) -> None:
    assert not _allowed(tmp_path, _ml_array(state=state))


def test_ml_dtypes_second_build_blocks(tmp_path: Path) -> None:
    assert not _allowed(tmp_path, _ml_array(extra_build=(3, "<", None, None, None, 8, 8, 1)))


@pytest.mark.parametrize(
    "spec",
    [
        "ml_dtypes:finfo",
        "ml_dtypes:iinfo",
        "numpy:float64",
        "numpy:ndarray",
        "builtins:object",
        "ml_dtypes:bfloat",
    ],
)
def test_other_classes_as_dtype_spec_still_block(tmp_path: Path, spec: str) -> None:
    assert not _allowed(tmp_path, _ml_array(spec=spec, state=None))


# -- 2. pandas 1.x numeric index classes as _new_Index's class argument --


def _index_array() -> bytes:
    dt = _call("numpy:dtype", "i8", False, True) + _v((3, "<", None, None, None, -1, -1, 0)) + b"b"
    arr = _call("numpy.core.multiarray:_reconstruct", _ops(_g("numpy:ndarray")), (0,), b"b")
    return arr + _v((1, (2,), _ops(dt), False, b"\n" + b"\0" * 7 + b"\x14" + b"\0" * 7)) + b"b"


def _new_index(cls: str, helper: str = "pandas.core.indexes.base:_new_Index") -> bytes:
    return _pickle(_call(helper, _ops(_g(cls)), {"data": _ops(_index_array()), "name": None}))


@pytest.mark.parametrize("cls", ["Int64Index", "UInt64Index", "Float64Index", "NumericIndex"])
def test_pandas_1x_numeric_index_by_new_index_is_allowed(tmp_path: Path, cls: str) -> None:
    assert _allowed(tmp_path, _new_index(f"pandas.core.indexes.numeric:{cls}"))


@pytest.mark.parametrize(
    "cls",
    [
        "pandas.core.indexes.numeric:IntegerIndex",  # abstract base, never pickled
        "pandas.core.indexes.numeric:Int32Index",
        "pandas.core.indexes.numeric:Index",
        "pandas.core.indexes.datetimes:Int64Index",
        "builtins:object",
    ],
)
def test_other_classes_as_new_index_argument_still_block(tmp_path: Path, cls: str) -> None:
    assert not _allowed(tmp_path, _new_index(cls))


def test_numeric_index_called_directly_blocks(tmp_path: Path) -> None:
    # Int64Index(data) converts arbitrary input: the class is only _new_Index's argument (data-only)
    blob = _pickle(_call("pandas.core.indexes.numeric:Int64Index", _ops(_index_array())))
    assert not _allowed(tmp_path, blob)
    blob = _pickle(_g("pandas.core.indexes.numeric:Int64Index") + _v((_ops(_index_array()),)) + b"\x81")
    assert not _allowed(tmp_path, blob)


def test_numeric_index_to_another_rebuild_helper_blocks(tmp_path: Path) -> None:
    blob = _pickle(
        _call(
            "pandas._libs.arrays:__pyx_unpickle_NDArrayBacked",
            _ops(_g("pandas.core.indexes.numeric:Int64Index")),
            82904607,
            None,
        )
    )
    assert not _allowed(tmp_path, blob)


# -- 3. pandas >= 3.1 _new_TimedeltaIndex(TimedeltaIndex, d) --

_TDI = "pandas.core.indexes.timedeltas:_new_TimedeltaIndex"


@pytest.mark.parametrize("cls", ["pandas:TimedeltaIndex", "pandas.core.indexes.timedeltas:TimedeltaIndex"])
def test_new_timedeltaindex_of_timedeltaindex_is_allowed(tmp_path: Path, cls: str) -> None:
    assert _allowed(tmp_path, _new_index(cls, _TDI))


@pytest.mark.parametrize(
    "cls",
    [
        "pandas:DatetimeIndex",
        "pandas:Index",
        "pandas:DataFrame",
        "pandas.core.indexes.numeric:Int64Index",
        "builtins:object",
        "os:system",
    ],
)
def test_other_classes_as_new_timedeltaindex_argument_still_block(tmp_path: Path, cls: str) -> None:
    assert not _allowed(tmp_path, _new_index(cls, _TDI))


def test_new_timedeltaindex_with_keywords_blocks(tmp_path: Path) -> None:
    # NEWOBJ_EX-style keywords could name cls
    blob = _pickle(
        _g("copyreg:__newobj_ex__")
        + _v((_ops(_g(_TDI)), (), {"cls": _ops(_g("builtins:object")), "d": {}}))
        + b"R"
    )
    assert not _allowed(tmp_path, blob)


# -- 4. DateOffset() with no arguments + BUILD holding a dateutil relativedelta --

_RD_STATE = {
    "years": 0, "months": 1, "days": 0, "leapdays": 0, "hours": 0, "minutes": 0, "seconds": 0, "microseconds": 0,
    "year": None, "month": None, "day": None, "hour": None, "minute": None, "second": None, "microsecond": None,
    "weekday": None, "_has_time": 0,
}  # fmt: skip


def _offset(
    cls: str = "pandas:DateOffset",
    args: tuple[object, ...] = (),
    newobj: bool = False,
    rd_state: object = _RD_STATE,
    rd_args: tuple[object, ...] = (),
    rd_newobj: bool = True,
    extra: dict[str, object] | None = None,
) -> bytes:
    rd = _g("dateutil.relativedelta:relativedelta") + _v(rd_args) + (b"\x81" if rd_newobj else b"R")
    rd += _v(rd_state) + b"b"
    state = {
        "_offset": _ops(rd),
        "_use_relativedelta": True,
        "months": 1,
        "n": 1,
        "normalize": False,
        **(extra or {}),
    }
    return _pickle(_g(cls) + _v(args) + (b"\x81" if newobj else b"R") + _v(state) + b"b")


@pytest.mark.parametrize("cls", ["pandas:DateOffset", "pandas._libs.tslibs.offsets:DateOffset"])
@pytest.mark.parametrize("newobj", [False, True])
def test_dateoffset_no_arguments_with_relativedelta_is_allowed(
    tmp_path: Path, cls: str, newobj: bool
) -> None:
    assert _allowed(tmp_path, _offset(cls, newobj=newobj))


@pytest.mark.parametrize(
    "kw",
    [
        {"args": (2,)},  # DateOffset(2): __init__ validates n
        {"args": (1, False)},
        {"args": (_ops(_g("pandas:Series")),)},
        {"newobj": True, "args": (1,)},  # cls.__new__(cls, 1)
        {"rd_newobj": False},  # relativedelta() called: __init__ runs date arithmetic on its arguments
        {"rd_newobj": False, "rd_args": (_ops(_call("datetime:datetime", 2020, 1, 1)),)},
        {"rd_state": {"__reduce__": _ops(_g("os:system"))}},  # hook planted on the relativedelta
        {"rd_state": {"weekday": _ops(_call("builtins:getattr", _ops(_g("os:path")), "join"))}},
    ],
)
def test_dateoffset_steered_variants_block(tmp_path: Path, kw: dict[str, object]) -> None:
    assert not _allowed(tmp_path, _offset(**kw))  # type: ignore[arg-type]


def test_dateoffset_keywords_block(tmp_path: Path) -> None:
    blob = _pickle(_g("pandas:DateOffset") + _v(()) + _v({"months": 1}) + b"\x92" + _v({"n": 1}) + b"b")
    assert not _allowed(tmp_path, blob)


@pytest.mark.parametrize("holder", ["collections:defaultdict", "functools:partial"])
def test_dateoffset_called_with_arguments_by_a_holder_blocks(tmp_path: Path, holder: str) -> None:
    blob = _pickle(_call("functools:partial", _ops(_g("pandas:DateOffset")), 5, _ops(_g("os:getcwd"))))
    assert not _allowed(tmp_path, blob)


@pytest.mark.parametrize(
    "body",
    [
        _call("ml_dtypes:bfloat16", 1.0),  # data-only: only numpy.dtype's argument
        # (_reconstruct(bfloat16, ...) and copyreg._reconstructor(bfloat16, object|float, ...) raise TypeError in the
        # loader: numpy wants an ndarray subtype, object.__new__/float.__new__ refuse the C scalar type)
        _call("numpy.core.multiarray:scalar", _ops(_g("ml_dtypes:bfloat16")), b"\x80?"),
    ],
)
def test_ml_dtypes_type_anywhere_but_dtype_spec_blocks(tmp_path: Path, body: bytes) -> None:
    assert not _allowed(tmp_path, _pickle(body))
