"""Red team 6: BUILD state that plants a called attribute under a name the walk could not read.

Two shapes reached a load-time call of an allowlisted newobj-only class (``joblib.memory.Memory(path)``, which
creates the directory ``path``) and were allowed:

- the key is a ``numpy.str_`` (``numpy._core.multiarray.scalar`` of a ``U`` dtype, allowlisted): C pickle's
  BUILD stores it in the instance dict as is and ``setattr`` takes str subclasses, so ``obj.append`` finds it
  (its hash and equality are the str's); the walker skipped every key that was not an exact ``str``;
- the key is a plain ``'append'`` after 64 other keys (a dict, an ``OrderedDict``/``dict`` of a pair list, SETITEMs
  on an ``OrderedDict``): the walker keeps the first 64 pairs or items and only the callables of the rest, so the
  pair fell out of sight. Pairs that could plant a hook are now kept past the cap, and once even those overflow a
  marker pair stands for a hook under an unknown name;
- the state is a copy of a mapping that holds the pair (``OrderedDict(OrderedDict(...))``, ``dict(m)``,
  ``copyreg._reconstructor(OrderedDict, dict, m)``): the walker read the pairs of the outer call's literal
  arguments only.

Confirmed with CPython 3.11 ``pickle.loads`` (C), ``pickle._Unpickler`` and joblib 1.6 ``joblib.load`` (numpy 2.4):
each variant below created its directory. The bytes are built here; nothing is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity

from .assembler import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    NONE,
    PROTO,
    REDUCE,
    SETITEM,
    SETITEMS,
    STOP,
    TUPLE2,
    G,
    U,
    call,
    scan,
    worst,
)

MEMORY = G("joblib.memory", "Memory")  # allowlisted newobj-only: Memory(location) creates the directory
NS = G("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE


def numpy_str(name: str) -> bytes:
    """What pickle.dumps(numpy.str_(name)) writes with numpy 2: scalar(dtype('U<n>'), encode(<utf-32>, 'latin1'))."""
    raw = "".join(c + "\0\0\0" for c in name).encode()
    dtype = call(G("numpy", "dtype"), U(f"U{len(name)}"), b"\x89", b"\x88")
    state = MARK + b"K\x03" + U("<") + b"NNN" + b"K" + bytes([4 * len(name)]) + b"K\x04K\x08" + b"t"
    data = call(G("_codecs", "encode"), b"X" + struct.pack("<I", len(raw)) + raw, U("latin1"))
    return G("numpy._core.multiarray", "scalar") + MARK + dtype + state + BUILD + data + b"tR"


def _pairs(n: int) -> bytes:
    return b"".join(MARK + U(f"k{i}") + b"K\x01" + b"t" for i in range(n))


def _append(path: str) -> bytes:
    return U(path) + b"a"  # APPEND on a non-list: obj.append(path)


_HOOKED = call(G("collections", "OrderedDict")) + U("append") + MEMORY + SETITEM  # OrderedDict(append=Memory)

VARIANTS = {
    "dict-state-numpy-str-key": NS
    + EMPTY_DICT
    + numpy_str("append")
    + MEMORY
    + SETITEM
    + BUILD
    + _append("/tmp/mw-rt6"),
    "slot-state-numpy-str-key": NS
    + NONE
    + EMPTY_DICT
    + numpy_str("append")
    + MEMORY
    + SETITEM
    + TUPLE2
    + BUILD
    + _append("/tmp/mw-rt6"),
    "ordereddict-state-numpy-str-key": NS
    + call(G("collections", "OrderedDict"))
    + numpy_str("append")
    + MEMORY
    + SETITEM
    + BUILD
    + _append("/tmp/mw-rt6"),
    "hook-name-after-100-keys": NS
    + EMPTY_DICT
    + MARK
    + b"".join(U(f"k{i}") + b"K\x01" for i in range(100))
    + U("append")
    + MEMORY
    + SETITEMS
    + BUILD
    + _append("/tmp/mw-rt6"),
    "ordereddict-of-101-pairs": NS
    + call(G("collections", "OrderedDict"), MARK + _pairs(100) + MARK + U("append") + MEMORY + b"t" + b"l")
    + BUILD
    + _append("/tmp/mw-rt6"),
    "dict-of-101-pairs": NS
    + call(G("builtins", "dict"), MARK + _pairs(100) + MARK + U("append") + MEMORY + b"t" + b"l")
    + BUILD
    + _append("/tmp/mw-rt6"),
    # a mapping copied from another one (the copy keeps the pairs): dict(m), OrderedDict(m), dict.__init__(obj, m)
    "ordereddict-of-ordereddict": NS
    + call(G("collections", "OrderedDict"), _HOOKED)
    + BUILD
    + _append("/tmp/mw-rt6"),
    "dict-of-ordereddict": NS + call(G("builtins", "dict"), _HOOKED) + BUILD + _append("/tmp/mw-rt6"),
    "reconstructor-over-ordereddict": NS
    + call(G("copyreg", "_reconstructor"), G("collections", "OrderedDict"), G("builtins", "dict"), _HOOKED)
    + BUILD
    + _append("/tmp/mw-rt6"),
}

# 64 plain keys, then 70 ('keys', OrderedDict) pairs (an allowed callable under a called name), then the hook:
# more (name, callable) pairs than any cap keeps
_KEYS = b"".join(U("keys") + G("collections", "OrderedDict") for _ in range(70))
OVERFLOW = {
    "dict": NS
    + EMPTY_DICT
    + MARK
    + b"".join(U(f"k{i}") + b"K\x01" for i in range(64))
    + _KEYS
    + U("append")
    + MEMORY
    + SETITEMS
    + BUILD,
    "setitems-on-ordereddict": NS
    + call(G("collections", "OrderedDict"))
    + MARK
    + _KEYS
    + _KEYS
    + U("append")
    + MEMORY
    + SETITEMS
    + BUILD,
    "pair-list": NS
    + call(
        G("collections", "OrderedDict"),
        MARK
        + _pairs(64)
        + b"".join(MARK + U("keys") + G("collections", "OrderedDict") + b"t" for _ in range(70))
        + MARK
        + U("append")
        + MEMORY
        + b"t"
        + b"l",
    )
    + BUILD,
}


@pytest.mark.parametrize("body", list(VARIANTS.values()), ids=list(VARIANTS))
def test_hook_planted_under_an_unread_name_blocks(body: bytes) -> None:
    r = scan(PROTO(2) + body + STOP)
    found = {f.rule_id for f in r.findings}
    assert worst(r) is Severity.CRITICAL, found
    assert {"PICKLE-HOOK-PLANTED", "PICKLE-CONSTRAINT-VIOLATION"} <= found, [
        (f.rule_id, f.message) for f in r.findings
    ]


@pytest.mark.parametrize("body", list(OVERFLOW.values()), ids=list(OVERFLOW))
def test_hook_pairs_past_every_cap_block(body: bytes) -> None:
    r = scan(PROTO(2) + body + _append("/tmp/mw-rt6") + STOP)
    found = {f.rule_id for f in r.findings}
    assert worst(r) is Severity.CRITICAL, found
    assert "PICKLE-HOOK-PLANTED" in found, [(f.rule_id, f.message) for f in r.findings]


def test_numpy_str_key_naming_a_dunder_dict_is_followed() -> None:
    # setattr(obj, numpy.str_('__dict__'), {'append': Memory}) replaces the instance dict of a plain class
    body = NS + NONE + EMPTY_DICT + numpy_str("__dict__") + EMPTY_DICT + U("append") + MEMORY + SETITEM
    body += SETITEM + TUPLE2 + BUILD
    r = scan(PROTO(2) + body + STOP)
    assert "PICKLE-HOOK-PLANTED" in {f.rule_id for f in r.findings}


def test_many_plain_attributes_with_object_values_stay_allowed() -> None:
    # an estimator-like state: 200 attributes, object values (OrderedDicts) past the kept pairs, str keys
    pairs = b"".join(U(f"attr_{i}") + call(G("collections", "OrderedDict")) for i in range(200))
    r = scan(PROTO(2) + NS + EMPTY_DICT + MARK + pairs + SETITEMS + BUILD + STOP)
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]


def test_numpy_str_key_with_a_literal_value_stays_allowed() -> None:
    r = scan(PROTO(2) + NS + EMPTY_DICT + numpy_str("append") + U("x") + SETITEM + BUILD + STOP)
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]


def test_numpy_str_data_stays_allowed() -> None:
    r = scan(
        PROTO(2) + EMPTY_DICT + numpy_str("label") + call(G("collections", "OrderedDict")) + SETITEM + STOP
    )
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]
