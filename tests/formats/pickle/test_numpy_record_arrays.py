"""numpy record arrays (np.rec.array): numpy writes ``_reconstruct(recarray, (0,), b'b')`` and a record dtype as
``dtype(numpy.record, False, True)``. Those exact shapes are allowed (measured from numpy 2.4.6 and 1.26.4 in
fixtures/ecosystem/numpy/record_arrays.pkl); any other use of the two classes, or another class given to dtype(),
blocks. Nothing here is unpickled."""

from __future__ import annotations

import pytest

from scanner.findings import Severity

from .assembler import BUILD, NEWOBJ, PROTO, STOP, B, G, U, call, scan

FALSE, TRUE = b"\x89", b"\x88"


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _record_dtype(spec: bytes) -> bytes:
    """dtype(spec, False, True) then numpy's BUILD state of a one-field record dtype."""
    state = (
        b"(K\x03"
        + U("|")
        + b"N("
        + U("x")
        + b"t}"
        + U("x")
        + b"("
        + call(G("numpy", "dtype"), U("i4"), FALSE, TRUE)
    )
    state += b"K\x00tsK\x04K\x04K\x10t"
    return call(G("numpy", "dtype"), spec, FALSE, TRUE) + state + BUILD


def _recarray(subtype: bytes, dtype: bytes) -> bytes:
    shape = b"K\x00\x85"
    arr = call(G("numpy._core.multiarray", "_reconstruct"), subtype, shape, B(b"b"))
    state = b"(K\x01K\x01\x85" + dtype + b"\x89" + B(b"\x01\x00\x00\x00") + b"t"
    return arr + state + BUILD


def _blocking(data: bytes) -> set[str]:
    r = scan(data)
    return {f.rule_id for f in r.findings if f.severity >= Severity.HIGH}


@pytest.mark.parametrize("subtype", [("numpy.rec", "recarray"), ("numpy", "recarray")])
def test_the_record_array_numpy_writes_is_allowed(subtype: tuple[str, str]) -> None:
    data = _p2(_recarray(G(*subtype), _record_dtype(G("numpy", "record"))))
    assert _blocking(data) == set()


def test_a_record_dtype_alone_is_allowed() -> None:
    assert _blocking(_p2(_record_dtype(G("numpy", "record")))) == set()


@pytest.mark.parametrize(
    "spec",
    [
        G("numpy.rec", "recarray"),  # an allowlisted class, but not the one numpy gives dtype()
        G("numpy", "matrix"),
        G("numpy", "ndarray"),
        G("collections", "OrderedDict"),
    ],
)
def test_another_class_given_to_dtype_blocks(spec: bytes) -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _blocking(_p2(_record_dtype(spec)))


@pytest.mark.parametrize("cls", [("numpy.rec", "recarray"), ("numpy", "recarray"), ("numpy", "record")])
def test_calling_the_record_classes_blocks(cls: tuple[str, str]) -> None:
    """recarray(shape) allocates and record(...) builds a scalar: numpy never pickles either call."""
    called = _p2(call(G(*cls), b"J\x00\x00\x00\x7f"))
    assert _blocking(called) & {"PICKLE-CONSTRAINT-VIOLATION", "PICKLE-CALL-UNLISTED"}
    newobj = _p2(G(*cls) + b"J\x00\x00\x00\x7f\x85" + NEWOBJ)
    assert _blocking(newobj)
