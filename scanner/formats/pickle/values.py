"""Symbolic values on the walker's stack and in its memo.

Literals (str, bytes, bytearray, int, float, bool, None) are kept as the plain
Python objects themselves: a wrapper per literal would cost more than the
literal, and a torch checkpoint holds millions of them. Everything the walker
cannot know as a literal is a ``V`` subclass (all with ``__slots__``).

Values are shared by reference (as in the real unpickler), so memo indirection
and re-PUT overwrites resolve to the same object the loader would see.
Containers keep only their first few items plus any imported callables that
follow: enough to read call arguments, dtype states and persistent ids, never
proportional to the stream.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .records import NOT_LITERAL, ImportRec

KEEP_ITEMS = 64
#: attribute names whose planting by BUILD state the walker follows (walker.HOOK_NAMES | walker.CALLED_NAMES)
PLANTED_NAMES = frozenset(
    {"__setstate__", "append", "extend", "add", "__class__", "__dict__", "keys", "items"}
)


class V:
    """Base of all non-literal symbolic values."""

    __slots__ = ()


def is_lit(v: Any) -> bool:
    """A literal is any stack value that is not a symbolic ``V``."""
    return not isinstance(v, V)


@dataclass(eq=False, slots=True)
class Blob(V):
    """A literal too large to keep; only its kind and length are known."""

    kind: str
    length: int
    offset: int = -1


@dataclass(eq=False, slots=True)
class Glob(V):
    """The object an import resolved to (a class, function or module attribute)."""

    rec: ImportRec


@dataclass(eq=False, slots=True)
class Call(V):
    """The result of REDUCE / OBJ / INST / NEWOBJ(_EX)."""

    func: Any
    args: Any
    opcode: str
    offset: int
    state: Any = None  # last BUILD state applied to the result
    hooks: dict[str, Any] | None = (
        None  # attributes BUILD planted that the unpickler calls (__setstate__, append ...)
    )
    cls: Any = None  # a class assigned to __class__ by BUILD slot state (changes what isinstance sees)
    held: list[Any] | None = None  # imports/calls added to this object by APPEND(S)/SETITEM(S)/ADDITEMS
    kwargs: Any = None  # keyword arguments (NEWOBJ_EX, a partial's stored keywords)


@dataclass(eq=False, slots=True)
class Opaque(V):
    """A value the walker cannot know: a persistent-load result, a buffer, a huge integer."""

    what: str


class Seq(V):
    """A tuple, list, set or frozenset (``Tup`` or ``Coll``).

    Both expose ``kind``, ``items`` (the first KEEP_ITEMS), ``total`` (all),
    ``spill`` (imported callables seen past the cap, so passing one as an
    argument is still traced) and ``complete``.
    """

    __slots__ = ()
    kind: str
    items: Any
    total: int
    spill: list[Any] | None

    @property
    def complete(self) -> bool:
        return self.total == len(self.items)


class Tup(tuple, Seq):  # type: ignore[misc]
    """A complete tuple of at most KEEP_ITEMS items: the tuple itself, no wrapper (torch has millions)."""

    __slots__ = ()
    kind = "tuple"
    spill = None

    @property
    def items(self) -> Tup:  # type: ignore[override]
        return self

    @property
    def total(self) -> int:  # type: ignore[override]
        return len(self)

    @property
    def complete(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Tup{tuple.__repr__(self)}"


@dataclass(eq=False, slots=True)
class Coll(Seq):
    """A list, set, frozenset or over-long tuple: kept items (a list for the kinds that grow) plus counts."""

    kind: str  # "tuple" | "list" | "set" | "frozenset"
    items: list[Any] | tuple[Any, ...] = ()
    total: int = 0
    spill: list[Any] | None = None
    cap: ClassVar[int] = KEEP_ITEMS  # items kept; the rest are counted

    def add(self, v: Any) -> int:
        """Append one item (list/set kinds); returns the bytes newly retained."""
        self.total += 1
        items = self.items
        if len(items) < self.cap:
            if type(items) is tuple:
                items = self.items = list(items)
            items.append(v)  # type: ignore[union-attr]
            return 8
        if isinstance(v, (Glob, Call)) or _plantable_pair(v):
            if self.spill is None:
                self.spill = []
            if len(self.spill) < KEEP_ITEMS:
                self.spill.append(v)
                return 8
            if type(v) is Tup and self.spill[-1] is not LOST_PAIR:  # a (name, callable) pair no longer kept
                self.spill[-1] = LOST_PAIR
        mark_stored(v, DROPPED_NODES)
        return 0


@dataclass(eq=False, slots=True)
class WideColl(Coll):
    """A list that keeps all its items (within the walk's byte budget): for reading a literal result, such as the
    storage-key list of a legacy torch file, never for analysis walks."""

    cap: ClassVar[int] = 1 << 24


@dataclass(eq=False, slots=True)
class Dct(V):
    items: list[tuple[Any, Any]] = field(default_factory=list)
    total: int = 0
    spill: list[Any] | None = None
    hot: int = 0  # pairs past the cap that BUILD could plant as a called attribute (kept up to KEEP_ITEMS)
    # (name, import) pairs past the cap whose import went to the spill: the name it is kept under (mark_stored)
    named: list[tuple[str, Any]] | None = None

    def set(self, k: Any, v: Any) -> int:
        """Add one pair; returns the bytes newly retained."""
        self.total += 1
        if len(self.items) < KEEP_ITEMS:
            self.items.append((k, v))
            return 72
        if plantable(k, v):  # a hook name after 64 junk keys must not fall out of sight
            self.hot += 1
            if self.hot <= KEEP_ITEMS:
                self.items.append((k, v))
                return 72
            if self.hot == KEEP_ITEMS + 1:  # more than that: where they go is unknown
                self.items.append(LOST_PAIR)
        w = 0
        for x in (k, v):
            if isinstance(x, (Glob, Call)):
                if self.spill is None:
                    self.spill = []
                if len(self.spill) < KEEP_ITEMS:
                    self.spill.append(x)
                    w += 8
                    if x is v and type(v) is Glob and type(k) is str:
                        if self.named is None:
                            self.named = []
                        self.named.append((k, v))
                    continue
            mark_stored(x, DROPPED_NODES)
        if type(v) is Tup and v and isinstance(v[0], (Call, Opaque)):
            # a numpy dtype field (dtype, offset[, title]) past the cap: its dtype is kept (once) so whether
            # the fields hold objects stays known (ndarray_state.py)
            if self.spill is None:
                self.spill = []
            if len(self.spill) < KEEP_ITEMS and not any(x is v[0] for x in self.spill):
                self.spill.append(v[0])
                w += 8
        return w

    def get(self, key: Any) -> Any:
        for k, v in reversed(self.items):
            if is_lit(k) and type(k) is type(key) and k == key:
                return v
        return None

    def has(self, key: Any) -> bool:
        return any(is_lit(k) and type(k) is type(key) and k == key for k, _ in self.items)


def computed_name(k: Any) -> bool:
    """A mapping key that may be a str subclass at load time (a call result such as ``numpy.str_('append')``, a
    persistent id, an imported constant): as an attribute name it can be any name, hooks included (C pickle's
    BUILD stores it in the instance dict unchanged; ``setattr`` takes str subclasses)."""
    return isinstance(k, (Glob, Call, Opaque))


def _plantable_pair(v: Any) -> bool:
    """A (key, value) tuple of a pair list (``OrderedDict([...])``, ``dict([...])``) that could plant a hook."""
    return type(v) is Tup and len(v) == 2 and plantable(v[0], v[1])


def plantable(k: Any, v: Any) -> bool:
    """A state pair BUILD (or a setattr loop) could turn into an attribute the loader calls."""
    if type(k) is str:
        return k in PLANTED_NAMES and isinstance(v, (Glob, Call, Opaque))
    return computed_name(k) and isinstance(v, (Glob, Call, Opaque, Dct))


EMPTY_TUPLE = Tup()  # immutable, shared by every EMPTY_TUPLE opcode
#: stands for (name, callable) pairs a mapping or pair list held past every cap: a computed name and an unknown
#: value, which the walker judges as a hook planted under a name it cannot read
LOST = Opaque("(name, callable) pairs past the kept ones")
LOST_PAIR = Tup((LOST, LOST))


def make_seq(kind: str, items: list[Any]) -> Seq:
    n = len(items)
    if n <= KEEP_ITEMS:
        if kind == "tuple":
            return Tup(items)
        return Coll(kind, tuple(items) if kind == "frozenset" else list(items), n)
    kept = items[:KEEP_ITEMS]
    s = Coll(kind, tuple(kept) if kind in ("tuple", "frozenset") else kept, n)
    spill = [v for v in items[KEEP_ITEMS:] if isinstance(v, (Glob, Call)) or _plantable_pair(v)]
    for v in spill[KEEP_ITEMS:] if len(spill) > KEEP_ITEMS else ():
        mark_stored(v, DROPPED_NODES)
    for v in items[KEEP_ITEMS:]:
        if isinstance(v, (Seq, Dct)) and not _plantable_pair(v):
            mark_stored(v, DROPPED_NODES)
    if len(spill) > KEEP_ITEMS:
        lost = any(type(v) is Tup for v in spill[KEEP_ITEMS:])
        spill = spill[:KEEP_ITEMS]
        if lost:
            spill[-1] = LOST_PAIR
    if spill:
        s.spill = spill
    return s


def held(v: Any) -> list[Any]:
    """Values a container passes on when handed to a call (kept items and spilled callables)."""
    if isinstance(v, Seq):
        out = list(v.items)
    elif isinstance(v, Dct):
        out = [x for _, x in v.items]
    else:
        return []
    if v.spill:
        out.extend(v.spill)
    return out


#: values ``plain`` visits per call: memo references can make a small stream a huge tree (64 items, 6 levels)
PLAIN_NODES = 4096


def plain(v: Any, depth: int = 0) -> Any:
    """A JSON-friendly static value, or None where unknown; globals become 'module:name'.

    At most PLAIN_NODES values are visited (the rest are None): a tree built from
    memo references must not cost time or memory exponential in its depth.
    """
    if type(v) is Glob:  # the common case (a storage type in a torch persistent id): no traversal state
        return v.rec.path
    return _plain(v, depth, [PLAIN_NODES])


def _plain(v: Any, depth: int, left: list[int]) -> Any:
    if depth > 6 or left[0] <= 0:
        return None
    left[0] -= 1
    if not isinstance(v, V):
        if isinstance(v, (bytes, bytearray)):
            return v[:256].decode("latin-1")
        return v
    if isinstance(v, Glob):
        return v.rec.path
    if isinstance(v, Seq):
        if v.kind == "tuple":
            return tuple([_plain(i, depth + 1, left) for i in v.items])
        return [_plain(i, depth + 1, left) for i in v.items]
    return None


def render(v: Any, limit: int = 200) -> str:
    """A short, safe, truncated repr of a symbolic value for evidence."""
    out: list[str] = []
    _render(v, out, 0)
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _render(v: Any, out: list[str], depth: int) -> None:
    if sum(len(p) for p in out) > 400:
        out.append("…")
        return
    if depth > 5:
        out.append("…")
        return
    if not isinstance(v, V):
        out.append(repr(v[:120] if isinstance(v, (str, bytes, bytearray)) else v))
    elif isinstance(v, Blob):
        out.append(f"<{v.kind} of {v.length} bytes>")
    elif isinstance(v, Glob):
        out.append(v.rec.path.replace(":", "."))
    elif isinstance(v, Call):
        _render(v.func, out, depth + 1)
        _render(v.args, out, depth + 1)
    elif isinstance(v, Seq):
        o, c = {"tuple": ("(", ")"), "list": ("[", "]"), "set": ("{", "}"), "frozenset": ("{", "}")}[v.kind]
        out.append(o)
        for i, item in enumerate(v.items):
            if i:
                out.append(", ")
            _render(item, out, depth + 1)
        if v.kind == "tuple" and len(v.items) == 1:
            out.append(",")
        if not v.complete:
            out.append(", …")
        out.append(c)
    elif isinstance(v, Dct):
        out.append("{")
        for i, (k, val) in enumerate(v.items):
            if i:
                out.append(", ")
            _render(k, out, depth + 1)
            out.append(": ")
            _render(val, out, depth + 1)
        out.append("}")
    elif isinstance(v, Opaque):
        out.append(f"<{v.what}>")
    else:
        out.append("<?>")


_LITERAL_TYPES = (str, int, float, bool, type(None), bytes, bytearray)


#: items ``literal_of`` visits: enough for a million storage keys, and bounded whatever the stream
LITERAL_NODES = 1 << 21


def literal_of(v: Any) -> Any:
    """``v`` as the plain value the loader builds when it is made of literals, complete tuples and lists only;
    ``records.NOT_LITERAL`` for anything else (an import, a call, a dict, a truncated container, more than
    LITERAL_NODES items). A container reached twice (memo references) is converted once and shared, as the
    loader shares it, so a tree built from references costs what the stream holds, not its expansion."""
    if type(v) in _LITERAL_TYPES:
        return v
    return _literal(v, 0, [LITERAL_NODES], {})


def _literal(v: Any, depth: int, left: list[int], seen: dict[int, Any]) -> Any:
    if type(v) in _LITERAL_TYPES:
        return v
    done = seen.get(id(v))
    if done is not None:
        return done
    if depth > 32 or not isinstance(v, Seq) or v.kind not in ("tuple", "list") or not v.complete:
        return NOT_LITERAL
    left[0] -= len(v.items)
    if left[0] < 0:
        return NOT_LITERAL
    out = []
    for x in v.items:
        lit = _literal(x, depth + 1, left, seen)
        if lit is NOT_LITERAL:
            return NOT_LITERAL
        out.append(lit)
    seen[id(v)] = result = tuple(out) if v.kind == "tuple" else out
    return result


#: containers one ``mark_stored`` visits for an item a capped container drops (its imports are then out of sight)
DROPPED_NODES = 256
_overflow = threading.local()


def stored_overflows() -> int:
    """How many ``mark_stored`` walks in this thread ran out of budget (imports possibly kept unseen)."""
    return getattr(_overflow, "n", 0)


def _slot(rec: ImportRec, key: str) -> None:
    """``rec`` kept as the value of ``key`` in a mapping (an attribute of BUILD state): judged by that name."""
    slots = rec.slots
    if slots is None:
        slots = rec.slots = []
    if key not in slots:
        if len(slots) >= 8:
            rec.stored += 1
        else:
            slots.append(key)


def mark_stored(v: Any, budget: int) -> None:
    """Every import held in ``v`` (through tuples, lists, sets and mappings, not into call results) is kept as a
    value: the library that gets the object may call it later (``FunctionTransformer.func``, a forward hook, a
    vectorizer's analyzer), which is a call of an import nothing judged. At most ``budget`` containers are visited;
    running out is counted (``stored_overflows``) so the walk can fail closed."""
    t = type(v)
    if t is Glob:
        v.rec.stored += 1
        return
    if t is Tup:  # the common case (torch: millions of small tuples of literals): no traversal state
        nested = False
        for x in v:
            if type(x) is Glob:
                x.rec.stored += 1
            elif isinstance(x, (Seq, Dct)):
                nested = True
        if not nested:
            return
        todo: list[Any] = [x for x in v if isinstance(x, (Seq, Dct))]
        seen = {id(v)}
    elif isinstance(v, (Coll, Dct)):
        todo, seen = [v], set()
    else:
        return
    while todo:
        x = todo.pop()
        if type(x) is Glob:
            x.rec.stored += 1
            continue
        if type(x) is Tup or isinstance(x, Coll):
            if id(x) in seen:
                continue
            seen.add(id(x))
            todo.extend(y for y in x.items if isinstance(y, (Glob, Seq, Dct)))
        elif isinstance(x, Dct):
            if id(x) in seen:
                continue
            seen.add(id(x))
            for k, y in x.items:
                if type(y) is Glob and type(k) is str:
                    _slot(y.rec, k)
                    continue
                todo.extend(z for z in (k, y) if isinstance(z, (Glob, Seq, Dct)))
        else:
            continue
        spill = x.spill
        if spill and isinstance(x, Dct) and x.named:
            left: dict[
                int, int
            ] = {}  # spill entries that are a named pair's value, judged by the name instead
            for k, y in x.named:
                _slot(y.rec, k)
                left[id(y)] = left.get(id(y), 0) + 1
            rest = []
            for y in spill:
                if left.get(id(y)):
                    left[id(y)] -= 1
                else:
                    rest.append(y)
            spill = rest
        if spill:
            todo.extend(y for y in spill if isinstance(y, (Glob, Seq, Dct)))
        if len(seen) > budget:
            _overflow.n = stored_overflows() + 1
            return
