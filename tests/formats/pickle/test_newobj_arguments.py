"""NEWOBJ / NEWOBJ_EX call ``cls.__new__(cls, *args, **kwargs)``: the argument rules of gadgets.yaml hold for them
as for REDUCE. An allowlisted class whose ``__new__`` allocates (numpy.ndarray, recarray, bytes) may not be given
a huge size that way, not even as a keyword argument, which is judged against every positional rule it could
fill. Nothing here is unpickled."""

from __future__ import annotations

import pytest

from scanner.findings import Severity

from .assembler import NEWOBJ, PROTO, STOP, G, U, scan

NEWOBJ_EX = b"\x92"
HUGE = b"\x8a\x05\x00\x00\x00\x00\x01"  # LONG1 2**32
B4 = b"C\x04abcd\x85"  # (b'abcd',)


def _blocking(data: bytes) -> set[str]:
    return {f.rule_id for f in scan(data).findings if f.severity >= Severity.HIGH}


@pytest.mark.parametrize(
    "cls, args",
    [
        (("numpy", "ndarray"), HUGE + b"\x85"),
        (("numpy", "ndarray"), HUGE + U("O") + b"\x86"),
        (("numpy.rec", "recarray"), HUGE + U("i1") + b"\x86"),
        (("numpy", "recarray"), HUGE + U("i1") + b"\x86"),
        (("numpy", "record"), HUGE + b"\x85"),
        (("builtins", "bytes"), HUGE + b"\x85"),
    ],
)
def test_newobj_of_an_allocating_class_with_a_huge_size_blocks(cls: tuple[str, str], args: bytes) -> None:
    assert "PICKLE-ALLOCATION-SIZE" in _blocking(PROTO(2) + G(*cls) + args + NEWOBJ + STOP)


def test_newobj_of_ndarray_with_a_small_size_is_not_an_allocation_finding() -> None:
    assert "PICKLE-ALLOCATION-SIZE" not in _blocking(
        PROTO(2) + G("numpy", "ndarray") + b"K\x03\x85" + NEWOBJ + STOP
    )


@pytest.mark.parametrize(
    "cls, key",
    [
        (("builtins", "bytes"), "source"),
        (("numpy", "ndarray"), "shape"),
        (("numpy", "void"), "length_or_data"),
    ],
)
def test_keyword_arguments_to_a_ruled_class_fail_closed(cls: tuple[str, str], key: str) -> None:
    """bytes(source=2**32) allocates 4 GiB: the size travels as a keyword, past the positional rule."""
    data = PROTO(4) + G(*cls) + b")}" + U(key) + HUGE + b"s" + NEWOBJ_EX + STOP
    assert _blocking(data) & {"PICKLE-GADGET-ARGUMENT", "PICKLE-ALLOCATION-SIZE"}


def test_newobj_ex_with_empty_keywords_is_judged_like_newobj() -> None:
    small = PROTO(4) + G("builtins", "bytes") + B4 + b"}" + NEWOBJ_EX + STOP
    assert _blocking(small) == set()
