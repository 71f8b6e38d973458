"""The "pickle" format handler: recognition by content and the plain-pickle inspector."""

from __future__ import annotations

from ...io.reader import BytesReader, Reader
from ...limits import Limits
from ..interface import FormatHandler, InspectContext
from .checks import check_persistent_ids
from .cursor import Cursor
from .stream import analyze_pickle_stream
from .walker import Budget, Machine

_SNIFF_LIMITS = Limits(
    max_pickle_opcodes=20_000, max_pickle_stack=2_000, max_pickle_memo=2_000, max_string=4096
)
_CALL_OPS = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})


def sniff(head: bytes, reader: Reader) -> bool:
    """Protocol 2-5 by header; protocols 0/1 (no header) by a bounded walk that must look like a real pickle."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if not head:
        return False
    return _walks_like_pickle(head, reader.size)


def _walks_like_pickle(head: bytes, total: int) -> bool:
    if head[0] == 0x80 and (len(head) < 2 or head[1] > 1):
        return False
    m = Machine(
        Cursor(BytesReader(head, "<sniff>")),
        _SNIFF_LIMITS,
        Budget(20_000),
        out_of_time=lambda: False,
        joblib=False,
    )
    res = m.run()
    if res.limit is not None:
        return False
    if res.end >= 0:
        return res.opcodes >= 2 or res.end == len(head)
    err = res.error or ""
    if err.startswith("truncated") and len(head) < total and res.error_offset is not None:
        # the head ended mid-stream: accept a long, clean run of opcodes
        return res.opcodes >= 64 and res.error_offset >= len(head) - 1024
    # broken pickles still run their opening opcodes: claim a stream that imported and then did pickle work
    imports = [r for r in res.imports if _ident(r.module) and _ident(r.name)]
    if not imports:
        return False
    called = any(r.called for r in imports) or bool(res.untraced)
    ran_to_eof = err.startswith("truncated") and len(head) == total
    return called or ran_to_eof or res.opcodes - imports[0].index >= 3


def _ident(s: str) -> bool:
    return bool(s) and all(p.isidentifier() for p in s.split("."))


def inspect(reader: Reader, ctx: InspectContext) -> None:
    summary = analyze_pickle_stream(reader, ctx)
    check_persistent_ids(summary.persistent_ids, ctx)


PICKLE = FormatHandler(
    "pickle",
    sniff,
    inspect,
    family="pickle",
    claims=(".pkl", ".pickle", ".pck", ".pcl", ".dill", ".joblib", ".pt", ".pth", ".ckpt", ".sav"),
    can_carry_code=True,
)
