"""Red team 7: the state numpy's own ``__setstate__`` trusts, reached by BUILD on allowlisted numpy results.

Every pickle here uses only allowlisted globals (``numpy.dtype``, ``_reconstruct``, ``_mareconstruct``,
``_frombuffer``, ``scalar``, ``collections.deque``) and was allowed. With numpy 2.4.6 and 1.26.4 (CPython 3.11,
``pickle.load`` in a throwaway venv, outside the test suite):

- an object array whose item list is shorter than its shape: ``ndarray.__setstate__`` copies ``prod(shape)``
  items with ``PyList_GET_ITEM`` and no length check, so ``pickle.load`` itself segfaults (reads pointers past
  the list);
- a dtype whose fields hold ``object`` but whose pickled flags say "no objects" (``dtype.__setstate__`` takes
  them verbatim): numpy copies raw pickled bytes into the object slots, and reading the field dereferences the
  pointer the file chose (0x4141414141414141 here: segfault; with a known address, a forged object);
- a dtype of itemsize 0 (``V0``, ``[]``, or ``V8`` whose pickled elsize is 0) with a shape of 10**12: loads at
  once in 0 bytes, and ``collections.deque(arr, 0)`` in the same pickle ran past the 10 s timeout (``list`` of it
  asks for terabytes).

Real numpy writes lists as long as the array, flags that agree with the fields and bytes of ``nbytes``; the
benign controls are real numpy pickles (protocols 0-5) of object, structured, nested, wide and masked arrays.
Nothing is unpickled here.
"""

from __future__ import annotations

import collections
import pickle
import struct
from typing import Any

import pytest

from scanner.findings import Severity

from .assembler import DATA, scan

np = pytest.importorskip("numpy")
from numpy._core.multiarray import _reconstruct, scalar  # noqa: E402
from numpy._core.numeric import _frombuffer  # noqa: E402
from numpy.ma.core import MaskedArray, _mareconstruct  # noqa: E402

PTR = b"\x41" * 8


class _Reduce:
    """pickle.dumps writes func(*args) [+ BUILD state]; it is never loaded."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _dtype(spec: str, state: tuple[Any, ...]) -> _Reduce:
    return _Reduce(np.dtype, (spec, False, True), state)


def _array(state: tuple[Any, ...]) -> _Reduce:
    return _Reduce(_reconstruct, (np.ndarray, (0,), b"b"), state)


def _object_list_short(shape: int, items: int, protocol: int) -> bytes:
    """A real object array pickle with its shape rewritten past its item list."""
    arr = np.array(list(range(100, 100 + items)), dtype=object)
    data = pickle.dumps(arr, protocol=protocol)
    old = b"(K\x01K" + bytes([items]) + b"\x85"
    assert data.count(old) == 1
    return data.replace(old, b"(K\x01J" + struct.pack("<i", shape) + b"\x85")


def _rules(data: bytes) -> set[str]:
    r = scan(data)
    assert r.findings and max(f.severity for f in r.findings) >= Severity.HIGH, [
        (f.rule_id, f.message) for f in r.findings
    ]
    return {f.rule_id for f in r.findings}


def _allowed(data: bytes) -> None:
    r = scan(data)
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
    assert not bad, bad


# -- object arrays whose item list is shorter than the shape (segfault in pickle.load) --


@pytest.mark.parametrize(("shape", "items", "protocol"), [(10**6, 1, 2), (3, 2, 2), (64, 8, 4), (5, 4, 5)])
def test_object_array_list_shorter_than_shape_blocks(shape: int, items: int, protocol: int) -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _rules(_object_list_short(shape, items, protocol))


def test_two_dimensional_object_array_short_list_blocks() -> None:
    data = pickle.dumps({"w": _array((1, (8, 8), np.dtype("O"), False, list(range(8))))}, protocol=4)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


def test_masked_object_array_short_list_blocks() -> None:
    state = (1, (1000,), np.dtype("O"), False, [1], b"\x00" * 1000, None)
    data = pickle.dumps(_Reduce(_mareconstruct, (MaskedArray, np.ndarray, (0,), "b"), state), protocol=2)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


def test_object_array_items_from_a_call_block() -> None:
    """list(...) of unknown length as the item list: numpy takes any list."""
    items = _Reduce(list, ((1, 2),))
    data = pickle.dumps(_array((1, (10**6,), np.dtype("O"), False, items)), protocol=4)
    assert _rules(data) & {"PICKLE-GADGET-ARGUMENT", "PICKLE-IMPORT-UNLISTED", "PICKLE-CALL-UNLISTED"}


# -- dtype flags that disagree with the fields: raw bytes read as object pointers --

_OBJ_FIELD = {"a": (np.dtype("O"), 0)}


@pytest.mark.parametrize("flags", [0, 1, 16])
def test_object_field_with_objectless_flags_blocks(flags: int) -> None:
    forged = _dtype("V8", (3, "|", None, ("a",), _OBJ_FIELD, 8, 1, flags))
    data = pickle.dumps({"w": _array((1, (1,), forged, False, PTR))}, protocol=4)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


def test_object_dtype_with_objectless_flags_blocks() -> None:
    forged = _dtype("O8", (3, "|", None, None, None, -1, -1, 0))
    data = pickle.dumps({"w": _array((1, (1,), forged, False, PTR))}, protocol=2)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


@pytest.mark.parametrize("consumer", ["frombuffer", "scalar"])
def test_forged_dtype_through_other_constructors_blocks(consumer: str) -> None:
    forged = _dtype("V8", (3, "|", None, ("a",), _OBJ_FIELD, 8, 1, 0))
    obj = (
        _Reduce(_frombuffer, (PTR, forged, (1,), "C"))
        if consumer == "frombuffer"
        else _Reduce(scalar, (forged, PTR))
    )
    assert "PICKLE-GADGET-ARGUMENT" in _rules(pickle.dumps({"w": obj}, protocol=4))


def test_object_field_hidden_past_the_kept_fields_blocks() -> None:
    fields: dict[str, Any] = {f"f{i}": (np.dtype("f4"), 4 * i) for i in range(99)}
    fields["zz"] = (np.dtype("O"), 396)
    wide = _dtype("V404", (3, "|", None, tuple(fields), fields, 404, 1, 16))
    data = pickle.dumps({"w": _array((1, (1,), wide, False, b"\x41" * 404))}, protocol=4)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


def test_void_dtype_claiming_objects_blocks() -> None:
    forged = _dtype("V8", (3, "|", None, None, None, 8, 1, 63))
    data = pickle.dumps({"w": _array((1, (1,), forged, False, [1]))}, protocol=4)
    assert "PICKLE-GADGET-ARGUMENT" in _rules(data)


# -- zero itemsize: 10**12 elements in 0 bytes --


@pytest.mark.parametrize(
    "dtype",
    [
        pytest.param(lambda: np.dtype("V0"), id="V0"),
        pytest.param(lambda: np.dtype([]), id="empty-struct"),
        pytest.param(lambda: _dtype("V8", (3, "|", None, None, None, 0, 1, 0)), id="V8-elsize-0"),
    ],
)
def test_zero_itemsize_huge_shape_blocks(dtype: Any) -> None:
    arr = _array((1, (10**12,), dtype(), False, b""))
    data = pickle.dumps(_Reduce(collections.deque, (arr, 0)), protocol=4)
    assert "PICKLE-ALLOCATION-SIZE" in _rules(data)


def test_zero_itemsize_array_alone_blocks() -> None:
    data = pickle.dumps({"w": np.zeros((10**12,), dtype="V0")}, protocol=2)
    assert "PICKLE-ALLOCATION-SIZE" in _rules(data)


# -- benign controls: what numpy really writes --


def _benign() -> dict[str, Any]:
    wide = [(f"f{i}", "f4") for i in range(100)]
    return {
        "obj1d": np.array([1, "a", None, 2.5], dtype=object),
        "obj2d_f": np.asfortranarray(np.array([[1, "x"], [None, 3]], dtype=object)),
        "obj_empty": np.zeros((0, 3), dtype=object),
        "obj_0d": np.array(None, dtype=object),
        "struct_obj": np.array([(1, "a"), (2, None)], dtype=[("i", "i4"), ("o", "O")]),
        "nested_obj": np.zeros(3, dtype=[("n", [("a", "O"), ("b", "f8")]), ("c", "i2")]),
        "subarray_obj": np.zeros(2, dtype=[("x", "O", (3,))]),
        "aligned": np.zeros(4, dtype=np.dtype([("a", "u1"), ("b", "f8")], align=True)),
        "rec_obj": np.rec.fromrecords([(1, "a"), (2, "b")], dtype=[("i", "i4"), ("s", "O")]),
        "wide_obj": np.zeros(2, dtype=[(f"f{i}", "O" if i % 30 == 0 else "f4") for i in range(100)]),
        "masked_obj": np.ma.masked_array(np.array([1, None, "z"], dtype=object), mask=[0, 1, 0]),
        "small_void0": np.zeros(10, dtype="V0"),
        "strings": np.array(["ab", "cde"]),
        "mix": {
            "a": np.array([None] * 100, dtype=object),
            "b": np.zeros((30, 30)),
            "w": np.zeros(2, dtype=wide),
        },
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_real_numpy_pickles_stay_allowed(protocol: int) -> None:
    for name, obj in _benign().items():
        data = pickle.dumps(obj, protocol=protocol)
        r = scan(data)
        bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
        assert not bad, (name, bad)


# -- joblib: the wrapper's dtype decides whether joblib reads the raw bytes that follow as data --


def test_joblib_wrapper_with_forged_dtype_blocks() -> None:
    """joblib 1.6 with the wrapper's dtype swapped for a forged one (object field, flags 0): joblib.load reads
    b'A' * 8 into the object slot and crashes (tests/formats/pickle/data/redteam7/forged_dtype.joblib)."""
    data = (DATA / "redteam7" / "forged_dtype.joblib").read_bytes()
    r = scan(data, "model.joblib")
    assert "PICKLE-GADGET-ARGUMENT" in {f.rule_id for f in r.findings}
    assert max(f.severity for f in r.findings) >= Severity.HIGH


def test_real_joblib_structured_object_arrays_stay_allowed(tmp_path) -> None:
    joblib = pytest.importorskip("joblib")
    for name, obj in _benign().items():
        if name == "small_void0":
            continue  # joblib cannot write a zero-size dtype (ZeroDivisionError in write_array)
        path = tmp_path / f"{name}.joblib"
        joblib.dump(obj, path)
        r = scan(path.read_bytes(), path.name)
        bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
        assert not bad, (name, bad)


@pytest.mark.parametrize("baseshape", [(2_000_000_000,), (100_000, 100_000)])
def test_masked_array_base_shape_is_an_allocation(baseshape: tuple[int, ...]) -> None:
    """_mareconstruct(MaskedArray, ndarray, baseshape, 'f8') allocates data and mask of baseshape before any BUILD
    (MaskedArray.__reduce__ always writes (0,)); the same size rule as _reconstruct's shape."""
    data = pickle.dumps(
        {"m": _Reduce(_mareconstruct, (MaskedArray, np.ndarray, baseshape, "f8"))}, protocol=4
    )
    assert "PICKLE-ALLOCATION-SIZE" in _rules(data)


def test_seven_item_dtype_state_without_flags_blocks() -> None:
    """(3, endian, subarray, names, fields, elsize, alignment): numpy (1.26 and 2.4) leaves the flags at 0 for a
    version-3 state without them, over an object field; version 2 recomputes them and stays allowed."""
    fields = {"a": (np.dtype("O"), 0)}
    forged = _dtype("V8", (3, "|", None, ("a",), fields, 8, 1))
    assert "PICKLE-GADGET-ARGUMENT" in _rules(
        pickle.dumps({"w": _array((1, (1,), forged, False, PTR))}, protocol=4)
    )
    recomputed = _dtype("V8", (2, "|", None, ("a",), fields, 8, 1))
    _allowed(pickle.dumps({"w": _array((1, (1,), recomputed, False, [None]))}, protocol=4))
