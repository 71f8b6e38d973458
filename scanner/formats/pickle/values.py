"""Symbolic values on the walker's stack and in its memo.

Values are shared by reference (as in the real unpickler), so memo indirection
and re-PUT overwrites resolve to the same object the loader would see.
Containers keep only their first few items: enough to read call arguments,
dtype states and persistent ids, never proportional to the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEEP_ITEMS = 64


class V:
    """Base of all symbolic values."""

    __slots__ = ()


@dataclass(eq=False)
class Const(V):
    """A literal: str, bytes, int, float, bool, None, bytearray."""

    value: Any
    offset: int = -1


@dataclass(eq=False)
class Blob(V):
    """A literal too large to keep; only its kind and length are known."""

    kind: str
    length: int
    offset: int = -1


@dataclass(eq=False)
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
    first_call: dict[str, Any] | None = None
    raw: str | None = None  # spelling in the stream when protocol-2 name fixing changed it

    @property
    def path(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(eq=False)
class Glob(V):
    """The object an import resolved to (a class, function or module attribute)."""

    rec: ImportRec


@dataclass(eq=False)
class Call(V):
    """The result of REDUCE / OBJ / INST / NEWOBJ(_EX)."""

    func: V
    args: V
    opcode: str
    offset: int
    state: V | None = None  # last BUILD state applied to the result


@dataclass(eq=False)
class Opaque(V):
    """A value the walker cannot know: a persistent-load result, a buffer, a huge integer."""

    what: str


@dataclass(eq=False)
class Seq(V):
    """A tuple, list, set or frozenset; ``total`` counts items beyond the kept ones."""

    kind: str  # "tuple" | "list" | "set" | "frozenset"
    items: list[V] = field(default_factory=list)
    total: int = 0

    def add(self, v: V) -> None:
        self.total += 1
        if len(self.items) < KEEP_ITEMS:
            self.items.append(v)

    @property
    def complete(self) -> bool:
        return self.total == len(self.items)


@dataclass(eq=False)
class Dct(V):
    items: list[tuple[V, V]] = field(default_factory=list)
    total: int = 0

    def set(self, k: V, v: V) -> None:
        self.total += 1
        if len(self.items) < KEEP_ITEMS:
            self.items.append((k, v))

    def get(self, key: Any) -> V | None:
        for k, v in reversed(self.items):
            if isinstance(k, Const) and k.value == key:
                return v
        return None


def make_seq(kind: str, items: list[V]) -> Seq:
    s = Seq(kind, items[:KEEP_ITEMS], len(items))
    return s


def plain(v: V, depth: int = 0) -> Any:
    """A JSON-friendly static value, or None where unknown; globals become 'module:name'."""
    if depth > 6:
        return None
    if isinstance(v, Const):
        val = v.value
        if isinstance(val, (bytes, bytearray)):
            return val[:256].decode("latin-1")
        return val
    if isinstance(v, Glob):
        return v.rec.path
    if isinstance(v, Seq):
        items = [plain(i, depth + 1) for i in v.items]
        return tuple(items) if v.kind == "tuple" else items
    return None


def render(v: V, limit: int = 200) -> str:
    """A short, safe, truncated repr of a symbolic value for evidence."""
    out: list[str] = []
    _render(v, out, 0)
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _render(v: V, out: list[str], depth: int) -> None:
    if sum(len(p) for p in out) > 400:
        out.append("…")
        return
    if depth > 5:
        out.append("…")
        return
    if isinstance(v, Const):
        val = v.value
        out.append(repr(val[:120] if isinstance(val, (str, bytes, bytearray)) else val))
    elif isinstance(v, Blob):
        out.append(f"<{v.kind} of {v.length} bytes>")
    elif isinstance(v, Glob):
        out.append(v.rec.path.replace(":", "."))
    elif isinstance(v, Call):
        _render(v.func, out, depth + 1)
        _render(v.args, out, depth + 1)
    elif isinstance(v, Seq):
        o, c = {"tuple": "()", "list": "[]", "set": "{}", "frozenset": "{}"}[v.kind]
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
