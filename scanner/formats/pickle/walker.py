"""The opcode walker: one pickle, symbolically, as the C unpickler would run it.

It keeps a symbolic stack (with MARK fences, like ``_pickle.c``) and memo, and
records, as one typed :class:`WalkResult` (records.py), every import, every call
with the provenance of its callable, every BUILD/mutation target and every
persistent id. It judges nothing: the checks in checks.py do. Calls the unpickler makes into
objects count as calls too: a planted ``__setstate__``/``append``/``extend``/``add``
that BUILD, APPEND(S) or ADDITEMS would invoke, and the arguments that
allowlisted factories and apply helpers call (rules in gadgets.yaml). It never
imports or calls anything. Errors stop the walk but keep everything recorded so far: a loader
runs opcodes as it reads them, so a payload before a broken tail still runs.

Memory is bounded by what the walk retains, not by the stream: literals are
plain Python objects (small ints and repeated short strings shared), containers
keep a few items, and every retained object is charged to a byte budget
(``Budget.weight``) that fails closed with a limit finding. Speed comes from a
hot loop that decodes the common opcodes straight from the cursor's buffer; the
plain loop (``fast=False``) runs every opcode through its handler and is the
reference the hot loop is tested against.
"""

from __future__ import annotations

import _compat_pickle
import bisect
import codecs
import functools
import re
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...limits import Limits
from .arrow import check_array_data
from .cursor import Cursor, LineTooLong, Truncated
from .dtypes import dtype_info
from .frames import straddling_opcode
from .gadgets import ArgRule, Gadget
from .ndarray_state import (
    DTYPE_GLOBALS,
    RECONSTRUCT,
    array_state_problems,
    dtype_state_problems,
    legacy_rng_tuple_problems,
    rng_state_problems,
    spec_objectness,
)
from .nested import static_bytes
from .opcodes import BY_BYTE, HIGHEST_PROTOCOL, Arg
from .records import (
    NOT_LITERAL,
    Anomaly,
    AnomalyKind,
    CallSite,
    ImportRec,
    LiteralCandidate,
    LoaderCall,
    Mutation,
    UntracedCall,
)
from .regex_cost import backtracking_risk
from .sklearn_tree import TREE_GLOBALS, ArrayBytes, tree_state_problems
from .values import (
    EMPTY_TUPLE,
    KEEP_ITEMS,
    LOST_PAIR,
    PLANTED_NAMES,
    Blob,
    Call,
    Coll,
    Dct,
    Glob,
    Opaque,
    Seq,
    Tup,
    V,
    WideColl,
    computed_name,
    held,
    literal_of,
    make_seq,
    mark_stored,
    plain,
    plantable,
    render,
    stored_overflows,
)

JOBLIB_WRAPPER = "joblib.numpy_pickle:NumpyArrayWrapper"
#: generic factories that build an instance of their first argument without calling it (joblib's isinstance sees it)
_INSTANCE_FACTORIES = frozenset({"copyreg:__newobj__", "copyreg:__newobj_ex__", "copyreg:_reconstructor"})
#: getattr(obj, 'name'): how Python pickles bound methods and classmethods; resolved as an attribute import
_GETATTR = frozenset({"builtins:getattr"})
#: cloudpickle's _builtin_type(name) returns getattr(types, name); only these literal names are resolved
#: statically (to the types.* import, judged by profiles and gadgets.yaml). Any other name (CodeType,
#: FunctionType, ...) stays a call of cloudpickle, which the denylist reports as code construction.
_BUILTIN_TYPE = frozenset({"cloudpickle.cloudpickle:_builtin_type"})
_BUILTIN_TYPE_NAMES = frozenset({"MethodType"})
#: NumpyArrayWrapper.__init__(subclass, shape, order, dtype, allow_mmap, numpy_array_alignment_bytes)
_WRAPPER_INIT = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
#: attributes the unpickler looks up on an instance and calls: BUILD -> __setstate__, APPEND(S) -> append/extend,
#: ADDITEMS -> add; __class__/__dict__ set through slot state change what the instance is
HOOK_NAMES = frozenset({"__setstate__", "append", "extend", "add", "__class__", "__dict__"})
#: attributes that code running while loading looks up on an instance and calls with no argument: ``keys`` by
#: dict()/OrderedDict()/defaultdict()/dict.__init__ (copyreg._reconstructor over dict) and ``**mapping``, ``items``
#: by pickle.py's BUILD (joblib) on a state that is not a dict. A value planted under them is invoked, so its own
#: constraints hold (a newobj-only class or a data-only function called there is a call), but it is no hook: a
#: callable the rules allow may sit there.
CALLED_NAMES = frozenset({"keys", "items"})
#: classes whose __setitem__ (SETITEM/SETITEMS on an instance) calls a callable key with the instance:
#: pandas ``com.apply_if_callable(key, self)``
_SETITEM_CALLS_KEY = frozenset(
    {"pandas.core.frame:DataFrame", "pandas:DataFrame", "pandas.core.series:Series", "pandas:Series"}
)
_PLANTED_NAMES = HOOK_NAMES | CALLED_NAMES
assert _PLANTED_NAMES == PLANTED_NAMES  # Dct keeps pairs under these names past its cap
#: bytes one allocation a pickle asks for (bytes(n), ndarray shapes, storages) may reach before it is a finding
MAX_ALLOC = 256 << 20
LITERAL_MIN = 16  # shorter literals cannot hold an encoded pickle worth reporting
MAX_CANDIDATES = 32  # literals kept per walk for the nested-payload check
MAX_LITERAL_CHECK = 8 << 20  # longer literals are not decoded
_TIME_CHECK_EVERY = 4096
#: bytes of symbolic state one top-level stream may retain (memo, containers, literals, records)
MAX_RETAINED = 64 << 20  # default only; scans take ctx.limits.max_pickle_memory
_INTERN_MAX = 1 << 16  # entries in each value-sharing cache
_BIG_LITERAL = 256  # literals at least this long are charged when read, even if dropped right away

# charged sizes (CPython 3.11, 64-bit, GC header included), rounded up
W_TUP = 56  # a Tup is a bare tuple
W_COLL = 64 + 56  # Coll + its tuple/list header
W_ITEM = 8
#: containers one value walk visits when marking the imports a kept value holds (values.mark_stored)
STORED_NODES = 4096
W_CALL = 96
W_DICT = 64 + 56
W_PAIR = 72  # (k, v) tuple in a Dct
W_IMPORT = 400  # ImportRec + Glob + strings
W_SPARSE = 120  # dict slot + int key of a memo entry past the dense range

_U4 = struct.Struct("<I").unpack_from
_PACK = tuple(struct.Struct(f"<{n}q").pack for n in range(4))  # _small_tuple cache keys, by length
_I4 = struct.Struct("<i").unpack_from

_PLAIN_AS_IS = frozenset({str, int, float, bool, type(None)})  # literals plain() returns unchanged
#: gadget path -> the argument positions whose rules judge the value itself (how it is called or which globals it may
#: be); the rest (state set as attributes, sizes, patterns) are kept by what the callable makes
_RULED: dict[str, frozenset[int]] = {}

OPAQUE_PID = Opaque("persistent id")
OPAQUE_BIGINT = Opaque("large int")
OPAQUE_BUFFER = Opaque("out-of-band buffer")
OPAQUE_NDARRAY = Opaque("ndarray")


class Malformed(Exception):
    """The real loader would raise here."""


class LimitHit(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


@dataclass
class Budget:
    """What is left for the whole top-level stream (shared by stacked and nested pickles)."""

    opcodes: int
    weight: int = MAX_RETAINED  # bytes of symbolic state that may still be retained
    cap: int = 0  # the weight this budget started with, for the message

    def __post_init__(self) -> None:
        self.cap = self.cap or self.weight

    def charge(self, n: int) -> None:
        self.weight -= n
        if self.weight < 0:
            raise LimitHit(
                "max_pickle_memory",
                f"pickle analysis would retain more than {self.cap >> 20} MB of symbolic state "
                "(memo, containers, literals); the rest of the stream was not analyzed",
            )


@dataclass
class WalkResult:
    """Everything one walk of one pickle recorded; the checks (checks.py) judge it."""

    start: int
    end: int = -1  # offset just after STOP; -1 when the walk did not reach one
    proto: int = 0
    opcodes: int = 0
    imports: list[ImportRec] = field(default_factory=list)  # with how each was used (calls, passes)
    untraced: list[UntracedCall] = field(default_factory=list)
    mutations: list[Mutation] = field(default_factory=list)
    persistent_ids: list[Any] = field(default_factory=list)  # plain values, as persistent_load gets them
    loader_calls: list[LoaderCall] = field(default_factory=list)
    literals: list[LiteralCandidate] = field(default_factory=list)  # only with collect_literals
    anomalies: list[Anomaly] = field(default_factory=list)  # in stream order
    joblib_arrays: int = 0
    # offset of the first bytes joblib framing consumed that a plain unpickler runs as opcodes
    joblib_skipped: int = -1
    # [start, end) of each object array's pickle joblib read with a fresh unpickler (bounded list)
    joblib_inline: list[tuple[int, int]] = field(default_factory=list)
    value: Any = NOT_LITERAL  # what STOP returned, when it is a plain literal (counts, key lists)
    # what STOP returned when it is a tuple of at most 8 items, each as plain() renders it (an import as
    # 'module:name'): a legacy tar storage header (key, location, storage type); None otherwise
    shape: tuple[Any, ...] | None = None
    error: str | None = None
    error_offset: int | None = None
    error_index: int | None = None
    limit: LimitHit | None = None
    # a value walk (values.mark_stored) ran out of budget: imports may be kept as values unseen
    stored_unknown: bool = False

    @property
    def complete(self) -> bool:
        return self.end >= 0 and self.error is None and self.limit is None


InlinePickleHook = Callable[[Cursor], bool]


#: nn.Module attributes whose values torch calls (torch/nn/modules/module.py, torch 2.13); the *_with_kwargs and
#: *_always_called dicts hold flags, not callables
TORCH_HOOK_DICTS = frozenset(
    {
        "_forward_hooks",
        "_forward_pre_hooks",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
    }
)


#: methods the consuming library calls on a loaded object in its normal use (torch nn.Module, scikit-learn estimator
#: API): an import kept under one of these names in BUILD state shadows the method and is called with the caller's
#: data (red team 9: a data-only builtins.print as Linear.forward / LogisticRegression.predict ran on model(x) /
#: predict(X))
LIBRARY_METHODS = frozenset(
    {
        "forward",
        "_call_impl",
        "_wrapped_call_impl",
        "_load_from_state_dict",
        "_save_to_state_dict",
        "_apply",
        "extra_repr",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "transform",
        "inverse_transform",
        "fit",
        "fit_transform",
        "fit_predict",
        "partial_fit",
        "score",
        "score_samples",
        "staged_predict",
        "apply",
        "generate",
    }
)


def _globs_in(v: Any, budget: int) -> tuple[list[Glob], bool]:
    """Imports held in ``v``: through tuples, lists, mappings and the arguments and added items of calls (an
    ``OrderedDict([(id, hook)])`` or ``OrderedDict()`` + SETITEMS), at most ``budget`` values visited; and whether
    every value was visited."""
    out: list[Glob] = []
    todo, seen = [v], 0
    while todo and seen < budget:
        x = todo.pop()
        seen += 1
        if type(x) is Glob:
            out.append(x)
        elif isinstance(x, Seq):
            todo.extend(x.items)
            todo.extend(x.spill or ())
        elif isinstance(x, Dct):
            todo.extend(y for pair in x.items for y in pair)
            todo.extend(x.spill or ())
        elif isinstance(x, Call):
            todo.append(x.args)
            todo.extend(x.held or ())
    return out, not todo


def _describe(v: Any) -> str:
    """Where a non-imported callable came from, for the untraced-call finding."""
    if not isinstance(v, V):
        return f"a literal {type(v).__name__}"
    if isinstance(v, Call):
        inner = v.func.rec.path if isinstance(v.func, Glob) else "an untraced value"
        return f"the result of calling {inner} ({v.opcode} at offset {v.offset})"
    if isinstance(v, Blob):
        return f"a {v.kind} literal"
    if isinstance(v, Opaque):
        return f"a {v.what} value"
    if isinstance(v, Seq):
        return f"a {v.kind}"
    if isinstance(v, Dct):
        return "a dict"
    return "an unknown value"


_DECIMAL = re.compile(rb"[+-]?(?:0|[1-9][0-9]*)\Z")
_BIG_INT = re.compile(rb"[+-]?(?:0[xXoObB])?[0-9a-fA-F_]+\Z")
_STRTOL = re.compile(rb"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")


def _c_strtol(s: bytes) -> int | None:
    """C ``strtol(s, &end, 0)`` when it consumes all of ``s`` and fits a long; None otherwise."""
    m = _STRTOL.match(s)
    if m is None:
        return None
    digits = m.group(2)
    if digits[:2] in (b"0x", b"0X"):
        v = int(digits[2:], 16)
    elif digits[:1] == b"0":
        v = int(digits, 8)
    else:
        v = int(digits)
    v = -v if m.group(1) == b"-" else v
    return v if -(1 << 63) <= v < (1 << 63) else None


_MISSING = object()
#: an attribute a BUILD state may have set under a key computed at load time (a numpy.str_ equal to its name)
UNKNOWN_ATTR = Opaque("an attribute set under a computed name")


def _state_attr(inst: Call, attr: str) -> Any:
    """The value BUILD stored under ``attr`` on an instance (instance dict or slot state), else _MISSING."""
    return _state_value(inst.state, attr)


def _state_value(st: Any, attr: str) -> Any:
    """The value a BUILD state (dict, or (dict, slot dict)) stores under ``attr``, else _MISSING."""
    parts = list(st.items) if isinstance(st, Seq) and st.kind == "tuple" and st.total == 2 else [st]
    found: Any = _MISSING
    for part in parts:
        if isinstance(part, Dct):
            for k, v in part.items:
                if type(k) is str and k == attr:
                    found = v
                elif computed_name(k):  # may equal attr at load time (numpy.str_): the last write wins
                    found = UNKNOWN_ATTR
    return found


def _dict_parts(state: Any) -> list[Dct] | None:
    """The dicts a BUILD state writes into the instance (dict state and slot state), None if not all literal."""
    parts = (
        list(state.items)
        if isinstance(state, Seq) and state.kind == "tuple" and state.total == 2
        else [state]
    )
    out = [p for p in parts if p is not None]
    return out if all(isinstance(p, Dct) for p in out) else None


def _accumulate(prev: Any, state: Any) -> Any:
    """Instance attributes after another BUILD: without __setstate__, each BUILD adds to what earlier ones set."""
    if prev is None:
        return state
    old, new = _dict_parts(prev), _dict_parts(state)
    if not old or new is None:
        return state
    merged = Dct()
    for d in (*old, *new):
        for k, v in d.items:
            merged.set(k, v)
    return merged


def _not_exact_str(v: Any) -> bool:
    """A value that cannot be an exact ``str`` when the loader gets it (the plain-unpickler view's test).

    A non-text literal, a container, an instance made by ``cls.__new__`` (NEWOBJ) of a class other than str,
    or an import: profiles allowlist classes, functions and constants that are not str, and an import that
    is not allowlisted was reported where it was imported. Call results may be a str.
    """
    if not isinstance(v, V):
        return not isinstance(v, str)
    if isinstance(v, (Seq, Dct, Glob)):
        return True
    if isinstance(v, Blob):
        return v.kind in ("binbytes", "short_binbytes", "binbytes8", "bytearray8", "int")
    return (
        isinstance(v, Call)
        and v.opcode in ("NEWOBJ", "NEWOBJ_EX")
        and isinstance(v.func, Glob)
        and v.func.rec.path != "builtins:str"
    )


def _salted(v: Any) -> bool:
    """Whether ``v``'s hash is randomized per process (a str/bytes, or a tuple holding one), so a pickle cannot
    choose many distinct values with one hash."""
    t = type(v)
    if t is str or t is bytes:
        return True
    return t is tuple and any(type(x) is str or type(x) is bytes for x in v)


def _dotted_ident(s: str) -> bool:
    return bool(s) and all(p.isidentifier() for p in s.split("."))


def _one_of(v: Any, accepted: frozenset[str]) -> bool:
    """Whether an argument is one of a gadget rule's accepted globals, call results or literals."""
    if not isinstance(v, V):
        if (
            "literal" in accepted
            or (type(v) is int and "int" in accepted)
            or (v is None and "none" in accepted)
        ):
            return True
        return type(v) is str and any(_fullmatch(t[3:], v) for t in accepted if t.startswith("re:"))
    if isinstance(v, Blob) and v.kind != "int":
        return "literal" in accepted  # a text/bytes literal longer than max_string: kept as its length only
    if isinstance(v, Glob):
        return v.rec.path in accepted
    if isinstance(v, Call) and isinstance(v.func, Glob):
        return f"result:{v.func.rec.path}" in accepted
    return False


@functools.lru_cache(maxsize=64)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _fullmatch(regex: str, s: str) -> bool:
    """Whether a str literal matches a gadget rule's 're:<regex>' token (whole string)."""
    return _pattern(regex).fullmatch(s) is not None


def _computed(v: Any) -> bool:
    """Whether a size/shape argument is (or holds) a value made at load time (a call result, a persistent id)."""
    if isinstance(v, (Call, Opaque)):
        return True
    return isinstance(v, Seq) and any(isinstance(x, (Call, Opaque)) for x in v.items)


def _elements(v: Any) -> int | None:
    """Element count of a literal size or shape (None when not a literal one). A scalar counts by its magnitude:
    range(-n, 0) spans n elements as much as range(0, n) does, and a negative size is refused, not allocated."""
    if type(v) is int:
        return abs(v)
    if isinstance(v, Seq) and v.complete:
        n = 1
        for d in v.items:
            if type(d) is not int or d < 0:
                return None
            n *= d
        return n
    return None


_MAX_COPIED_MAPPINGS = 256  # calls _call_pairs follows into (memo sharing can make a small stream a wide DAG)


def _call_pairs(v: Call) -> list[tuple[Any, Any]]:
    """(key, value) pairs a mapping built by a call holds: SETITEM'd hook-named keys and literal pairs in its argument,
    and those of a mapping it copies (``OrderedDict(OrderedDict(...))``, ``dict(m)``, ``dict.__init__(obj, m)`` by
    ``copyreg._reconstructor``): a copy keeps the pairs."""
    out: list[tuple[Any, Any]] = []
    todo, seen = [v], {id(v)}
    while todo and len(seen) <= _MAX_COPIED_MAPPINGS:
        c = todo.pop()
        out.extend(tuple(x) for x in c.held or () if type(x) is Tup and len(x) == 2)
        if isinstance(c.args, Seq):
            for a in c.args.items:
                if isinstance(a, Dct):
                    out.extend(a.items)
                elif isinstance(a, Seq):
                    out.extend(tuple(x.items) for x in held(a) if isinstance(x, Seq) and x.total == 2)
                elif isinstance(a, Call) and id(a) not in seen:
                    seen.add(id(a))
                    todo.append(a)
    if todo:  # more nested mappings than followed: a hook under an unknown name
        out.append(tuple(LOST_PAIR))
    return out


def _contents(v: Any) -> list[Any]:
    """What a container argument holds: literal items, or what APPEND/SETITEM added to a constructed one, and what
    a constructed one copied from another (``OrderedDict(OrderedDict(...))``)."""
    if not isinstance(v, Call):
        return held(v)
    out: list[Any] = []
    todo, seen = [v], {id(v)}
    while todo and len(seen) <= _MAX_COPIED_MAPPINGS:
        c = todo.pop()
        out.extend(c.held or ())
        a = c.args
        if a and isinstance(
            a, (Seq, Dct)
        ):  # OrderedDict([(k, hook)]): the items are the constructor's argument
            for x in held(a):
                out.extend(held(x) if isinstance(x, Seq) else (x,))
                if isinstance(x, Call) and id(x) not in seen:
                    seen.add(id(x))
                    todo.append(x)
    if todo:  # more nested containers than followed: what they hold is unknown
        out.append(LOST_PAIR[0])
    return out


def _lw(v: Any) -> int:
    """Bytes a value keeps alive once retained (memo slot, container item) that were not charged when it was made.

    Symbolic values and text/bytes literals are charged when created (a memoized
    string is shared, not copied); numbers when retained; small ints and
    singletons cost nothing.
    """
    t = type(v)
    if t is int:
        return 0 if -5 <= v <= 256 else 32
    if t is float:
        return 24
    return 0


def _freed(items: Any) -> int:
    """Charged bytes of text/bytes literals in ``items`` that nothing but ``items`` holds (about to be dropped)."""
    w = 0
    for v in items:
        t = type(v)
        if (t is str or t is bytes or t is bytearray) and sys.getrefcount(v) <= _SOLE:
            w += sys.getsizeof(v)
    return w


def _sole_refs() -> int:
    """The reference count ``_freed`` sees for an object only its list holds (interpreter-specific)."""
    probe = [bytes(300)]
    for v in probe:
        return sys.getrefcount(v)
    return 0


_SOLE = _sole_refs()


def _items_weight(items: Any) -> int:
    """Charge for a tuple of ``items``: header, slots and the numbers it alone keeps alive (see ``_lw``)."""
    w = W_TUP + W_ITEM * len(items)
    for v in items:
        t = type(v)
        if t is int:
            if not -5 <= v <= 256:
                w += 32
        elif t is float:
            w += 24
    return w


class Machine:
    def __init__(
        self,
        cur: Cursor,
        limits: Limits,
        budget: Budget,
        *,
        out_of_time: Callable[[], bool],
        loader_names: frozenset[str] = frozenset(),
        collect_literals: bool = False,
        on_inline_pickle: InlinePickleHook | None = None,
        joblib: bool = True,
        gadgets: Mapping[str, Gadget] | None = None,
        strict_calls: bool = False,
        whole_lists: bool = False,
        fast: bool = True,
        alias_from: int = -1,
        alias_ranges: list[tuple[int, int]] | None = None,
        on_aliased_import: Callable[[str, str], bool] | None = None,
        kept_watch: Callable[[str], bool] | None = None,
    ) -> None:
        self.cur = cur
        # which imports must be followed into the values that keep them (checks._check_kept: newobj-only classes);
        # values are marked (values.mark_stored) only once such an import happened, and always without a predicate
        self.kept_watch = kept_watch
        self._watching = kept_watch is None
        self.limits = limits
        self.budget = budget
        self.out_of_time = out_of_time
        self.loader_names = loader_names
        self.on_literal = self._candidate if collect_literals else None
        self.on_inline_pickle = on_inline_pickle
        self.joblib = joblib
        self.gadgets = gadgets or {}
        # the plain-loader view of bytes joblib skips: stop where the real loader raises (calling a literal,
        # importing a name no module can have) instead of walking on through array data
        self.strict_calls = strict_calls
        # lists keep every item (within the byte budget): for reading a literal result, not for analysis
        self.whole_lists = whole_lists
        # False: every opcode through its plain handler (the reference the fast loop is tested against)
        self.fast = fast
        # the plain-loader view of a joblib stream: from this offset on (where joblib framing diverged), a memo GET
        # of a key the walk has not stored since is memo aliasing: joblib reads the object array's pickle with a
        # fresh memo, pickle.load with the outer one, so the value is not the one the array's pickle stored.
        # Every GET/PUT then goes through _memo_get/_memo_put (the hot loop leaves them alone).
        self.alias_from = alias_from
        # only GETs inside these ranges (the object arrays' own pickles, which joblib runs with a fresh memo) are
        # aliasing the ending rule applies to; raw array bytes run as opcodes are the plain loader's alone
        self.alias_ranges = alias_ranges or []
        self._alias_starts = [a for a, _ in self.alias_ranges]
        # whether an import assembled from aliased operands is judged (True) or ends the view (False, see _import)
        self.on_aliased_import = on_aliased_import
        self._fresh: set[int] = set()  # memo keys stored at or after alias_from
        self._bound = 0  # calls made so far of gadgets whose result may go only to some callables (result_to)
        self._object_dtypes = False  # a numpy dtype that may hold objects was built (ndarray_state.py)
        # numpy bit generator state dicts outside BUILD (np.random.set_state takes the dict form too)
        self._rng_checked: set[int] = set()  # id() of dicts already judged
        self._rng_sweep = False  # a 'pos'/'buffer_pos' key was set: judge memoized state dicts at STOP
        self._alias_marks: list[tuple[int, Any]] = []  # (stack index, value) of aliased GETs
        self.stack: list[Any] = []
        self.marks: list[int] = []
        # memo: dense keys 0..n-1 (what picklers write) in a list, anything else in a dict
        self.memo: list[Any] = []
        self.sparse: dict[int, Any] = {}
        self.proto = 0
        self.frame_end: int | None = None
        self._frames: list[tuple[int, int, int]] = []  # (FRAME opcode offset, first byte, end) of each frame
        self.res = WalkResult(start=cur.pos)
        self._stack_limit = limits.max_pickle_stack
        self.index = 0
        self.op_offset = cur.pos
        self._tuples: dict[bytes, Seq] = {}
        self._pids: dict[Any, Any] = {}

    # -- stack primitives (C semantics: pops may not cross the innermost MARK) --
    def _fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, v: Any) -> None:
        stack = self.stack
        if len(stack) + len(self.marks) >= self._stack_limit:
            raise LimitHit(
                "max_pickle_stack", f"pickle stack deeper than {self.limits.max_pickle_stack} entries"
            )
        stack.append(v)

    def pop(self) -> Any:
        if len(self.stack) <= self._fence():
            raise Malformed("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= self._fence():
            raise Malformed("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise Malformed("MARK expected but not found")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    def _charge(self, n: int) -> None:
        self.budget.charge(n)

    # -- the walk --
    def run(self) -> WalkResult:
        res = self.res
        overflows = stored_overflows()
        try:
            if self.fast:
                self._loop()
            else:
                self._plain_loop()
            self._frame_at_stop()
            self._frames_aligned()
        except Malformed as exc:
            res.error, res.error_offset, res.error_index = str(exc), self.op_offset, self.index
        except Truncated as exc:
            res.error = f"truncated: {exc}"
            res.error_offset, res.error_index = self.op_offset, self.index
        except LineTooLong as exc:
            res.limit = LimitHit("max_string", f"{exc} (limit {self.limits.max_string})")
            res.error_offset = self.op_offset
        except LimitHit as exc:
            res.limit = exc
            res.error_offset = self.op_offset
        res.proto = self.proto
        res.stored_unknown = stored_overflows() != overflows
        return res

    def _store(self, v: Any) -> None:
        """``v`` is kept where the object's library may call what it holds later (values.mark_stored)."""
        if self._watching:
            mark_stored(v, STORED_NODES)

    def _frame_at_stop(self) -> None:
        """A FRAME that runs past STOP: picklers end the last frame with STOP, but loaders read a whole frame
        before running it, so the next read (torch's next legacy pickle, joblib's stream after an object
        array, any pickle.load loop) starts at the frame's end, not after STOP. The bytes in between are
        walked here as if they came next; the loader skips them and runs what follows."""
        end, fend = self.res.end, self.frame_end
        if end >= 0 and fend is not None and fend > end:
            self._issue(
                "lenient-opcode",
                f"FRAME extends {fend - end} bytes past STOP: a loader reading the next pickle or data from "
                f"this stream resumes at offset {fend}, not {end}",
                {"opcode": "FRAME", "stop_end": end, "frame_end": fend},
            )

    def _frames_aligned(self) -> None:
        """Every frame the walk ran through must end on an opcode boundary. When the next FRAME starts right
        at a frame's end the walk had a boundary there; otherwise the frame's opcode lengths are skipped
        again to find one that straddles its end (pickle.py refuses that, _pickle.c reads the argument from
        after the frame: a different opcode stream)."""
        frames, end = self._frames, self.res.end
        for k, (_op, first, fend) in enumerate(frames):
            if end < 0 or end <= fend:
                return  # the walk stopped inside this frame (_frame_at_stop)
            if k + 1 < len(frames) and frames[k + 1][0] == fend:
                continue
            at = straddling_opcode(self.cur.reader, first, fend)
            if at is not None:
                self.op_offset = at
                raise Malformed(
                    f"opcode at offset {at} runs past the end of its FRAME at offset {fend} (pickle.py refuses "
                    "it, _pickle.c reads the rest from after the frame: loader/scanner differential)"
                )

    def release(self) -> None:
        """Drop the stack, memo and caches once the walk's results have been taken."""
        self.stack = []
        self.memo = []
        self.sparse = {}
        self._tuples, self._pids = {}, {}

    def _table(self) -> list[tuple[Arg, Callable[[Any], Any], str] | None]:
        table: list[tuple[Arg, Callable[[Any], Any], str] | None] = [None] * 256
        for code, op in enumerate(BY_BYTE):
            if op is not None:
                table[code] = (op.arg, getattr(self, "op_" + op.name), op.name)
        return table

    def _noarg_table(self) -> list[Callable[[Any], Any] | None]:
        """Handlers of argument-less opcodes that never move the cursor (BUILD may: joblib data)."""
        out: list[Callable[[Any], Any] | None] = [None] * 256
        for code, op in enumerate(BY_BYTE):
            if op is not None and op.arg is Arg.NONE and op.name not in ("BUILD", "STOP"):
                out[code] = getattr(self, "op_" + op.name)
        return out

    def _checkpoint(self, index: int, stop_at: int) -> None:
        if index >= stop_at:
            raise LimitHit("max_pickle_opcodes", f"more than {self.limits.max_pickle_opcodes} pickle opcodes")
        if index and self.out_of_time():
            raise LimitHit("file_seconds", "time budget for this file ran out inside the pickle")

    def _loop(self) -> None:  # noqa: C901 - one flat dispatch loop is the point
        s: Any  # the scratch value of each opcode branch (tuple, sequence or string)
        cur = self.cur
        res = self.res
        budget = self.budget
        table = self._table()
        noarg = self._noarg_table()
        stack = self.stack
        marks = self.marks
        memo = self.memo
        sparse = self.sparse
        slimit = self._stack_limit
        memo_limit = self.limits.max_pickle_memo
        max_str = min(self.limits.max_string, 1 << 16)
        on_literal = self.on_literal
        charge = budget.charge
        start_index = index = self.index
        stop_at = index + max(budget.opcodes, 0)
        next_check = min(stop_at, index + _TIME_CHECK_EVERY)
        buf = cur._buf
        bstart = cur._buf_start
        p = cur.pos - bstart
        valid = min(len(buf), cur.end - bstart) if p >= 0 else 0
        memo_charged = len(memo)
        aliasing = self.alias_from >= 0
        failed = True
        try:
            while True:
                if index >= next_check:
                    self.op_offset, self.index = bstart + p, index
                    budget.opcodes = stop_at - index
                    if len(memo) > memo_charged:  # dense memo slots, settled in batches
                        charge(W_ITEM * (len(memo) - memo_charged))
                        memo_charged = len(memo)
                    self._checkpoint(index, stop_at)
                    next_check = min(stop_at, index + _TIME_CHECK_EVERY)
                if p >= valid:
                    # refill: the next opcode byte is not in the buffer
                    cur.pos = bstart + p
                    self.op_offset, self.index = cur.pos, index
                    cur.byte()
                    cur.pos -= 1
                    buf = cur._buf
                    bstart = cur._buf_start
                    p = cur.pos - bstart
                    valid = min(len(buf), cur.end - bstart)
                code = buf[p]

                # -- hot opcodes, decoded in place (ordered by frequency in real checkpoints) --
                if code == 0x72 or code == 0x71:  # LONG_BINPUT / BINPUT
                    if code == 0x71:
                        if p + 1 < valid:
                            idx = buf[p + 1]
                            n = 2
                        else:
                            idx = -1
                    elif p + 4 < valid:
                        idx = _U4(buf, p + 1)[0]
                        n = 5
                    else:
                        idx = -1
                    if idx >= 0 and not aliasing and len(stack) > (marks[-1] if marks else 0):
                        if idx < len(memo):
                            memo[idx] = stack[-1]
                            p += n
                            index += 1
                            continue
                        if idx == len(memo) and not sparse and idx < memo_limit:
                            v = stack[-1]
                            t = type(v)
                            if t is int:
                                if not -5 <= v <= 256:
                                    charge(32)
                            elif t is float:
                                charge(24)
                            memo.append(v)
                            p += n
                            index += 1
                            continue
                elif code == 0x68:  # BINGET
                    if p + 1 < valid:
                        idx = buf[p + 1]
                        if idx < len(memo) and not aliasing:
                            if len(stack) + len(marks) >= slimit:
                                self._stack_full()
                            stack.append(memo[idx])
                            p += 2
                            index += 1
                            continue
                elif code == 0x4D:  # BININT2
                    if p + 2 < valid:
                        if len(stack) + len(marks) >= slimit:
                            self._stack_full()
                        stack.append(buf[p + 1] | buf[p + 2] << 8)
                        p += 3
                        index += 1
                        continue
                elif code == 0x4B:  # BININT1
                    if p + 1 < valid:
                        if len(stack) + len(marks) >= slimit:
                            self._stack_full()
                        stack.append(buf[p + 1])
                        p += 2
                        index += 1
                        continue
                elif code == 0x28:  # MARK
                    if len(stack) + len(marks) >= slimit:
                        self._stack_full()
                    marks.append(len(stack))
                    p += 1
                    index += 1
                    continue
                elif code == 0x74:  # TUPLE
                    if marks:
                        k = marks.pop()
                        n = len(stack) - k
                        if n >= 3 and type(stack[k]) is str and stack[k] == "MT19937":
                            self._rng_tuple(stack[k:])
                        if n == 0:
                            s = EMPTY_TUPLE
                        elif n <= 3:
                            s = self._small_tuple(stack[k:])
                        elif n <= KEEP_ITEMS:
                            s = Tup(stack[k:])
                            charge(_items_weight(s))
                        else:
                            s = self._seq("tuple", stack[k:])
                        del stack[k:]
                        stack.append(s)
                        p += 1
                        index += 1
                        continue
                elif code == 0x86:  # TUPLE2
                    if len(stack) - 2 >= (marks[-1] if marks else 0):
                        s = self._small_tuple(stack[-2:])
                        del stack[-2:]
                        stack.append(s)
                        p += 1
                        index += 1
                        continue
                elif code == 0x4A:  # BININT
                    if p + 4 < valid:
                        if len(stack) + len(marks) >= slimit:
                            self._stack_full()
                        stack.append(_I4(buf, p + 1)[0])
                        p += 5
                        index += 1
                        continue
                elif code == 0x58 or code == 0x8C:  # BINUNICODE / SHORT_BINUNICODE
                    if code == 0x8C:
                        h = 2
                        n = buf[p + 1] if p + 1 < valid else -1
                    else:
                        h = 5
                        n = _U4(buf, p + 1)[0] if p + 4 < valid else -1
                    if 0 <= n <= max_str and p + h + n <= valid:
                        try:
                            s = buf[p + h : p + h + n].decode("utf-8", "surrogatepass")
                        except UnicodeDecodeError:
                            s = None
                        if s is not None:
                            if len(stack) + len(marks) >= slimit:
                                self._stack_full()
                            charge(sys.getsizeof(s))  # text is charged once, when read
                            if on_literal is not None and n >= LITERAL_MIN:
                                self.op_offset = bstart + p
                                on_literal(s, bstart + p)
                            stack.append(s)
                            p += h + n
                            index += 1
                            continue
                elif code == 0x29:  # EMPTY_TUPLE
                    if len(stack) + len(marks) >= slimit:
                        self._stack_full()
                    stack.append(EMPTY_TUPLE)
                    p += 1
                    index += 1
                    continue
                elif code == 0x89 or code == 0x88 or code == 0x4E:  # NEWFALSE / NEWTRUE / NONE
                    if len(stack) + len(marks) >= slimit:
                        self._stack_full()
                    stack.append(False if code == 0x89 else (True if code == 0x88 else None))
                    p += 1
                    index += 1
                    continue
                elif code == 0x6A:  # LONG_BINGET
                    if p + 4 < valid:
                        idx = _U4(buf, p + 1)[0]
                        if idx < len(memo) and not aliasing:
                            if len(stack) + len(marks) >= slimit:
                                self._stack_full()
                            stack.append(memo[idx])
                            p += 5
                            index += 1
                            continue
                elif code == 0x52:  # REDUCE
                    if len(stack) - 2 >= (marks[-1] if marks else 0):
                        self.op_offset, self.index = bstart + p, index
                        args = stack.pop()
                        stack.append(self._make_call(stack.pop(), args, "REDUCE"))  # pops 2, pushes 1
                        p += 1
                        index += 1
                        continue
                elif code == 0x2E:  # STOP
                    self.op_offset, self.index = bstart + p, index
                    self._stopped(self.pop())
                    index += 1
                    res.end = bstart + p + 1
                    cur.pos = res.end
                    failed = False
                    return

                # -- argument-less opcodes that never move the cursor --
                h_noarg = noarg[code]
                if h_noarg is not None:
                    self.op_offset, self.index = bstart + p, index
                    h_noarg(None)
                    p += 1
                    index += 1
                    continue

                # -- everything else: through the cursor --
                entry = table[code]
                self.op_offset, self.index = bstart + p, index
                if entry is None:
                    failed = False  # an invalid byte is not an executed opcode
                    raise Malformed(f"invalid opcode 0x{code:02x}")
                kind, handler, name = entry
                cur.pos = bstart + p + 1
                budget.opcodes = stop_at - index - 1
                done = handler(None) if kind is Arg.NONE else handler(self._arg(kind, name))
                stop_at = index + 1 + budget.opcodes
                if next_check > stop_at:
                    next_check = stop_at
                index += 1
                if done:
                    res.end = cur.pos
                    failed = False
                    return
                buf = cur._buf
                bstart = cur._buf_start
                p = cur.pos - bstart
                valid = min(len(buf), cur.end - bstart) if p >= 0 else 0
                if p < 0:
                    p = valid = 0
                    bstart = cur.pos
                    buf = b""
        except (Malformed, LimitHit, Truncated, LineTooLong):
            self.op_offset, self.index = bstart + p, index
            raise
        finally:
            budget.opcodes = stop_at - index - (1 if failed else 0)
            res.opcodes = index - start_index + (1 if failed else 0)
            self.index = index

    def _plain_loop(self) -> None:
        """The reference loop: every opcode read through the cursor and run by its ``op_*`` handler.

        Same accounting as ``_loop`` (opcode count, budget, time checks, batched memo charges), so the fast
        loop's in-place decoding must produce the same walk result (tests/formats/pickle/test_walker_agreement.py).
        """
        cur, res, budget = self.cur, self.res, self.budget
        table = self._table()
        memo = self.memo
        start_index = index = self.index
        stop_at = index + max(budget.opcodes, 0)
        next_check = min(stop_at, index + _TIME_CHECK_EVERY)
        memo_charged = len(memo)
        failed = True
        try:
            while True:
                if index >= next_check:
                    self.op_offset, self.index = cur.pos, index
                    budget.opcodes = stop_at - index
                    if len(memo) > memo_charged:
                        budget.charge(W_ITEM * (len(memo) - memo_charged))
                        memo_charged = len(memo)
                    self._checkpoint(index, stop_at)
                    next_check = min(stop_at, index + _TIME_CHECK_EVERY)
                self.op_offset, self.index = cur.pos, index
                code = cur.byte()
                entry = table[code]
                if entry is None:
                    failed = False  # an invalid byte is not an executed opcode
                    raise Malformed(f"invalid opcode 0x{code:02x}")
                kind, handler, name = entry
                budget.opcodes = stop_at - index - 1
                done = handler(None) if kind is Arg.NONE else handler(self._arg(kind, name))
                stop_at = index + 1 + budget.opcodes
                if next_check > stop_at:
                    next_check = stop_at
                index += 1
                if done:
                    res.end = cur.pos
                    failed = False
                    return
        finally:
            budget.opcodes = stop_at - index - (1 if failed else 0)
            res.opcodes = index - start_index + (1 if failed else 0)
            self.index = index

    def _stack_full(self) -> None:
        raise LimitHit("max_pickle_stack", f"pickle stack deeper than {self.limits.max_pickle_stack} entries")

    def _small_tuple(self, items: list[Any]) -> Seq:
        """A 1-3 item tuple; all-int ones (shapes, strides, offsets) are shared.

        The cache is keyed by the packed bytes, not the tuple: int and tuple hashes are not randomized, and a
        pickle of many distinct tuples with one hash ((c + i * (2**61 - 1),), or a solved last element) made
        every lookup probe the whole cache (quadratic). bytes hash with the process's random key.
        """
        for x in items:
            if type(x) is not int:
                break
        else:
            try:
                key = _PACK[len(items)](*items)
            except struct.error:  # beyond int64: not shared
                key = b""
            shared = self._tuples.get(key) if key else None
            if shared is not None:
                return shared
            s = Tup(items)
            if key and len(self._tuples) < _INTERN_MAX:
                self._tuples[key] = s
                self.budget.charge(W_TUP + W_ITEM * len(items) + 100)
            else:
                self.budget.charge(_items_weight(items))
            return s
        s = Tup(items)
        self.budget.charge(_items_weight(items))
        return s

    def _arg(self, kind: Arg, name: str) -> Any:
        cur = self.cur
        if kind is Arg.NONE:
            return None
        if kind is Arg.U1:
            return cur.byte()
        if kind is Arg.U2:
            return struct.unpack("<H", cur.read(2))[0]
        if kind is Arg.U4:
            return struct.unpack("<I", cur.read(4))[0]
        if kind is Arg.I4:
            return struct.unpack("<i", cur.read(4))[0]
        if kind is Arg.U8:
            return struct.unpack("<Q", cur.read(8))[0]
        if kind is Arg.F8:
            return struct.unpack(">d", cur.read(8))[0]
        if kind is Arg.LINE:
            return cur.line(self.limits.max_string)
        if kind is Arg.TWO_LINES:
            first = cur.line(self.limits.max_string)
            at = cur.pos
            try:
                return first, cur.line(self.limits.max_string)
            except Truncated:
                self._unterminated_import(first, at, name)
                raise
        if kind is Arg.BYTES_U1:
            n = cur.byte()
        elif kind is Arg.BYTES_U4:
            n = struct.unpack("<I", cur.read(4))[0]
        elif kind is Arg.BYTES_I4:
            n = struct.unpack("<i", cur.read(4))[0]
            if n < 0:
                raise Malformed(f"{name} with negative length {n}")
        else:
            n = struct.unpack("<Q", cur.read(8))[0]
        if n > cur.remaining:
            raise Truncated(f"{name} declares {n} bytes but only {cur.remaining} remain")
        keep = self.limits.max_string if name not in ("LONG1", "LONG4") else 64
        if n > keep:
            off = cur.pos
            cur.skip(n)
            return Blob("int" if name.startswith("LONG") else name.lower(), n, off)
        if n >= _BIG_LITERAL:
            self._charge(n + 64)  # before reading; _literal charges the rest
        return cur.read(n)

    def _literal(self, value: Any, raw: int = -1) -> None:
        """Push a text/bytes literal, charging it once; ``raw`` is its encoded length when _arg pre-charged it."""
        w = sys.getsizeof(value) - (raw + 64 if raw >= _BIG_LITERAL else 0)
        if w > 0:
            self._charge(w)
        n = raw if raw >= 0 else len(value)  # encoded length, as the fast loop measures it
        if self.on_literal is not None and isinstance(value, (str, bytes)) and n >= LITERAL_MIN:
            self.on_literal(value, self.op_offset)
        self.push(value)

    # -- imports --
    def _import(
        self, module: str, name: str, opcode: str, dynamic: str | None = None, aliased: bool = False
    ) -> None:
        raw = None
        if self.proto < 3 and dynamic is None:
            key = (module, name)
            if key in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[key]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            if (module, name) != key:
                raw = f"{key[0]}:{key[1]}"
        if dynamic is None and "." in name:
            dynamic = "dotted name (attribute traversal)"
        if self.strict_calls and dynamic is None and not (_dotted_ident(module) and _dotted_ident(name)):
            raise Malformed(f"import of {module!r}:{name!r}, which no module can provide")
        if aliased and self.on_aliased_import is not None and not self.on_aliased_import(module, name):
            self._aliased_import_ends_view(module, name)
        rec = ImportRec(module, name, opcode, self.op_offset, self.index, dynamic=dynamic, raw=raw)
        if not self._watching and self.kept_watch is not None and self.kept_watch(rec.path):
            self._watching = True
        self._charge(W_IMPORT + 2 * (len(module) + len(name)))
        if len(self.res.imports) < 100_000:
            self.res.imports.append(rec)
        self.push(Glob(rec))

    def _aliased_import_ends_view(self, module: str, name: str) -> None:
        """An import the plain view assembled from aliased memo entries, neither allowlisted nor denylisted.

        joblib.load never performs it (the object array's own pickle stored other values under those keys); under
        pickle.load it is whatever module/attribute those outer strings name (a dict key, a class name, an attribute
        name with the array pickle's literal 'dtype'), which the loader fails to import in any environment that has
        no such module attribute. The view ends here as the loader would, on record (a low finding).
        """
        self._issue(
            "aliased-import",
            f"the plain-unpickler view imports {module}.{name} from memo entries the outer stream stored (joblib "
            "reads the object array's pickle with a fresh memo); neither allowlisted nor denylisted, the view "
            "takes it as the import error pickle.load raises there and ends",
            {"global": f"{module}:{name}", "opcode": "STACK_GLOBAL"},
        )
        raise Malformed(f"import of {module}:{name} assembled from aliased memo entries")

    def _unterminated_import(self, first: bytes, at: int, opcode: str) -> None:
        """pickle.py's readline returns an unterminated last line, and load_global/load_inst drop its last byte as
        if it were the newline: ``cos\nsystemX`` at the end of the data imports os.system before the next read
        fails (_pickle.c refuses the line). Record that import; the walk still ends truncated."""
        n = self.cur.end - at
        if not 1 < n <= self.limits.max_string:
            return  # one byte left is an empty name: getattr(module, '') fails after the import
        self.cur.pos = at
        tail = self.cur.read(n)
        try:
            module, name = first.decode("utf-8"), tail[:-1].decode("utf-8")
        except UnicodeDecodeError:
            return
        self._import(module, name, opcode)

    def _text(self, b: bytes, what: str) -> str:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{what} is not valid UTF-8") from None

    # -- calls --
    def _call(self, func: Any, args: Any, opcode: str, kwargs: Any = None) -> None:
        self.push(self._make_call(func, args, opcode, kwargs))

    def _make_call(self, func: Any, args: Any, opcode: str, kwargs: Any = None) -> Any:
        """Record that the loader calls ``func(*args)`` here; the result as a symbolic value."""
        gadget = None
        if isinstance(func, Glob):
            rec = func.rec
            if rec.path in _GETATTR and kwargs is None:
                found = self._static_getattr(rec, args)
                if found is not None:
                    return found
            if rec.path in _BUILTIN_TYPE and kwargs is None and type(args) is Tup and len(args) == 1:
                if type(args[0]) is str and args[0] in _BUILTIN_TYPE_NAMES:
                    rec.called += 1
                    rec.static_calls += 1
                    self._import("types", args[0], "builtin_type")
                    return self.stack.pop()
            rec.called += 1
            if opcode == "NEWOBJ" or opcode == "NEWOBJ_EX":
                rec.new_calls += 1
                if (isinstance(args, Seq) and args.total) or (isinstance(kwargs, Dct) and kwargs.total):
                    rec.new_with_args += 1
            if rec.first_call is None:
                rec.first_call = CallSite(
                    opcode, self.op_offset, render(args), render(kwargs) if kwargs is not None else None
                )
                self._charge(600)
            gadget = self.gadgets.get(rec.path)
            if self._bound:
                self._bound_args(rec.path, args, kwargs)
        else:
            if self.strict_calls and not isinstance(func, (Call, Opaque)):
                raise Malformed(f"{opcode} on {_describe(func)}, which is not callable")
            self._untraced(func, args, opcode)
        if type(args) is Tup:
            for a in args:
                if type(a) is Glob:
                    a.rec.passed += 1
        elif isinstance(args, (Seq, Dct)):
            for a in held(args):
                if isinstance(a, Glob):
                    a.rec.passed += 1
        if isinstance(kwargs, (Seq, Dct)):
            for a in held(kwargs):
                if isinstance(a, Glob):
                    a.rec.passed += 1
        call = Call(func, args, opcode, self.op_offset, kwargs=kwargs)
        self._charge(W_CALL)
        self._store_args(gadget, args, kwargs)
        if isinstance(func, Glob) and func.rec.path in DTYPE_GLOBALS and spec_objectness(args) is not False:
            self._object_dtypes = True
        if gadget is not None:
            self._gadget(gadget, call)
            if gadget.result_to is not None:
                self._bound += 1
        if isinstance(func, Glob) and func.rec.path in self.loader_names and len(self.res.loader_calls) < 64:
            first = args.items[0] if isinstance(args, Seq) and args.items else None
            self.res.loader_calls.append(LoaderCall(func.rec, self.op_offset, first))
        return call

    def _store_args(self, gadget: Gadget | None, args: Any, kwargs: Any) -> None:
        """A call's arguments are kept by what it makes (a constructor stores them, a container holds them), except
        where an argument rule (gadgets.yaml) says how the callable uses that argument."""
        if not self._watching:
            return
        if kwargs is not None:
            mark_stored(kwargs, STORED_NODES)
        if gadget is None or not isinstance(args, Seq):
            mark_stored(args, STORED_NODES)
            return
        ruled = _RULED.get(gadget.path)
        if ruled is None or len(_RULED) > 4096:
            ruled = _RULED[gadget.path] = frozenset(
                pos
                for pos, r in gadget.args
                if r.invoked or r.one_of is not None or r.items is not None or r.calls_with is not None
            )
        for pos, a in enumerate(args.items):
            if pos not in ruled and type(a) not in _PLAIN_AS_IS:
                mark_stored(a, STORED_NODES)
        if args.spill:
            for a in args.spill:
                mark_stored(a, STORED_NODES)

    def _bound_args(self, callee: str, args: Any, kwargs: Any) -> None:
        """A result of a ``result_to`` gadget handed (anywhere in the kept arguments) to a callable it may not reach:
        tensors of attacker data (numpy-rebuilt device tensors) as sparse indices or nested sizes, which only
        torch.load validates."""
        todo, seen = [args, kwargs], 0
        while todo and seen < 512:
            v = todo.pop()
            seen += 1
            if isinstance(v, Call):
                g = self._producer(v)
                if g is not None and g.result_to is not None and callee not in g.result_to:
                    self._issue(
                        "gadget-argument",
                        f"the result of {g.path} is handed to {callee}, which it may reach only as data or through "
                        f"{', '.join(sorted(g.result_to))}",
                        {"callable": g.path, "consumer": callee},
                    )
                    return
            elif isinstance(v, Seq):
                todo.extend(v.items)
            elif isinstance(v, Dct):
                todo.extend(x for pair in v.items for x in pair)

    def _producer(self, v: Call) -> Gadget | None:
        """The gadget whose result ``v`` is: its callable's, or, for an apply helper (``applies``), the applied one's."""
        f = v.func
        g = self.gadgets.get(f.rec.path) if isinstance(f, Glob) else None
        if g is None:
            return None
        for pos, rule in g.args:
            if rule.applies is not None and isinstance(v.args, Seq) and pos < len(v.args.items):
                inner = v.args.items[pos]
                return self.gadgets.get(inner.rec.path) if isinstance(inner, Glob) else None
        return g

    def _static_getattr(self, rec: ImportRec, args: Any) -> Any:
        """``getattr(X, 'name')`` on an imported X, or on an instance of an imported class: the attribute as an import.

        The result is judged like the dotted name ``module:X.name`` (allowlisted
        exactly, denylist reached through it); an attribute planted in the
        instance's BUILD state is that planted value. None when not static.
        """
        if type(args) is not Tup or len(args) not in (2, 3) or type(args[1]) is not str:
            return None
        owner, attr = args[0], args[1]
        if not attr.isidentifier():
            return None
        if isinstance(owner, Call):
            planted = _state_attr(owner, attr)
            if planted is not _MISSING:
                rec.called += 1
                rec.static_calls += 1
                return planted
            cls = self._class_of(owner)
        else:
            cls = owner
        if not isinstance(cls, Glob):
            return None
        rec.called += 1
        rec.static_calls += 1
        made = "()" if cls is not owner else ""  # an attribute of an object made by calling/instantiating cls
        self._import(
            cls.rec.module,
            f"{cls.rec.name}{made}.{attr}",
            "getattr",
            dynamic=f"attribute {attr!r} fetched with builtins.getattr from {cls.rec.path}{made}",
        )
        return self.stack.pop()

    def _class_of(self, inst: Call) -> Any:
        """The class an instance was made from: BUILD-assigned __class__, the called class, or a factory's class argument."""
        if inst.cls is not None:
            return inst.cls
        cls = inst.func
        if isinstance(cls, Glob) and cls.rec.path in _INSTANCE_FACTORIES:
            a = inst.args
            return a.items[0] if isinstance(a, Seq) and a.items else None
        return cls

    def _untraced(self, func: Any, args: Any, opcode: str) -> None:
        if len(self.res.untraced) < 1000:
            self.res.untraced.append(
                UntracedCall(opcode, self.op_offset, self.index, _describe(func), render(args))
            )
            self._charge(1000)

    def _issue(self, kind: AnomalyKind, message: str, evidence: dict[str, Any]) -> None:
        if len(self.res.anomalies) < 1000:
            self.res.anomalies.append(Anomaly(kind, message, self.op_offset, self.index, evidence))
            self._charge(1000)

    def _candidate(self, value: Any, offset: int) -> None:
        """A literal long enough to hide an encoded pickle, for the nested-payload check."""
        found = self.res.literals
        if len(found) < MAX_CANDIDATES and len(value) <= MAX_LITERAL_CHECK:
            found.append(LiteralCandidate(offset, value))

    def _invoke(
        self, v: Any, how: str, only_classes: bool = False, new_only: bool = False, now: bool = False
    ) -> None:
        """``v`` is called by the unpickler or by an allowlisted callable: an import here counts as called.

        ``new_only``: the class is instantiated with ``cls.__new__`` alone (no __init__), like NEWOBJ.
        ``now``: called while loading (not stored for later): an import is called as by REDUCE (its data-only
        constraint holds), and an instance runs its class's ``__call__`` on state the analyzer does not judge
        (a ``functools.partial`` or ``numpy.vectorize`` calls whatever its state names): an untraced call.
        """
        if isinstance(v, Glob):
            rec = v.rec
            rec.called += 1
            if new_only:
                rec.new_calls += 1
            elif not now:
                rec.helper_calls += 1
            if rec.first_call is None:
                rec.first_call = CallSite(how, self.op_offset, "")
                self._charge(600)
        elif not only_classes and (
            isinstance(v, Opaque) or (isinstance(v, Call) and (now or not isinstance(v.func, Glob)))
        ):
            # stored for later, an instance made by an imported callable runs its class's __call__, whose forwarded
            # callables (partial, vectorize: calls_with / build_calls) were judged when it was built
            self._untraced(v, EMPTY_TUPLE, how)

    # -- allowlisted callables that call, instantiate, setattr or allocate from their arguments --
    def _gadget(self, g: Gadget, call: Call) -> None:
        args = call.args
        if not isinstance(args, Seq):
            # a tuple computed at load time (copyreg._reconstructor(tuple, tuple, [x]) and the like) reaches the
            # callable as its arguments just as a literal one does: with argument rules to apply, it fails closed
            if args is not None and not isinstance(args, (Dct, Opaque)) and not g.args:
                return
            self._issue(
                "gadget-argument",
                f"{g.path} gets arguments that cannot be judged statically ({_describe(args)}); it {g.why}",
                {"callable": g.path, "args": render(args)},
            )
            return
        items = args.items
        kwargs = call.kwargs
        if g.args and kwargs is not None and not any(rule.calls_with is not None for _, rule in g.args):
            # a forwarder (calls_with) hands keywords to the callable it stores, whose rules _forwarded applies
            self._judge_kwargs(g, kwargs)
        for pos, rule in g.args:
            if pos >= len(items):
                if pos < args.total:
                    self._issue(
                        "gadget-argument",
                        f"argument {pos} of {g.path} was not kept by the analyzer; it {g.why}",
                        {"callable": g.path, "position": pos},
                    )
                continue
            self._judge_arg(g, call, pos, rule, items[pos])

    def _judge_kwargs(self, g: Gadget, kwargs: Any) -> None:
        """Keyword arguments (NEWOBJ_EX, a partial's keywords) may fill any parameter a positional rule guards
        (``Fraction.__new__(Fraction, numerator='1e30000000')``): each value must pass every rule a literal can
        pass (one_of, alloc); a value for a parameter that is called, set or walked cannot be placed at all."""
        if isinstance(kwargs, Dct) and not kwargs.items and not kwargs.total:
            return
        bad: str | None = None
        if not (isinstance(kwargs, Dct) and kwargs.total == len(kwargs.items)):
            bad = "keyword arguments the analyzer cannot read in full"
        else:
            for k, v in kwargs.items:
                for pos, rule in g.args:
                    if (
                        rule.invoked is not None
                        or rule.applies is not None
                        or rule.state
                        or rule.hooks
                        or rule.items is not None
                        or rule.arrow_array
                        or rule.regex
                    ) or (
                        (rule.one_of is not None and not _one_of(v, rule.one_of))
                        or (rule.alloc and rule.one_of is None and _computed(v))
                    ):
                        bad = f"keyword {render(k, 40)}={render(v, 80)}, which argument {pos}'s rule does not accept"
                        break
                    n = _elements(v) if rule.alloc else None
                    if n is not None and n * rule.alloc > MAX_ALLOC:
                        self._issue(
                            "allocation",
                            f"{g.path} keyword {render(k, 40)} asks for at least {n * rule.alloc} bytes (cap "
                            f"{MAX_ALLOC}): memory exhaustion at load time",
                            {"callable": g.path, "keyword": render(k), "bytes": n * rule.alloc},
                        )
                if bad is not None:
                    break
        if bad is not None:
            self._issue(
                "gadget-argument",
                f"{g.path} gets {bad} (a keyword may fill any guarded parameter); it {g.why}",
                {"callable": g.path, "kwargs": render(kwargs)},
            )

    def _judge_arg(self, g: Gadget, call: Call, pos: int, rule: ArgRule, v: Any) -> None:
        how = f"{g.path} argument {pos}"
        if rule.invoked is not None:
            self._invoke(
                v,
                how,
                only_classes=rule.invoked == "class",
                new_only=rule.invoked == "new",
                now=rule.invoked == "now",
            )
        if rule.calls_with is not None:
            # v is called with the arguments from position calls_with on (a partial's stored arguments,
            # a bound method's self, _reconstructor's state): its own rules judge them
            args = call.args
            if isinstance(args, Seq):
                self._forwarded(v, args.items[rule.calls_with :], call.kwargs, how, complete=args.complete)
        if rule.one_of is not None and not _one_of(v, rule.one_of):
            self._issue(
                "gadget-argument",
                f"argument {pos} of {g.path} is {render(v, 120)}, which it does not accept: it {g.why}",
                {"callable": g.path, "position": pos, "value": render(v), "accepted": sorted(rule.one_of)},
            )
        if rule.alloc:
            n = _elements(v)
            # a one_of rule vouches for the values it accepts; without one, a computed size is unbounded
            if n is None and rule.one_of is None and _computed(v):
                self._issue(
                    "allocation",
                    f"argument {pos} of {g.path} is a size computed at load time ({render(v, 120)}), which the "
                    "analyzer cannot bound: an int(...), numpy scalar or Decimal conversion reaches any size",
                    {"callable": g.path, "position": pos, "value": render(v)},
                )
            elif n is not None and n * rule.alloc > MAX_ALLOC:
                self._issue(
                    "allocation",
                    f"{g.path} allocates at least {n * rule.alloc} bytes (cap {MAX_ALLOC}): memory exhaustion at load time",
                    {"callable": g.path, "position": pos, "bytes": n * rule.alloc},
                )
        if rule.applies is not None and isinstance(v, Glob):
            inner = self.gadgets.get(v.rec.path)
            items = call.args.items if isinstance(call.args, Seq) else ()
            applied = items[rule.applies] if rule.applies < len(items) else None
            if inner is not None and applied is not None:
                # the applied callable's own argument rules hold for the arguments the helper hands it
                self._gadget(inner, Call(v, applied, "REDUCE", call.offset))
                if inner.result_to is not None:
                    self._bound += 1
        if rule.items is not None:
            bad = (
                "not a literal tuple or list the analyzer kept whole"
                if not (isinstance(v, Seq) and v.complete)
                else next((render(x, 120) for x in v.items if not _one_of(x, rule.items)), None)
            )
            if bad is not None:
                self._issue(
                    "gadget-argument",
                    f"argument {pos} of {g.path} holds {bad}, which it does not accept: it {g.why}",
                    {"callable": g.path, "position": pos, "value": render(v), "accepted": sorted(rule.items)},
                )
        if rule.arrow_array:
            problem = check_array_data(v, MAX_ALLOC, self.cur.reader.read)
            if problem is not None:
                kind: AnomalyKind = "allocation" if problem[0] == "allocation" else "gadget-argument"
                self._issue(
                    kind,
                    f"argument {pos} of {g.path}: {problem[1]}; it {g.why}",
                    {"callable": g.path, "position": pos, "value": render(v, 200)},
                )
        if rule.regex:
            items = call.args.items if isinstance(call.args, Seq) else ()
            flags = items[pos + 1] if pos + 1 < len(items) else 0
            risk = backtracking_risk(v, flags) if v is not None else None
            if risk is not None:
                self._issue(
                    "gadget-argument",
                    f"argument {pos} of {g.path} is a regular expression with {risk} ({render(v, 120)}): matching "
                    "it backtracks exponentially, and the compiled pattern's match/search/finditer run at load "
                    "(a REDUCE, spaCy's Tokenizer on its special cases): CPU exhaustion",
                    {"callable": g.path, "position": pos, "value": render(v), "risk": risk},
                )
        if rule.state:
            self._plant(call, v, how, setattr_all=True)
        if rule.hooks:
            for x in _contents(v):
                self._invoke(x, f"{how} (hook)")
        if rule.pickled is not None and isinstance(call.func, Glob):
            # the callable unpickles this argument: a nested payload site (spaCy's lex_attr_getters blob)
            if static_bytes(v) is None:
                self._issue(
                    "gadget-argument",
                    f"argument {pos} of {g.path} is unpickled by it but is not a bytes literal the analyzer can read "
                    f"({render(v, 80)}): its contents cannot be judged",
                    {"callable": g.path, "position": pos, "value": render(v, 200)},
                )
            elif len(self.res.loader_calls) < 64:
                self.res.loader_calls.append(LoaderCall(call.func.rec, self.op_offset, v, rule.pickled))
            else:
                self._issue(
                    "gadget-argument",
                    f"argument {pos} of {g.path} is unpickled by it, and more than 64 such pickles are in this "
                    "stream: the rest were not analyzed",
                    {"callable": g.path, "position": pos},
                )

    def _forwarded(self, f: Any, items: list[Any], kwargs: Any, how: str, complete: bool = True) -> None:
        """``f(*items, ..., **kwargs)`` will run (stored by a partial, a bound method, a base class's __init__).

        An imported ``f`` has its own argument rules applied to the stored arguments; a partial or bound method
        inside another forwards to its own callable with its stored arguments first.
        """
        for _ in range(8):
            if not (isinstance(f, Call) and isinstance(f.func, Glob)):
                break
            fwd = self._forwarding(f)
            if fwd is None:
                return
            f, inner_items, inner_kwargs, ok = fwd
            items = [*inner_items, *items]
            complete = complete and ok
            if kwargs is None:
                kwargs = inner_kwargs
            elif inner_kwargs is not None:
                kwargs = Opaque("merged keyword arguments")
        if not isinstance(f, Glob):
            return
        inner = self.gadgets.get(f.rec.path)
        if inner is None:
            return
        if not complete:
            self._issue(
                "gadget-argument",
                f"{how} passes {f.rec.path} arguments the analyzer did not keep; it {inner.why}",
                {"callable": f.rec.path},
            )
            return
        self._gadget(inner, Call(f, Tup(items), "REDUCE", self.op_offset, kwargs=kwargs))
        if inner.result_to is not None:
            self._bound += 1

    def _forwarding(self, inst: Call) -> tuple[Any, list[Any], Any, bool] | None:
        """(callable, stored args, stored kwargs, complete) an instance forwards its calls to, when its class is a
        forwarder (a calls_with rule, or a BUILD state that replaced what it forwards to); None otherwise."""
        cls = self._class_of(inst)
        g = self.gadgets.get(cls.rec.path) if isinstance(cls, Glob) else None
        if g is None:
            return None
        if inst.state is not None and g.build_calls is not None:
            found = self._build_forward(g, inst.state)
            if found is not None:
                return found
        a = inst.args
        for pos, rule in g.args:
            if rule.calls_with is not None and isinstance(a, Seq) and pos < len(a.items):
                return a.items[pos], list(a.items[rule.calls_with :]), inst.kwargs, a.complete
        return None

    def _build_forward(self, g: Gadget, state: Any) -> tuple[Any, list[Any], Any, bool] | None:
        """What a forwarder's BUILD state makes it call: partial.__setstate__((func, args, kwds, dict)), a
        vectorize's or partialmethod's __dict__ (pyfunc / func, args, keywords)."""
        assert g.build_calls is not None
        fkey, akey, kkey = g.build_calls

        def field(key: int | str | None) -> Any:
            if key is None:
                return None
            if type(key) is int:
                if isinstance(state, Seq) and state.kind == "tuple" and key < len(state.items):
                    return state.items[key]
                return _MISSING
            assert isinstance(key, str)
            return _state_value(state, key)

        f = field(fkey)
        if f is _MISSING:
            return None
        args = field(akey)
        kwargs = field(kkey)
        kwargs = None if kwargs is _MISSING else kwargs
        if args is None or args is _MISSING:
            return f, [], kwargs, True
        if isinstance(args, Seq):
            return f, list(args.items), kwargs, args.complete
        return f, [], kwargs, False

    def _build_forwarder(self, inst: Call, state: Any) -> None:
        """BUILD on a forwarder (partial, vectorize): the state replaces the callable it calls and its stored
        arguments, judged as the constructor's would be."""
        cls = self._class_of(inst)
        g = self.gadgets.get(cls.rec.path) if isinstance(cls, Glob) else None
        if g is None or g.build_calls is None or state is None:
            return
        how = f"{g.path} state (BUILD)"
        found = self._build_forward(g, state)
        if found is None:
            self._issue(
                "gadget-argument",
                f"BUILD gives {g.path} a state whose callable cannot be read statically ({render(state, 120)}); "
                f"it {g.why}",
                {"callable": g.path, "state": render(state)},
            )
            return
        f, items, kwargs, complete = found
        self._invoke(f, how)
        self._forwarded(f, items, kwargs, how, complete=complete)

    def _module_hooks(self, state: Any) -> None:
        """BUILD state the consuming library calls in the object's normal use: a torch ``nn.Module``'s hook dicts
        (``model(x)`` calls ``hook(module, input, output)``, ``state_dict()`` and ``load_state_dict()`` theirs) and an
        import set as a method (``forward``, ``predict``). An import there is called as by REDUCE (a data-only
        function such as ``print`` may not be; red team 9)."""
        parts = [state]
        if isinstance(state, Seq) and state.kind == "tuple" and state.total == 2:
            parts = list(state.items)  # (instance dict, slot state): both end up as attributes
        pairs: list[Any] = []
        for d in parts:
            if isinstance(d, Call):
                pairs.extend(_call_pairs(d))
            elif isinstance(d, Dct):
                pairs.extend(d.items)
        for k, v in pairs:
            if type(k) is str and k in LIBRARY_METHODS and type(v) is Glob:
                # an instance attribute shadows the class's method: model(x) calls self.forward(x), est.predict(X)
                self._invoke(v, f"library method {k} replaced by BUILD state", now=True)
                continue
            if type(k) is str and k in TORCH_HOOK_DICTS:
                found, complete = _globs_in(v, 256)
                for g in found:
                    self._invoke(g, f"torch module hook ({k})", now=True)
                if not complete:
                    self._issue(
                        "hook-planted",
                        f"the torch module hook dict {k} holds more values than the analyzer reads; torch calls "
                        "every hook in it when the module is used",
                        {"attribute": k},
                    )

    def _plant(self, inst: Call, state: Any, how: str, setattr_all: bool = False) -> None:
        """State applied to ``inst`` (BUILD, or a setattr loop): record hooks the unpickler will call on it."""
        dict_state, slot_state = state, None
        if isinstance(state, Seq) and state.kind == "tuple" and state.total == 2:
            dict_state, slot_state = state.items[0], state.items[1]
        for d, by_setattr in ((dict_state, setattr_all), (slot_state, True)):
            if isinstance(
                d, Call
            ):  # a mapping built by a call (dict(...), OrderedDict() + SETITEMs): its pairs
                pairs = _call_pairs(d)
            elif isinstance(d, Dct):
                pairs = d.items
            else:
                continue
            for k, v in pairs:
                if computed_name(k):
                    if isinstance(
                        v, Dct
                    ):  # a computed '__dict__' set by setattr: the mapping becomes the instance dict
                        if by_setattr:
                            self._plant(inst, v, how)
                    elif isinstance(v, (Glob, Call, Opaque)):
                        self._computed_plant(inst, k, (v,), how)
                    continue
                if type(k) is not str or k not in _PLANTED_NAMES:
                    continue
                if k in CALLED_NAMES:
                    if isinstance(v, (Glob, Call, Opaque)):
                        self._invoke(v, f"{how} planted {k}")
                    continue
                if k == "__dict__" and by_setattr and isinstance(v, Dct):
                    self._plant(inst, v, how)
                    continue
                if not isinstance(v, (Glob, Call, Opaque)):
                    continue
                if k == "__class__":
                    if not by_setattr:
                        continue  # an instance-dict '__class__' entry is shadowed by the type's descriptor
                    inst.cls = v
                if inst.hooks is None:
                    inst.hooks = {}
                inst.hooks[k] = v
                self._invoke(v, f"{how} planted {k}")
                self._issue(
                    "hook-planted",
                    f"{how} sets {k!r} on an instance to {render(v, 120)}; the unpickler or later code calls it",
                    {"attribute": k, "value": render(v), "via": how},
                )

    def _stand_in(self, v: Opaque) -> Call:
        """A throwaway instance for an opaque value (a persistent-load result) that BUILD or a container opcode
        acts on: what they plant or hand it is judged as for an instance of an unknown class."""
        return Call(v, EMPTY_TUPLE, "persistent id", self.op_offset)

    def _on_opaque(self, target: Opaque, items: list[Any], opcode: str) -> None:
        """APPEND(S)/SETITEM(S)/ADDITEMS on a persistent-load result: its class is unknown (legacy torch returns
        any object an id names), so a SETITEM key may be called with it (pandas ``apply_if_callable``)."""
        self._hold(self._stand_in(target), items, opcode)
        if opcode in ("SETITEM", "SETITEMS"):
            for i in range(0, len(items) - 1, 2):
                self._invoke(items[i], f"{opcode} key on a persistent-load result", now=True)

    def _computed_plant(self, inst: Call, key: Any, values: Any, how: str) -> None:
        """State sets attributes whose names the walk cannot read (a key computed at load time, such as a
        ``numpy.str_`` equal to 'append', or pairs past the kept ones): each value may be a hook the loader calls."""
        for v in values:
            if not isinstance(v, (Glob, Call, Opaque)):
                continue
            self._invoke(v, f"{how} planted under a computed name")
            self._issue(
                "hook-planted",
                f"{how} sets an attribute named by {render(key, 80)} (not a plain str: a str subclass such as "
                f"numpy.str_ can name append/__setstate__/keys) to {render(v, 120)}; the unpickler or later code "
                "may call it",
                {"attribute": render(key), "value": render(v), "via": how},
            )

    def _hold(self, target: Call, items: Any, opcode: str) -> None:
        """APPEND(S)/SETITEM(S)/ADDITEMS on an object that is not a plain container: its methods get the items."""
        hooks = target.hooks
        if hooks:
            names = {"APPEND": ("append",), "APPENDS": ("extend", "append"), "ADDITEMS": ("add",)}.get(
                opcode, ()
            )
            for n in names:
                hook = hooks.get(n)
                if hook is not None:
                    self._make_call(hook, EMPTY_TUPLE, f"{opcode} via planted {n}")
                    break
        for x in items:
            self._store(x)
            if isinstance(x, (Glob, Call)):
                if isinstance(x, Glob):
                    x.rec.passed += 1
                if target.held is None:
                    target.held = []
                if len(target.held) < KEEP_ITEMS:
                    target.held.append(x)
                    self._charge(W_ITEM)
        if opcode in ("SETITEM", "SETITEMS"):
            cls = self._class_of(target)
            if (
                isinstance(cls, Glob) and cls.rec.path in _SETITEM_CALLS_KEY
            ):  # target[key] = v calls key(target)
                for i in range(0, len(items) - 1, 2):
                    self._invoke(items[i], f"{opcode} key on {cls.rec.path}", now=True)
        if opcode in ("SETITEM", "SETITEMS"):  # a hook-named key: planted if this mapping becomes BUILD state
            for i in range(0, len(items) - 1, 2):
                k, v = items[i], items[i + 1]
                if plantable(k, v):
                    if target.held is None:
                        target.held = []
                    if len(target.held) < 2 * KEEP_ITEMS:
                        target.held.append(Tup((k, v)))
                        self._charge(W_TUP)
                    elif target.held[-1] is not LOST_PAIR:  # no longer kept: stands for a hook under any name
                        target.held[-1] = LOST_PAIR

    def _mutate(self, target: Any, opcode: str, detail: Any = None) -> None:
        if isinstance(target, Glob) and len(self.res.mutations) < 1000:
            self.res.mutations.append(
                Mutation(
                    target.rec,
                    opcode,
                    self.op_offset,
                    self.index,
                    render(detail) if detail is not None else None,
                )
            )
            self._charge(1000)

    def _seq(self, kind: str, items: list[Any]) -> Seq:
        s = make_seq(kind, items)
        w = _items_weight(s.items)
        if isinstance(s, Coll):
            w += W_COLL - W_TUP + (W_ITEM * len(s.spill) if s.spill else 0)
        self._charge(w)
        return s

    def _add(self, target: Coll | Dct, items: list[Any], pairs: bool) -> None:
        """Grow a literal container: only kept items (and spilled callables) stay alive."""
        w = 0
        if pairs:
            assert isinstance(target, Dct)
            for i in range(0, len(items), 2):
                k, v = items[i], items[i + 1]
                kept = target.set(k, v)
                if kept:
                    w += kept + _lw(k) + _lw(v)
        else:
            assert isinstance(target, Coll)
            before = target.total
            if before < 3 <= before + len(items) and target.kind == "list":
                head = [*target.items[:before], *items][:3]  # numpy.random.set_state takes a list too
                if type(head[0]) is str and head[0] == "MT19937":
                    self._rng_tuple(head)
            room = target.cap - len(target.items)
            if room <= 0 and not any(isinstance(v, (Glob, Call)) for v in items):
                target.total += len(items)  # data past the cap: counted, not kept
            else:
                for v in items:
                    kept = target.add(v)
                    if kept:
                        w += kept + _lw(v)
        if w:
            self._charge(w)
        self.budget.weight += _freed(items)  # dropped literals nothing else holds are freed

    # -- opcode handlers: return True on STOP --
    def op_MARK(self, _: Any) -> None:
        if len(self.stack) + len(self.marks) >= self.limits.max_pickle_stack:
            raise LimitHit(
                "max_pickle_stack", f"pickle stack deeper than {self.limits.max_pickle_stack} entries"
            )
        self.marks.append(len(self.stack))

    def op_STOP(self, _: Any) -> bool:
        self._stopped(self.pop())
        return True

    def _stopped(self, top: Any) -> None:
        """What the pickle returns: its literal value, and the shape of a small tuple."""
        self._store(top)  # the caller gets it: a class or function returned is there to be called
        if self._rng_sweep:
            for v in [top, *self.memo, *self.sparse.values()]:
                if isinstance(v, Dct) and v.has("bit_generator"):
                    self._rng_dict(v)
        self.res.value = literal_of(top)
        if type(top) is Tup and len(top) <= 8:
            self.res.shape = tuple(plain(x, 1) for x in top)

    def op_POP(self, _: Any) -> None:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()
        else:
            self.budget.weight += _freed([self.pop()])

    def op_POP_MARK(self, _: Any) -> None:
        self.pop_mark()

    def op_DUP(self, _: Any) -> None:
        self.push(self.top())

    def op_FLOAT(self, a: bytes) -> None:
        try:
            self.push(float(a))
        except ValueError:
            raise Malformed("FLOAT is not a number") from None

    def op_INT(self, a: bytes) -> None:
        if a == b"00":
            self.push(False)
        elif a == b"01":
            self.push(True)
        else:
            self.push(self._parse_int(a, "INT", strtol=True))

    def op_LONG(self, a: bytes) -> None:
        if a.endswith(b"L"):
            a = a[:-1]
        self.push(self._parse_int(a, "LONG", strtol=False))

    def _parse_int(self, a: bytes, what: str, *, strtol: bool) -> Any:
        """The value _pickle.c computes: INT tries C strtol(s, 0) then int(s, 0); LONG int(s, 0).

        Writers only produce plain decimals; any other spelling the loader
        accepts (hex, octal, underscores, padding) is read as the loader reads
        it and flagged, so the walk goes on to the payload after it.
        """
        if _DECIMAL.match(a):
            return int(a) if len(a) <= 4000 else OPAQUE_BIGINT
        s = a.strip()
        if len(s) > 4000:
            if not _BIG_INT.match(s):
                raise Malformed(f"{what} is not a number")
            val: Any = OPAQUE_BIGINT
        else:
            val = _c_strtol(s) if strtol else None
            if val is None:
                try:
                    val = int(s, 0)
                except ValueError:
                    raise Malformed(f"{what} is not a number") from None
        self._issue(
            "lenient-opcode",
            f"{what} argument {a[:40]!r} is not a plain decimal; the unpickler reads it as {render(val, 60)}",
            {"opcode": what, "argument": a[:80].decode("latin-1")},
        )
        return val

    def op_NONE(self, _: Any) -> None:
        self.push(None)

    def op_PERSID(self, a: bytes) -> None:
        try:
            pid = a.decode("ascii")
        except UnicodeDecodeError:
            raise Malformed("persistent id is not ASCII") from None
        self._persid(pid)

    def op_BINPERSID(self, _: Any) -> None:
        self._persid(self.pop())

    def _persid(self, pid: Any) -> None:
        # persistent_load gets the id: imports inside it are handed to a call (legacy torch.load returns the class
        # of a ('module', cls, ...) id as the loaded value)
        self._store(pid)
        if type(pid) is Tup:
            for x in pid:
                if type(x) is Glob:
                    x.rec.passed += 1
        elif isinstance(pid, (Seq, Dct)):
            for x in held(pid):
                if isinstance(x, Glob):
                    x.rec.passed += 1
        ids = self.res.persistent_ids
        if len(ids) < 1_000_000:
            if type(pid) is Tup:  # torch: ('storage', StorageType, key, location, numel)
                value: Any = tuple([x if type(x) in _PLAIN_AS_IS else plain(x, 1) for x in pid])
            else:
                value = plain(pid)
            try:
                # torch repeats one storage's id for every view; only ids whose hash is randomized (a str or bytes
                # in them) are shared: distinct int ids with one hash would make every lookup probe them all
                shared = self._pids.get(value) if _salted(value) else None
            except TypeError:  # a list inside: not shareable
                shared = None
            if shared is None:
                shared = value
                self._charge(200 + len(str(value)))
                if len(self._pids) < _INTERN_MAX and _salted(value):
                    try:
                        self._pids[value] = value
                    except TypeError:
                        pass
            else:
                self._charge(W_ITEM)
            ids.append(shared)
        self.push(OPAQUE_PID)

    def op_REDUCE(self, _: Any) -> None:
        args = self.pop()
        func = self.pop()
        self._call(func, args, "REDUCE")

    def op_STRING(self, a: bytes) -> None:
        a = a.rstrip()
        if len(a) < 2 or a[0] != a[-1] or a[:1] not in (b"'", b'"'):
            raise Malformed("the STRING opcode argument must be quoted")
        try:
            val = codecs.escape_decode(a[1:-1])[0]
        except ValueError:
            raise Malformed("STRING has a bad escape") from None
        self._literal(val.decode("latin-1"))

    def op_UNICODE(self, a: bytes) -> None:
        try:
            self._literal(a.decode("raw-unicode-escape"))
        except UnicodeDecodeError:
            raise Malformed("UNICODE has a bad escape") from None

    def _bin_text(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(a)
            return
        try:
            s = a.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise Malformed("text opcode with invalid UTF-8") from None
        self._literal(s, len(a))

    def _bin_str8(self, a: bytes | Blob) -> None:
        # protocol-0/1 8-bit strings load as str under the default (ASCII/latin1) encodings
        if isinstance(a, Blob):
            self.push(a)
        else:
            self._literal(a.decode("latin-1"), len(a))

    def _bin_bytes(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(a)
        else:
            self._literal(a, len(a))

    op_BINUNICODE = op_SHORT_BINUNICODE = op_BINUNICODE8 = _bin_text
    op_BINSTRING = op_SHORT_BINSTRING = _bin_str8
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = _bin_bytes

    def op_BYTEARRAY8(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(a)
        else:
            self._literal(bytearray(a), len(a))

    def op_APPEND(self, _: Any) -> None:
        v = self.pop()
        target = self.top()
        if isinstance(target, Coll) and target.kind == "list":
            self._add(target, [v], False)
        elif isinstance(target, Call):
            self._hold(target, [v], "APPEND")
        elif isinstance(target, Opaque):
            self._on_opaque(target, [v], "APPEND")
        else:
            self._mutate(target, "APPEND", v)

    def op_APPENDS(self, _: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Coll) and target.kind == "list":
            self._add(target, items, False)
        elif isinstance(target, Call):
            self._hold(target, items, "APPENDS")
        elif isinstance(target, Opaque):
            self._on_opaque(target, items, "APPENDS")
        else:
            self._mutate(target, "APPENDS", self._seq("list", items))

    def op_BUILD(self, _: Any) -> None:
        state = self.pop()
        inst = self.top()
        if isinstance(inst, Glob):
            self._mutate(inst, "BUILD", state)
            return
        if isinstance(inst, Call):
            setstate = inst.hooks.get("__setstate__") if inst.hooks else None
            if setstate is not None:
                # getattr(inst, "__setstate__") finds the planted attribute and calls it with the state
                self._make_call(setstate, self._small_tuple([state]), "BUILD via planted __setstate__")
            else:
                self._numpy_state(inst, state)
                self._build_forwarder(inst, state)
                inst.state = _accumulate(inst.state, state)
                self._plant(inst, state, "BUILD")
                self._store(state)
                self._module_hooks(state)
            if self.joblib and self._is_wrapper(inst):
                self._joblib_array(inst)
        elif isinstance(inst, Opaque):
            # a persistent-load result: a torch storage (a plain Python object: BUILD setattr's on it), or under
            # legacy torch.load any object the id names ('module', obj, ...); planted hooks count as on an instance
            self._plant(self._stand_in(inst), state, "BUILD on a persistent-load result")
            self._store(state)

    def _numpy_state(self, inst: Call, state: Any) -> None:
        """BUILD on a numpy dtype or array: the state numpy.__setstate__ trusts unchecked (ndarray_state.py)."""
        path = inst.func.rec.path if isinstance(inst.func, Glob) else None
        if path in DTYPE_GLOBALS:
            problems = dtype_state_problems(inst, state, self._object_dtypes)
            if isinstance(state, Seq) and state.complete and len(state.items) >= 8:
                f = state.items[7]
                if type(f) is int and f & 0x67:
                    self._object_dtypes = True
        elif path in RECONSTRUCT:
            problems = array_state_problems(inst, state, MAX_ALLOC)
        elif path in TREE_GLOBALS:
            problems = tree_state_problems(inst, state, self.cur.reader.read)
        elif isinstance(state, (Dct, Seq)):
            problems = rng_state_problems(state)
        else:
            return
        for kind, message, evidence in problems:
            self._issue(kind, message, {"callable": path, **evidence})

    def op_GLOBAL(self, a: tuple[bytes, bytes]) -> None:
        self._import(self._text(a[0], "GLOBAL module"), self._text(a[1], "GLOBAL name"), "GLOBAL")

    def op_DICT(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for DICT")
        d = Dct()
        self._charge(W_DICT)
        self._add(d, items, True)
        self._rng_keys(d, items)
        self.push(d)

    def op_EMPTY_DICT(self, _: Any) -> None:
        self._charge(W_DICT)
        self.push(Dct())

    def _memo_get(self, idx: int) -> None:
        if 0 <= idx < len(self.memo):
            self.push(self.memo[idx])
        else:
            try:
                self.push(self.sparse[idx])
            except KeyError:
                raise Malformed(f"memo key {idx} was never stored (GET before PUT)") from None
        at = self.op_offset
        if 0 <= self.alias_from <= at and idx not in self._fresh and self._in_array_pickle(at):
            marks = self._alias_marks
            if len(marks) >= 64:
                del marks[:32]
            marks.append((len(self.stack) - 1, self.stack[-1]))

    def _in_array_pickle(self, at: int) -> bool:
        """Whether offset ``at`` lies in one of the object arrays' own pickles (ranges in stream order)."""
        k = bisect.bisect_right(self._alias_starts, at) - 1
        return k >= 0 and at < self.alias_ranges[k][1]

    def _aliased_operands(self) -> bool:
        """Whether one of the two top stack entries (STACK_GLOBAL's operands) is an aliased memo fetch."""
        stack, n = self.stack, len(self.stack)
        return any(n - 2 <= i < n and stack[i] is v for i, v in self._alias_marks)

    def op_GET(self, a: bytes) -> None:
        try:
            idx = int(a)
        except ValueError:
            raise Malformed("GET index is not a number") from None
        self._memo_get(idx)

    op_BINGET = op_LONG_BINGET = _memo_get

    def _memo_put(self, idx: int) -> None:
        if idx < 0:
            raise Malformed("negative PUT index")
        if idx > sys.maxsize:  # _pickle.c: PyLong_AsSsize_t raises OverflowError (and no int64 hash collides)
            raise Malformed(f"PUT index {idx} does not fit a Py_ssize_t")
        v = self.top()
        memo, sparse = self.memo, self.sparse
        if 0 <= self.alias_from <= self.op_offset:
            self._fresh.add(idx)
        if idx < len(memo):
            memo[idx] = v
            return
        if idx not in sparse and len(memo) + len(sparse) >= self.limits.max_pickle_memo:
            raise LimitHit(
                "max_pickle_memo", f"pickle memo larger than {self.limits.max_pickle_memo} entries"
            )
        w = 0 if isinstance(v, V) else _lw(v)
        if idx == len(memo):
            memo.append(v)
            while len(memo) in sparse:  # keys written out of order join the dense run
                memo.append(sparse.pop(len(memo)))
        else:
            if idx not in sparse:
                w += W_SPARSE
            sparse[idx] = v
        if w:
            self._charge(w)

    def op_PUT(self, a: bytes) -> None:
        try:
            idx = int(a)
        except ValueError:
            raise Malformed("PUT index is not a number") from None
        self._memo_put(idx)

    op_BINPUT = op_LONG_BINPUT = _memo_put

    def op_MEMOIZE(self, _: Any) -> None:
        self._memo_put(len(self.memo) + len(self.sparse))

    def op_INST(self, a: tuple[bytes, bytes]) -> None:
        module, name = self._text(a[0], "INST module"), self._text(a[1], "INST name")
        if not self.marks:
            # pickle.py's load_inst calls find_class (importing the module) before it looks for the MARK
            self._import(module, name, "INST")
            raise Malformed("MARK expected but not found (INST; pickle.py imported the class first)")
        args = self.pop_mark()
        self._import(module, name, "INST")
        cls = self.pop()
        self._call(cls, self._seq("tuple", args), "INST")

    def op_OBJ(self, _: Any) -> None:
        items = self.pop_mark()
        if not items:
            raise Malformed("OBJ without a class")
        self._call(items[0], self._seq("tuple", items[1:]), "OBJ")

    def op_LIST(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) >= 3 and type(items[0]) is str and items[0] == "MT19937":
            self._rng_tuple(items)
        if self.whole_lists:
            self._charge(W_COLL + _items_weight(items))
            self.push(WideColl("list", items, len(items)))
        else:
            self.push(self._seq("list", items))

    def op_EMPTY_LIST(self, _: Any) -> None:
        self._charge(W_COLL)
        self.push(WideColl("list", []) if self.whole_lists else Coll("list", []))

    def op_SETITEM(self, _: Any) -> None:
        v = self.pop()
        k = self.pop()
        target = self.top()
        if isinstance(target, Dct):
            self._add(target, [k, v], True)
            self._rng_keys(target, [k, v])
        elif isinstance(target, Call):
            self._hold(target, [k, v], "SETITEM")
        elif isinstance(target, Opaque):
            self._on_opaque(target, [k, v], "SETITEM")
        else:
            self._mutate(target, "SETITEM", self._seq("tuple", [k, v]))

    def op_SETITEMS(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for SETITEMS")
        target = self.top()
        if isinstance(target, Dct):
            self._add(target, items, True)
            self._rng_keys(target, items)
        elif isinstance(target, Call):
            self._hold(target, items, "SETITEMS")
        elif isinstance(target, Opaque):
            self._on_opaque(target, items, "SETITEMS")
        else:
            self._mutate(target, "SETITEMS", self._seq("tuple", items))

    def _rng_keys(self, d: Dct, items: list[Any]) -> None:
        """A dict that gets a ``bit_generator`` key is a numpy bit generator state wherever it sits: the data a
        consumer hands to ``np.random.set_state`` (Hugging Face ``rng_state.pth``) takes the dict form as well as
        the legacy tuple, and stores ``pos`` unchecked. A ``pos``/``buffer_pos`` set later (a memoized inner dict
        changed after its holder) is caught by the sweep at STOP."""
        for k in items[::2]:
            if type(k) is str:
                if k == "bit_generator":
                    self._rng_dict(d)
                elif k in ("pos", "buffer_pos"):
                    self._rng_sweep = True

    def _rng_dict(self, d: Dct) -> None:
        if id(d) in self._rng_checked:
            return
        problems = rng_state_problems(d)
        if problems:
            self._rng_checked.add(id(d))
        for kind, message, evidence in problems:
            self._issue(kind, message, evidence)

    def _rng_tuple(self, items: list[Any]) -> None:
        """numpy's legacy ``('MT19937', key, pos, ...)`` state (ndarray_state.legacy_rng_tuple_problems)."""
        for kind, message, evidence in legacy_rng_tuple_problems(items):
            self._issue(kind, message, evidence)

    def op_TUPLE(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) >= 3 and type(items[0]) is str and items[0] == "MT19937":
            self._rng_tuple(items)
        self.push(
            self._small_tuple(items)
            if 0 < len(items) <= 3
            else self._seq("tuple", items)
            if items
            else EMPTY_TUPLE
        )

    def op_EMPTY_TUPLE(self, _: Any) -> None:
        self.push(EMPTY_TUPLE)

    def _tuple_n(self, n: int) -> None:
        if len(self.stack) - n < self._fence():
            raise Malformed("stack underflow")
        items = self.stack[-n:]
        del self.stack[-n:]
        if n == 3 and type(items[0]) is str and items[0] == "MT19937":
            self._rng_tuple(items)
        self.push(self._small_tuple(items))

    def op_TUPLE1(self, _: Any) -> None:
        self._tuple_n(1)

    def op_TUPLE2(self, _: Any) -> None:
        self._tuple_n(2)

    def op_TUPLE3(self, _: Any) -> None:
        self._tuple_n(3)

    def op_BININT(self, a: int) -> None:
        self.push(a)

    op_BININT1 = op_BININT2 = op_BININT

    def op_BINFLOAT(self, a: float) -> None:
        self.push(a)

    def op_PROTO(self, a: int) -> None:
        if a > HIGHEST_PROTOCOL:
            raise Malformed(f"unsupported pickle protocol {a}")
        self.proto = a

    def op_NEWOBJ(self, _: Any) -> None:
        args = self.pop()
        cls = self.pop()
        self._call(cls, args, "NEWOBJ")

    def op_NEWOBJ_EX(self, _: Any) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self._call(cls, args, "NEWOBJ_EX", kwargs=kwargs)

    def _ext(self, code: int) -> None:
        # The unpickler looks the code up in copyreg's extension registry and raises ValueError for an
        # unregistered one. The registry is empty in every loader modelled here (CPython registers none, nor
        # do torch, numpy, pandas, joblib or scikit-learn): only the stream itself can fill it, by calling
        # something it imported (copyreg.add_extension). Before any import the load ends here, as it does for
        # random bytes that happen to read as EXT (a raw float32 blob: BINFLOAT, EXT2, STOP).
        if code <= 0:
            raise Malformed("EXT code must be positive")
        if not self.res.imports:
            raise Malformed(
                f"unregistered extension code {code}: the unpickler raises here (copyreg's registry is empty)"
            )
        self._import("copyreg", f"<extension {code}>", "EXT", dynamic=f"extension registry code {code}")

    op_EXT1 = op_EXT2 = op_EXT4 = _ext

    def op_NEWTRUE(self, _: Any) -> None:
        self.push(True)

    def op_NEWFALSE(self, _: Any) -> None:
        self.push(False)

    def _long_bin(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(OPAQUE_BIGINT)
        else:
            self.push(int.from_bytes(a, "little", signed=True))

    op_LONG1 = op_LONG4 = _long_bin

    def op_EMPTY_SET(self, _: Any) -> None:
        self._charge(W_COLL)
        self.push(Coll("set", []))

    def op_ADDITEMS(self, _: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Coll) and target.kind == "set":
            self._add(target, items, False)
        elif isinstance(target, Call):
            self._hold(target, items, "ADDITEMS")
        elif isinstance(target, Opaque):
            self._on_opaque(target, items, "ADDITEMS")
        else:
            self._mutate(target, "ADDITEMS", self._seq("tuple", items))

    def op_FROZENSET(self, _: Any) -> None:
        self.push(self._seq("frozenset", self.pop_mark()))

    def op_STACK_GLOBAL(self, _: Any) -> None:
        aliased = bool(self._alias_marks) and self._aliased_operands()
        name = self.pop()
        module = self.pop()
        if not isinstance(module, V) and not isinstance(name, V):
            if not (isinstance(module, str) and isinstance(name, str)):
                raise Malformed("STACK_GLOBAL requires str operands")
            self._import(module, name, "STACK_GLOBAL", aliased=aliased)
            return
        if self.strict_calls and (_not_exact_str(module) or _not_exact_str(name)):
            # _pickle.c checks PyUnicode_CheckExact on both operands before importing anything
            raise Malformed(
                f"STACK_GLOBAL requires str (module: {_describe(module)}; name: {_describe(name)})"
            )
        why = f"operands are not string literals (module: {_describe(module)}; name: {_describe(name)})"
        mod_s = module if isinstance(module, str) else "<dynamic>"
        name_s = name if isinstance(name, str) else "<dynamic>"
        self._import(mod_s, name_s, "STACK_GLOBAL", dynamic=why)

    def op_FRAME(self, n: int) -> None:
        if n > self.cur.remaining:
            raise Truncated(f"FRAME declares {n} bytes but only {self.cur.remaining} remain")
        if self.frame_end is not None and self.op_offset < self.frame_end:
            # pickle.py refuses this; _pickle.c reads on, so the two loaders run different opcodes
            raise Malformed(
                f"FRAME opens inside the previous frame, which ends at offset {self.frame_end} "
                "(pickle.py refuses it, _pickle.c reads on: loader/scanner differential)"
            )
        self.frame_end = self.cur.pos + n
        self._frames.append((self.op_offset, self.cur.pos, self.frame_end))

    def op_NEXT_BUFFER(self, _: Any) -> None:
        self.push(OPAQUE_BUFFER)

    def op_READONLY_BUFFER(self, _: Any) -> None:
        self.top()

    # -- joblib: raw array bytes inlined after the wrapper's BUILD --
    def _is_wrapper(self, inst: Call) -> bool:
        """joblib's test after every BUILD: ``isinstance(stack[-1], NumpyArrayWrapper)``, however the instance was made."""
        cls = self._class_of(inst)
        return isinstance(cls, Glob) and cls.rec.path == JOBLIB_WRAPPER

    def _wrapper_attrs(self, inst: Call) -> dict[str, Any] | None:
        """The wrapper's instance attributes: __init__ arguments (when the class itself was called) plus BUILD state."""
        attrs: dict[str, Any] = {}
        if (
            inst.cls is None
            and isinstance(inst.func, Glob)
            and inst.func.rec.path == JOBLIB_WRAPPER
            and inst.opcode in ("REDUCE", "INST", "OBJ")
        ):
            a = inst.args
            if not (isinstance(a, Seq) and a.complete):
                return None
            attrs.update(zip(_WRAPPER_INIT, a.items, strict=False))
            attrs.setdefault("allow_mmap", False)
            attrs.setdefault(
                "numpy_array_alignment_bytes", 16
            )  # __init__ default (NUMPY_ARRAY_ALIGNMENT_BYTES)
        state = inst.state
        parts = [state]
        if isinstance(state, Seq) and state.kind == "tuple" and state.total == 2:
            parts = list(state.items)
        for part in parts:
            if part is None:
                continue
            if not isinstance(part, Dct) or part.total != len(part.items):
                return None
            for k, v in part.items:
                if type(k) is str:
                    attrs[k] = v
                elif computed_name(
                    k
                ):  # a numpy.str_('shape') replaces 'shape' in the loader's dict: size unknown
                    return None
        return attrs

    def _joblib_array(self, inst: Call) -> None:
        """NumpyArrayWrapper.read: the array joblib reads from the stream right after this BUILD."""
        attrs = self._wrapper_attrs(inst)
        if attrs is None:
            raise Malformed("joblib array wrapper state is not a literal dict; array size unknown")
        self._invoke(
            attrs.get("subclass"), "joblib NumpyArrayWrapper.read subclass", only_classes=True, new_only=True
        )
        shape_v = attrs.get("shape")
        info = dtype_info(attrs.get("dtype"))
        if info is None:
            raise Malformed("joblib array wrapper dtype cannot be derived statically")
        itemsize, has_object = info
        start = self.cur.pos
        if not (isinstance(shape_v, Seq) and shape_v.complete):
            raise Malformed("joblib array wrapper shape is not a literal tuple")
        count = _elements(shape_v)
        if count is None:
            raise Malformed("joblib array wrapper shape holds a non-integer")
        if self.frame_end is not None and self.cur.pos < self.frame_end:
            raise Malformed("joblib array data starts inside a pickle FRAME (loader/scanner differential)")
        self.res.joblib_arrays += 1
        if has_object:
            # joblib >= 1.6 reads a nested pickle whatever the count (a fresh pickle._Unpickler on the file)
            if self.on_inline_pickle is None or not self.on_inline_pickle(self.cur):
                raise Malformed("object array pickle inlined after a joblib wrapper could not be analyzed")
            if len(self.res.joblib_inline) < 4096:
                self.res.joblib_inline.append((start, self.cur.pos))
            if self.res.joblib_skipped < 0:
                self.res.joblib_skipped = start
        else:
            align = attrs.get("numpy_array_alignment_bytes")
            if align is not None and type(align) is not int:
                raise Malformed("joblib array alignment is not a literal")
            if align is not None:
                pad = self.cur.byte()
                self.cur.skip(pad)
            nbytes = count * itemsize
            if nbytes > self.cur.remaining:
                raise Truncated(f"joblib array declares {nbytes} bytes but only {self.cur.remaining} remain")
            data_at = self.cur.pos
            self.cur.skip(nbytes)
            if self.cur.pos > start and self.res.joblib_skipped < 0:
                self.res.joblib_skipped = start  # a plain unpickler runs these bytes as opcodes
            # where the bytes are, for state checks that read them (sklearn_tree.py)
            self.stack[-1] = ArrayBytes(data_at, nbytes, attrs.get("dtype"))
            return
        self.stack[-1] = OPAQUE_NDARRAY
