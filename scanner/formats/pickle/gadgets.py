"""Argument rules for allowlisted factories and apply helpers (signatures/pickle/gadgets.yaml).

Allowlisting ``copyreg._reconstructor`` or ``torch._utils._rebuild_from_type_v2``
would allowlist whatever class or callable they are handed; these rules say
which arguments such callables call, instantiate, setattr or allocate from, so
the walker can judge the arguments instead of trusting the callable. The file
format is documented in its header. :class:`CallJudge` lends the walker's judging
to loaders that are not a pickle stream (skops.io.load's nodes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...rules import RuleDatabaseError, load_rule_file

if TYPE_CHECKING:
    from ...limits import Limits
    from .values import Call, Glob
    from .walker import WalkResult

FILE = Path("pickle") / "gadgets.yaml"
_RULE_KEYS = frozenset(
    {"invoked", "one_of", "alloc", "state", "hooks", "arrow_array", "items", "applies", "calls_with"}
)
_BUILD_KEYS = frozenset({"callable", "args", "kwargs"})


@dataclass(frozen=True, slots=True)
class ArgRule:
    # "always" | "now" (called while loading) | "class" | "new" (instantiated by __new__ only) | None
    invoked: str | None = None
    one_of: frozenset[str] | None = None
    alloc: int = 0  # minimum bytes per element when the argument is a count/shape
    state: bool = False
    hooks: bool = False
    arrow_array: bool = False  # pyarrow's reduced ArrayData tuple, bounded by arrow.check_array_data
    items: frozenset[str] | None = None  # every item of a tuple/list argument is one of these (one_of syntax)
    applies: int | None = None  # this argument is called with the tuple at that position as its arguments
    calls_with: int | None = None  # this argument is called with the arguments from that position on


@dataclass(frozen=True, slots=True)
class Gadget:
    path: str  # 'module:name'
    why: str
    args: tuple[tuple[int, ArgRule], ...]
    # the callables the result may be handed to as an argument (None: anywhere)
    result_to: frozenset[str] | None = None
    # where BUILD state puts the callable the result forwards its calls to, and that callable's stored
    # arguments: (callable, args, kwargs), each a tuple position (int), an attribute name (str) or None
    build_calls: tuple[int | str, int | str | None, int | str | None] | None = None


def _rule(raw: object, where: str) -> ArgRule:
    if not isinstance(raw, dict) or not set(raw) <= _RULE_KEYS:
        raise RuleDatabaseError(f"{where}: an argument rule is a mapping of {sorted(_RULE_KEYS)}")
    inv = raw.get("invoked")
    invoked = "always" if inv is True else (inv if inv in ("now", "class", "new") else None)
    if inv not in (None, False, True, "now", "class", "new"):
        raise RuleDatabaseError(f"{where}: invoked must be true, false, 'now', 'class' or 'new'")
    one_of = raw.get("one_of")
    if one_of is not None and not (isinstance(one_of, list) and all(isinstance(x, str) for x in one_of)):
        raise RuleDatabaseError(f"{where}: one_of must be a list of strings")
    items = raw.get("items")
    if items is not None and not (isinstance(items, list) and all(isinstance(x, str) for x in items)):
        raise RuleDatabaseError(f"{where}: items must be a list of strings")
    applies = raw.get("applies")
    if applies is not None and (type(applies) is not int or applies < 0):
        raise RuleDatabaseError(f"{where}: applies is the 0-based position of the argument tuple")
    calls_with = raw.get("calls_with")
    if calls_with is not None and (type(calls_with) is not int or calls_with < 0):
        raise RuleDatabaseError(
            f"{where}: calls_with is the 0-based position of the first argument passed on"
        )
    alloc = raw.get("alloc", 0)
    if type(alloc) is not int or alloc < 0:
        raise RuleDatabaseError(f"{where}: alloc must be a non-negative integer")
    return ArgRule(
        invoked,
        frozenset(one_of) if one_of is not None else None,
        alloc,
        bool(raw.get("state")),
        bool(raw.get("hooks")),
        bool(raw.get("arrow_array")),
        frozenset(items) if items is not None else None,
        applies,
        calls_with,
    )


def _build_calls(raw: object, where: str) -> tuple[int | str, int | str | None, int | str | None] | None:
    if raw is None:
        return None
    ok = isinstance(raw, dict) and set(raw) <= _BUILD_KEYS and raw.get("callable") is not None
    if ok:
        assert isinstance(raw, dict)
        ok = all(raw.get(k) is None or type(raw[k]) in (int, str) for k in _BUILD_KEYS)
    if not ok:
        raise RuleDatabaseError(
            f"{where}: build_calls maps callable (and optional args, kwargs) to a state tuple position or attribute name"
        )
    assert isinstance(raw, dict)
    return raw["callable"], raw.get("args"), raw.get("kwargs")


@functools.lru_cache(maxsize=4)
def load_gadgets(root: Path) -> dict[str, Gadget]:
    """The gadget table of one rule database root (empty when the file is absent)."""
    path = root / FILE
    if not path.is_file():
        return {}
    doc = load_rule_file(path) or {}
    table = doc.get("callables") if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise RuleDatabaseError(f"{path}: expected a 'callables' mapping")
    out: dict[str, Gadget] = {}
    for key, spec in table.items():
        where = f"{path}: {key}"
        if not (isinstance(key, str) and key.count(":") == 1 and isinstance(spec, dict)):
            raise RuleDatabaseError(f"{where}: entries are 'module:name': {{why, args}}")
        args = spec.get("args") or {}
        if not isinstance(args, dict) or not all(type(k) is int and k >= 0 for k in args):
            raise RuleDatabaseError(f"{where}: args maps 0-based positions to rules")
        result_to = spec.get("result_to")
        if result_to is not None and not (
            isinstance(result_to, list) and all(isinstance(x, str) and x.count(":") == 1 for x in result_to)
        ):
            raise RuleDatabaseError(f"{where}: result_to is a list of 'module:name' callables")
        out[key] = Gadget(
            key,
            str(spec.get("why", "")),
            tuple(sorted((k, _rule(v, where)) for k, v in args.items())),
            frozenset(result_to) if result_to is not None else None,
            _build_calls(spec.get("build_calls"), where),
        )
    return out


class CallJudge:
    """The walker's own judging of calls and state updates a loader other than the unpickler makes.

    The caller models each value in the walker's terms (values.py: literals, Glob, Call, Seq, Dct, Opaque)
    and reports each call and ``__dict__`` update as the loader makes it; the walker's code applies these
    rules (invoked, one_of, alloc, state, hooks, items, applies, arrow_array, result_to) exactly as for a
    pickle REDUCE or BUILD. ``at`` is the caller's site number, returned as the offset of the anomalies and
    untraced calls in :attr:`result`; the import counters (called, new_calls, helper_calls) are on each
    Glob's ImportRec. Raises the walker's LimitHit when the byte budget runs out.
    """

    def __init__(self, gadgets: dict[str, Gadget], limits: Limits, out_of_time: Callable[[], bool]) -> None:
        from ...io.reader import BytesReader
        from .cursor import Cursor
        from .walker import Budget, Machine

        self.gadgets = gadgets
        self._m = Machine(
            Cursor(BytesReader(b"", "<calls>")),
            limits,
            Budget(limits.max_pickle_opcodes, limits.max_pickle_memory),
            out_of_time=out_of_time,
            joblib=False,
            gadgets=gadgets,
        )
        self.result: WalkResult = self._m.res

    def _at(self, at: int) -> None:
        self._m.op_offset = self._m.index = at

    def call(self, func: Any, args: Any, how: str, at: int, kwargs: Any = None) -> Any:
        """``func(*args, **kwargs)`` (``args`` a Seq; anything else is arguments the rules cannot place)."""
        self._at(at)
        return self._m._make_call(func, args, how, kwargs)

    def forwards(self, path: str) -> bool:
        """Whether the walker hands this callable's stored arguments to the callable it stores (``calls_with``)."""
        g = self.gadgets.get(path)
        return g is not None and any(getattr(r, "calls_with", None) is not None for _, r in g.args)

    def applied(self, func: Glob, args: Any, at: int) -> None:
        """``func`` will be called with ``args`` (a stored partial): its own rules judge them (``applies``)."""
        from .values import Call

        g = self.gadgets.get(func.rec.path)
        if g is not None:
            self._at(at)
            self._m._gadget(g, Call(func, args, "REDUCE", at))

    def plant(self, inst: Call, state: Any, how: str, at: int) -> None:
        """``inst.__dict__.update(state)`` (or ``__setstate__``): hook names planted as BUILD state would be."""
        self._at(at)
        self._m._plant(inst, state, how)

    def hold(self, target: Call, items: list[Any], at: int) -> None:
        """``target[k] = v`` for the flat ``[k0, v0, k1, v1, ...]`` on an object built by a call (SETITEMS)."""
        self._at(at)
        self._m._hold(target, items, "SETITEMS")

    def issue(self, message: str, evidence: dict[str, Any], at: int) -> None:
        """A helper's argument the rules cannot judge (PICKLE-GADGET-ARGUMENT)."""
        self._at(at)
        self._m._issue("gadget-argument", message, evidence)
