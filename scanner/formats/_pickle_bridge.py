"""Forced pickle analysis for bytes a loader is known to unpickle.

Content detection decides what a generic archive member is; but torch.load
unpickles ``data.pkl``, ``np.load(allow_pickle=True)`` unpickles an object
array's data and the legacy torch loader unpickles five pickles in a row,
whatever the bytes look like. Those are analyzed as pickles here, with the
same fail-closed wrapper and nesting limits as any member.
"""

from __future__ import annotations

from typing import Any

from ..io.reader import Reader
from .interface import FormatHandler, InspectContext, run_inspector


def analyze_pickles(
    reader: Reader,
    ctx: InspectContext,
    *,
    member: str | None = None,
    start: int = 0,
    end: int | None = None,
    max_pickles: int | None = None,
) -> Any | None:
    """Run the pickle analyzer on ``reader`` (in a member context when ``member`` is given).

    Returns the analyzer's PickleStreamSummary, or None when it crashed (reported
    as INSPECTOR-ERROR) or the depth limit stopped it (reported as LIMIT-EXCEEDED).
    """
    from .pickle import analyze_pickle_stream

    target = ctx if member is None else ctx.child(member)
    if target is None:
        return None
    out: dict[str, Any] = {}

    def _run(r: Reader, c: InspectContext) -> None:
        out["summary"] = analyze_pickle_stream(r, c, start=start, end=end, max_pickles=max_pickles)

    run_inspector(FormatHandler("pickle", lambda h, r: True, _run, family="pickle"), reader, target)
    return out.get("summary")
