"""The typed result of one pickle walk: what the unpickler would import, call and change.

The walker (``walker.py``) only records; the checks (``checks.py``) decide which
records are findings. Everything here is a plain fact about the stream, with the
offset and opcode index that locate it, so a check never needs the walker's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: a walk result's ``value`` when the pickle did not produce a plain literal (or did not reach STOP)
NOT_LITERAL: Any = type("NotLiteral", (), {"__repr__": lambda self: "NOT_LITERAL"})()


@dataclass(slots=True)
class CallSite:
    """The first call of an import: by which opcode or object-protocol path, with what arguments."""

    opcode: str  # REDUCE/INST/OBJ/NEWOBJ(_EX), or the path ("BUILD via planted __setstate__", "<helper> argument 0")
    offset: int
    args: str  # rendered, truncated
    kwargs: str | None = None


@dataclass(eq=False, slots=True)
class ImportRec:
    """One import site (GLOBAL, INST, STACK_GLOBAL, EXT*, or a static ``getattr``) and how the import was used."""

    module: str
    name: str
    opcode: str  # how it was reached: the opcode, or "getattr" for an attribute fetched with builtins.getattr
    offset: int
    index: int
    dynamic: str | None = None  # why the target cannot be known statically
    called: int = 0
    passed: int = 0  # handed as an argument to another call
    static_calls: int = 0  # calls resolved statically: getattr(<import>, 'name') -> an attribute import
    new_calls: int = 0  # instantiations through cls.__new__ only (NEWOBJ, copyreg.__newobj__, _reconstruct)
    new_with_args: int = 0  # NEWOBJ(_EX) with arguments: cls.__new__(cls, *args) (a type tag allocates)
    helper_calls: int = 0  # calls an allowlisted helper makes with it (factories, hooks), not the unpickler
    # kept as a value where the object's library may call it later: BUILD state, a constructor's or container's
    # arguments, items added to an object, the pickle's result (values.mark_stored)
    stored: int = 0
    slots: list[str] | None = (
        None  # attribute/key names it was kept under in a mapping (at most 8; more count as stored)
    )
    first_call: CallSite | None = None
    raw: str | None = None  # spelling in the stream when protocol-2 name fixing changed it
    path: str = field(init=False)  # 'module:name', built once (persistent ids repeat it per tensor)

    def __post_init__(self) -> None:
        self.path = f"{self.module}:{self.name}"

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(slots=True)
class UntracedCall:
    """A call (by opcode or object-protocol path) on a value that does not trace to an import."""

    opcode: str
    offset: int
    index: int
    callable: str  # where the called value came from
    args: str


@dataclass(slots=True)
class Mutation:
    """BUILD/APPEND(S)/SETITEM(S)/ADDITEMS applied to an imported object itself (not an instance of it)."""

    target: ImportRec
    opcode: str
    offset: int
    index: int
    state: str | None


AnomalyKind = Literal["gadget-argument", "allocation", "hook-planted", "lenient-opcode", "aliased-import"]


@dataclass(slots=True)
class Anomaly:
    """Something the walker saw the loader do that needs judging in context: a helper's argument it does not
    accept, an allocation size, a hook planted on an instance, an opcode spelling only a lenient loader reads."""

    kind: AnomalyKind
    message: str
    offset: int
    index: int
    evidence: dict[str, Any]


@dataclass(slots=True)
class LoaderCall:
    """A call of a function that unpickles its argument (pickle.loads, torch.load ...): a nested payload site."""

    rec: ImportRec
    offset: int
    first_arg: Any  # symbolic value of the first positional argument, None when unknown
    allowed: frozenset[str] | None = (
        None  # 'module:name' a gadget rule allows in this nested pickle (pickled:)
    )


@dataclass(slots=True)
class LiteralCandidate:
    """A text/bytes literal long enough to hide an encoded pickle (base64, hex, zlib)."""

    offset: int
    value: str | bytes
