"""Red team 4: callables that forward to a callable their state names (functools.partial, numpy.vectorize,
bound methods, a base class's __init__), and allowlisted apply helpers that call an argument while loading.

Each malicious pickle uses only allowlisted globals; with torch 2.13, joblib 1.6 and CPython 3.11 the real
``pickle.load`` / ``torch.load(weights_only=False)`` runs the forwarded call (``joblib.Memory(path)`` creates
``path/joblib``; ``print`` prints; ``Fraction(numerator='1e30000000')`` burns CPU; ``bytearray(2**40)`` asks
for 1 TiB) before ``_rebuild_from_type_v2`` fails on the result. Before the fix every one was allowed. The
bytes are built here; nothing is unpickled.
"""

from __future__ import annotations

import collections
import functools
import pickle

import pytest

from scanner.findings import Severity

from .assembler import BUILD, EMPTY_DICT, EMPTY_TUPLE, MARK, NONE, PROTO, STOP, TUPLE, G, U, call, scan, worst

BLOCKING = Severity.HIGH
MEMORY = G("joblib.memory", "Memory")  # allowlisted newobj-only: its __init__ creates a cache directory
REBUILD = G("torch._tensor", "_rebuild_from_type_v2")


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def _rebuild(func: bytes, *args: bytes) -> bytes:
    """torch._tensor._rebuild_from_type_v2(func, torch.Tensor, args, {}): calls func(*args) while loading."""
    return call(REBUILD, func, G("torch", "Tensor"), _tup(*args) if args else EMPTY_TUPLE, EMPTY_DICT)


def _partial_swapped(func: bytes, *args: bytes) -> bytes:
    """partial(int), then BUILD (func, args, None, None): partial.__setstate__ makes it call func(*args)."""
    return call(G("functools", "partial"), G("builtins", "int")) + _tup(func, _tup(*args), NONE, NONE) + BUILD


def _blocks(data: bytes, *expected: str) -> None:
    r = scan(data)
    found = {f.rule_id for f in r.findings}
    assert worst(r) is not None and worst(r) >= BLOCKING, found
    for rule in expected:
        assert rule in found, (rule, [(f.rule_id, f.message) for f in r.findings])


def _allowed(data: bytes) -> None:
    r = scan(data)
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= BLOCKING]
    assert not bad, bad


# -- an apply helper calls an instance while loading: its class's __call__ runs on unjudged state --------------


def test_rebuild_calling_a_partial_of_reconstructor_blocks() -> None:
    # _rebuild_from_type_v2(partial(copyreg._reconstructor, Memory, Memory, path), Tensor, (), {}):
    # Memory.__init__(path) runs (newobj-only entry, and a base _reconstructor's own rule refuses)
    p = call(G("functools", "partial"), G("copyreg", "_reconstructor"), MEMORY, MEMORY, U("/tmp/x"))
    _blocks(_p2(_rebuild(p)), "PICKLE-UNTRACED-CALL", "PICKLE-GADGET-ARGUMENT")


def test_rebuild_calling_a_partial_whose_state_swapped_the_callable_blocks() -> None:
    _blocks(_p2(_rebuild(_partial_swapped(MEMORY, U("/tmp/x")))), "PICKLE-UNTRACED-CALL")


def test_rebuild_calling_a_vectorize_whose_pyfunc_was_planted_blocks() -> None:
    vec = (
        call(G("numpy", "vectorize"), G("builtins", "int")) + EMPTY_DICT + U("pyfunc") + MEMORY + b"s" + BUILD
    )
    _blocks(_p2(_rebuild(vec, b"]" + U("/tmp/x") + b"a")), "PICKLE-UNTRACED-CALL")


def test_rebuild_calling_a_data_only_function_blocks() -> None:
    # data-only entries are stored values; the helper calls print('x') while loading
    _blocks(_p2(_rebuild(G("builtins", "print"), U("x"))), "PICKLE-CONSTRAINT-VIOLATION")


# -- what a forwarder will call is judged with its own rules, whatever sets it ------------------------------


def test_partial_state_naming_a_newobj_only_class_blocks_even_when_stored() -> None:
    # defaultdict(partial(int)) with the partial's state swapped to Memory: called on the first missing key
    _blocks(
        _p2(call(G("collections", "defaultdict"), _partial_swapped(MEMORY, U("/tmp/x")))),
        "PICKLE-CONSTRAINT-VIOLATION",
    )


def test_partial_stored_arguments_meet_the_callables_rules() -> None:
    big = b"\x8a\x06\x00\x00\x00\x00\x00\x01"  # LONG1 2**40
    _blocks(_p2(call(G("functools", "partial"), G("builtins", "bytearray"), big)), "PICKLE-ALLOCATION-SIZE")
    _blocks(_p2(_partial_swapped(G("builtins", "bytearray"), big)), "PICKLE-ALLOCATION-SIZE")


def test_partial_state_that_cannot_be_read_blocks() -> None:
    p = (
        call(G("functools", "partial"), G("builtins", "int"))
        + call(G("builtins", "tuple"), EMPTY_TUPLE)
        + BUILD
    )
    _blocks(_p2(p), "PICKLE-GADGET-ARGUMENT")


def test_reconstructor_base_init_meets_the_bases_rules() -> None:
    # copyreg._reconstructor(bytearray, bytearray, 2**40): bytearray.__init__(obj, 2**40) allocates 1 TiB
    data = call(G("copyreg", "_reconstructor"), G("builtins", "bytearray"), G("builtins", "bytearray"))
    data = data[:-2] + b"\x8a\x06\x00\x00\x00\x00\x00\x01" + data[-2:]
    _blocks(_p2(data), "PICKLE-ALLOCATION-SIZE")


def test_keyword_arguments_to_a_guarded_class_block() -> None:
    # NEWOBJ_EX Fraction.__new__(Fraction, numerator='1e30000000'): the positional rule never saw it
    data = PROTO(4) + G("fractions", "Fraction") + EMPTY_TUPLE + EMPTY_DICT + U("numerator")
    data += U("1e30000000") + b"s\x92" + STOP
    _blocks(data, "PICKLE-GADGET-ARGUMENT")


# -- what real writers produce stays allowed ------------------------------------------------------------------


@pytest.mark.parametrize("proto", [2, 4, 5])
@pytest.mark.parametrize(
    "obj",
    [
        functools.partial(int, "5"),
        functools.partial(collections.OrderedDict),
        collections.defaultdict(functools.partial(collections.Counter)),
        functools.partial(int, "7", base=10),
    ],
    ids=["partial-int", "partial-ordereddict", "defaultdict-partial", "partial-keywords"],
)
def test_pickled_partials_are_allowed(obj: object, proto: int) -> None:
    _allowed(pickle.dumps(obj, protocol=proto))


def test_pickled_vectorize_is_allowed() -> None:
    np = pytest.importorskip("numpy")
    _allowed(pickle.dumps(np.vectorize(np.add), protocol=4))
