"""REDUCE with an argument tuple that an allowlisted call computed escapes every gadgets.yaml argument rule.

``copyreg._reconstructor(tuple, tuple, [x, ...])`` (allowlisted: builtins.tuple is one of its accepted bases) returns the
tuple ``(x, ...)`` at load time, and REDUCE hands it to the callable as its arguments. The walker's gadget check
(walker._gadget) only judges argument tuples it can read (a Seq) and returns silently for a call result, so a one_of,
invoked or no-argument rule never sees the values. Checked in a throwaway venv (numpy 2.4.6, ml_dtypes 0.7.0):
``numpy.dtype(*_reconstructor(tuple, tuple, [ml_dtypes.bfloat16]))`` + BUILD (3, '<', None, None, None, 8, 8, 1)
loads and leaves the process-wide bfloat16 descriptor with itemsize 8 and hasobject True (blocked since this round by
ndarray_state.dtype_state_problems, which refuses state on a dtype with computed arguments); the cases below have no
BUILD and passed until walker._gadget judged a computed argument tuple to a callable with argument rules
(PICKLE-GADGET-ARGUMENT).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ecosystem.test_gadget_rule_variants import _call, _g, _ops, _pickle, _v
from tests.harness import inspect_bytes, rule_ids


def _computed(*items: bytes) -> bytes:
    """copyreg._reconstructor(tuple, tuple, [items...]): a tuple built at load time."""
    return _call(
        "copyreg:_reconstructor",
        _ops(_g("builtins:tuple")),
        _ops(_g("builtins:tuple")),
        _ops(b"]" + b"".join(items) + b"e"),
    )


def _blocked(blob: bytes) -> bool:
    return bool(
        rule_ids(inspect_bytes(blob, "x.pkl")) & {"PICKLE-GADGET-ARGUMENT", "PICKLE-CONSTRAINT-VIOLATION"}
    )


def test_computed_dtype_arguments_with_state_block() -> None:
    blob = _pickle(
        _g("numpy:dtype")
        + _computed(b"(" + _g("ml_dtypes:bfloat16") + b"\x89\x88")
        + b"R"
        + _v((3, "<", None, None, None, 8, 8, 1))
        + b"b"
    )
    assert _blocked(blob)


@pytest.mark.parametrize(
    ("func", "items"),
    [
        # numpy.dtype(numpy.ndarray): a class spec outside numpy.dtype's one_of
        ("numpy:dtype", b"(" + _g("numpy:ndarray")),
        # DateOffset(5): DateOffset accepts no argument
        ("pandas:DateOffset", b"(" + _v(5)),
        # _new_Index(DataFrame, {}): a class outside _new_Index's one_of
        ("pandas.core.indexes.base:_new_Index", b"(" + _g("pandas:DataFrame") + b"}"),
    ],
)
def test_computed_argument_tuple_is_judged(tmp_path: Path, func: str, items: bytes) -> None:
    assert _blocked(_pickle(_g(func) + _computed(items) + b"R"))
