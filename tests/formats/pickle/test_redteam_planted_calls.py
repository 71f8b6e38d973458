"""Red team 5: attributes planted on an instance that code running while loading looks up and calls.

``dict(obj)``, ``collections.OrderedDict(obj)`` and ``dict.__init__`` (``copyreg._reconstructor`` over a dict base)
call ``obj.keys()`` when ``obj`` is not a dict; joblib's unpickler (pickle.py ``load_build``) calls
``state.items()`` on a BUILD state that is not a dict. With CPython 3.11 and joblib 1.6 the real loaders call
the planted value (``SimpleNamespace.keys() returned a non-iterable (type Memory)``): a newobj-only
``joblib.memory.Memory`` planted there is constructed by a call. Before the fix each was allowed. The bytes are
built here; nothing is unpickled.
"""

from __future__ import annotations

import pytest

from scanner.findings import Severity

from .assembler import BUILD, EMPTY_DICT, EMPTY_TUPLE, PROTO, REDUCE, SETITEM, STOP, G, U, call, scan, worst

MEMORY = G("joblib.memory", "Memory")  # allowlisted newobj-only: never called


def _ns_with(attr: str, value: bytes) -> bytes:
    """SimpleNamespace() then BUILD {attr: value}: the instance attribute shadows nothing on the type."""
    return (
        G("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE + EMPTY_DICT + U(attr) + value + SETITEM + BUILD
    )


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _violation(data: bytes) -> None:
    r = scan(data)
    found = {f.rule_id for f in r.findings}
    assert worst(r) is not None and worst(r) >= Severity.HIGH, found
    assert "PICKLE-CONSTRAINT-VIOLATION" in found, [(f.rule_id, f.message) for f in r.findings]


@pytest.mark.parametrize(
    "body",
    [
        call(G("builtins", "dict"), _ns_with("keys", MEMORY)),
        call(G("collections", "OrderedDict"), _ns_with("keys", MEMORY)),
        call(
            G("copyreg", "_reconstructor"),
            G("collections", "OrderedDict"),
            G("builtins", "dict"),
            _ns_with("keys", MEMORY),
        ),
        # joblib (pickle.py) BUILD: state.items() on a state that is not a dict
        G("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE + _ns_with("items", MEMORY) + BUILD,
        # the mapping planted through SETITEM on an OrderedDict, then used as BUILD state
        G("types", "SimpleNamespace")
        + EMPTY_TUPLE
        + REDUCE
        + call(G("collections", "OrderedDict"))
        + U("keys")
        + MEMORY
        + SETITEM
        + BUILD,
    ],
    ids=["dict", "OrderedDict", "reconstructor-dict-init", "joblib-build-items", "ordereddict-state"],
)
def test_planted_keys_items_are_calls(body: bytes) -> None:
    _violation(_p2(body))


def test_planted_allowed_callable_stays_allowed() -> None:
    # an unconstrained allowlisted class there is a call the rules allow (OrderedDict() builds an empty mapping)
    r = scan(_p2(call(G("builtins", "dict"), _ns_with("keys", G("collections", "OrderedDict")))))
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
    assert not bad, bad


def test_plain_keys_attribute_is_data() -> None:
    # a literal list stored under 'keys' is data, not a call
    r = scan(_p2(_ns_with("keys", b"]")))
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
    assert not bad, bad


# pandas DataFrame/Series.__setitem__ runs com.apply_if_callable(key, self): SETITEM on one calls a callable key
# (measured with pandas 3.1.1: print(df) runs when pickle.load reaches the SETITEM)
_DF = G("pandas.core.frame", "DataFrame") + EMPTY_TUPLE + b"\x81"  # NEWOBJ


@pytest.mark.parametrize("key", [G("builtins", "print"), MEMORY], ids=["data-only", "newobj-only"])
def test_pandas_setitem_calls_callable_key(key: bytes) -> None:
    _violation(_p2(_DF + key + b"K\x01" + SETITEM))


def test_pandas_setitem_literal_key_allowed() -> None:
    r = scan(_p2(_DF + U("a") + b"K\x01" + SETITEM))
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
    assert not bad, bad
