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

from dataclasses import dataclass, field
from typing import Any

KEEP_ITEMS = 64


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
class ImportRec:
    """One import site: GLOBAL, INST, STACK_GLOBAL or EXT*."""

    module: str
    name: str
    opcode: str
    offset: int
    index: int
    dynamic: str | None = None  # why the target cannot be known statically
    called: int = 0
    passed: int = 0  # handed as an argument to another call
    static_calls: int = 0  # calls resolved statically: getattr(<import>, 'name') -> an attribute import
    new_calls: int = 0  # instantiations through cls.__new__ only (NEWOBJ, copyreg.__newobj__, _reconstruct)
    helper_calls: int = 0  # calls an allowlisted helper makes with it (factories, hooks), not the unpickler
    first_call: dict[str, Any] | None = None
    raw: str | None = None  # spelling in the stream when protocol-2 name fixing changed it
    path: str = field(init=False)  # 'module:name', built once (persistent ids repeat it per tensor)

    def __post_init__(self) -> None:
        self.path = f"{self.module}:{self.name}"


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

    def add(self, v: Any) -> int:
        """Append one item (list/set kinds); returns the bytes newly retained."""
        self.total += 1
        items = self.items
        if len(items) < KEEP_ITEMS:
            if type(items) is tuple:
                items = self.items = list(items)
            items.append(v)  # type: ignore[union-attr]
            return 8
        if isinstance(v, (Glob, Call)):
            if self.spill is None:
                self.spill = []
            if len(self.spill) < KEEP_ITEMS:
                self.spill.append(v)
                return 8
        return 0


@dataclass(eq=False, slots=True)
class Dct(V):
    items: list[tuple[Any, Any]] = field(default_factory=list)
    total: int = 0
    spill: list[Any] | None = None

    def set(self, k: Any, v: Any) -> int:
        """Add one pair; returns the bytes newly retained."""
        self.total += 1
        if len(self.items) < KEEP_ITEMS:
            self.items.append((k, v))
            return 72
        w = 0
        for x in (k, v):
            if isinstance(x, (Glob, Call)):
                if self.spill is None:
                    self.spill = []
                if len(self.spill) < KEEP_ITEMS:
                    self.spill.append(x)
                    w += 8
        return w

    def get(self, key: Any) -> Any:
        for k, v in reversed(self.items):
            if is_lit(k) and type(k) is type(key) and k == key:
                return v
        return None

    def has(self, key: Any) -> bool:
        return any(is_lit(k) and type(k) is type(key) and k == key for k, _ in self.items)


EMPTY_TUPLE = Tup()  # immutable, shared by every EMPTY_TUPLE opcode


def make_seq(kind: str, items: list[Any]) -> Seq:
    n = len(items)
    if n <= KEEP_ITEMS:
        if kind == "tuple":
            return Tup(items)
        return Coll(kind, tuple(items) if kind == "frozenset" else list(items), n)
    kept = items[:KEEP_ITEMS]
    s = Coll(kind, tuple(kept) if kind in ("tuple", "frozenset") else kept, n)
    spill = [v for v in items[KEEP_ITEMS:] if isinstance(v, (Glob, Call))][:KEEP_ITEMS]
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


def plain(v: Any, depth: int = 0) -> Any:
    """A JSON-friendly static value, or None where unknown; globals become 'module:name'."""
    if depth > 6:
        return None
    if not isinstance(v, V):
        if isinstance(v, (bytes, bytearray)):
            return v[:256].decode("latin-1")
        return v
    if isinstance(v, Glob):
        return v.rec.path
    if isinstance(v, Seq):
        if v.kind == "tuple":
            return tuple([plain(i, depth + 1) for i in v.items])
        return [plain(i, depth + 1) for i in v.items]
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
