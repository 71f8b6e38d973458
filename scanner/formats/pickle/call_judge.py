"""The walker's judging of calls, lent to loaders that are not a pickle stream (skops.io.load's nodes).

A loader that builds objects from another description (skops' JSON schema) calls allowlisted factories and
helpers too; :class:`CallJudge` runs the pickle walker's own code on those calls, so gadgets.yaml's argument
rules hold for them exactly as for a REDUCE or BUILD, never a copy of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...io.reader import BytesReader
from .cursor import Cursor
from .walker import Budget, Machine, WalkResult

if TYPE_CHECKING:
    from ...limits import Limits
    from .gadgets import Gadget
    from .values import Call, Glob


class CallJudge:
    """The walker's own judging of calls and state updates a loader other than the unpickler makes.

    The caller models each value in the walker's terms (values.py: literals, Glob, Call, Seq, Dct, Opaque)
    and reports each call and ``__dict__`` update as the loader makes it; the walker's code applies these
    rules (invoked, one_of, alloc, state, hooks, items, applies, arrow_array, result_to) exactly as for a
    pickle REDUCE or BUILD. ``at`` is the caller's site number, returned as the offset of the anomalies and
    untraced calls in :attr:`result`; the import counters (called, new_calls, helper_calls) are on each
    Glob's ImportRec. Raises the walker's LimitHit when the byte budget runs out.
    """

    def __init__(
        self, gadgets: Mapping[str, Gadget], limits: Limits, out_of_time: Callable[[], bool]
    ) -> None:
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
