"""The "pickle" format handler: recognition by content and the plain-pickle inspector."""

from __future__ import annotations

import sys

from ...io.reader import BytesReader, Reader
from ...limits import Limits
from ..interface import FormatHandler, InspectContext
from .checks import check_persistent_ids
from .cursor import Cursor
from .stream import analyze_pickle_stream
from .walker import Budget, Machine, WalkResult

_SNIFF_LIMITS = Limits(
    max_pickle_opcodes=20_000, max_pickle_stack=2_000, max_pickle_memo=2_000, max_string=4096
)
#: the second sniff walk, over the file, when the head hit a sniff bound: the analysis limits, bounded opcodes
_FULL_SNIFF_LIMITS = Limits(max_pickle_opcodes=20_000)
#: the polyglot view's walk over the file: text lines bounded at 64 KiB, so a header followed by zero-filled data
#: (no newline) costs a few reads, not 16 MiB; a bound hit still counts unless no loader could parse that line
_VIEW_LIMITS = Limits(max_pickle_opcodes=20_000, max_string=1 << 16)
_CALL_OPS = frozenset({"REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"})


def sniff(head: bytes, reader: Reader) -> bool:
    """Protocol 2-5 by header; protocols 0/1 (no header) by a bounded walk that must look like a real pickle."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if not head:
        return False
    return _walks_like_pickle(head, reader)


def _walks_like_pickle(head: bytes, reader: Reader) -> bool:
    if head[0] == 0x80 and (len(head) < 2 or head[1] > 1):
        return False
    res = _sniff_walk(BytesReader(head, "<sniff>"), _SNIFF_LIMITS)
    total = reader.size
    if _judge(res, len(head), total):
        return True
    head_short = (res.error or "").startswith("truncated") and len(head) < total
    if res.limit is None and not head_short:
        return False
    # The head ran cleanly into a sniff bound (a first line longer than the sniff's max_string, deep MARK
    # nesting, a big memo, a literal longer than the head) before it showed what the stream does. The C
    # unpickler has no such bounds: a payload placed after such a prefix still runs. Walk the file itself
    # with the analysis limits; a clean run into one of those is claimed (the analysis then fails closed).
    res = _sniff_walk(reader, _FULL_SNIFF_LIMITS)
    if res.limit is not None:
        return True
    return _judge(res, total, total)


def _sniff_walk(reader: Reader, limits: Limits) -> WalkResult:
    m = Machine(
        Cursor(reader),
        limits,
        Budget(limits.max_pickle_opcodes),
        out_of_time=lambda: False,
        joblib=False,
    )
    res = m.run()
    m.release()
    return res


def _judge(res: WalkResult, walked: int, total: int) -> bool:
    """Whether a sniff walk over the first ``walked`` bytes of a ``total``-byte file looks like a real pickle."""
    if res.limit is not None:
        return False
    if res.end >= 0:
        return res.opcodes >= 2 or res.end == walked
    err = res.error or ""
    if err.startswith("truncated") and walked < total and res.error_offset is not None:
        # the head ended mid-stream: accept a long, clean run of opcodes
        return res.opcodes >= 64 and res.error_offset >= walked - 1024
    # broken pickles still run their opening opcodes: claim a stream that imported and then did pickle work
    imports = [r for r in res.imports if _ident(r.module) and _ident(r.name)]
    if not imports:
        return False
    if any(r.module.partition(".")[0] in _STDLIB for r in imports):
        # the loader imports a standard-library module before the stream fails: import-time code runs (``this``
        # prints, ``antigravity`` opens a browser, ``idlelib.idle`` starts IDLE) whatever follows (red team 9:
        # "cthis\nx\n1" ran under pickle.load, torch.load and joblib.load and was sniffed as text)
        return True
    called = any(r.called for r in imports) or bool(res.untraced)
    ran_to_eof = err.startswith("truncated") and walked == total
    return called or ran_to_eof or res.opcodes - imports[0].index >= 3


#: top-level standard-library modules (a static list: nothing is imported to build it)
_STDLIB = frozenset(sys.stdlib_module_names)


def imports_when_loaded(head: bytes, reader: Reader) -> bool:
    """Whether a pickle loader reading this content from its first byte imports something before it stops or
    fails: the question for bytes another format's sniffer claimed first (a polyglot).

    A protocol header alone does not count (a safetensors header length of 0x0280 starts with PROTO 2, then an
    invalid opcode), nor does a name no import can resolve (a tar header read as a GLOBAL line); an import of
    identifiers does, because only an import reaches code. A persistent id first (every zip starts with "P",
    PERSID) stops every loader reading from offset 0: none has a ``persistent_load`` there. Walks the head, then
    the file when the head ran cleanly into its end or a sniff bound; that walk running into the analysis limits
    counts (fail closed)."""
    if not head or head[:1] == b"P":
        return False
    res = _sniff_walk(BytesReader(head, "<view>"), _SNIFF_LIMITS)
    if _imports_identifiers(res):
        return True
    head_short = (res.error or "").startswith("truncated") and len(head) < reader.size
    if res.limit is None and not head_short:
        return False
    res = _sniff_walk(reader, _VIEW_LIMITS)
    if _imports_identifiers(res):
        return True
    return res.limit is not None and not _line_no_loader_parses(reader, res)


# Text-line opcodes whose argument no loader can take once it runs past the view's 64 KiB line bound: INT/LONG and the
# memo ops parse it with int() (ValueError past 4,300 digits), GLOBAL/INST import it as a module name, PERSID
# needs a persistent_load. A safetensors header length of 0x4C ("L") followed by zero-filled tensors reads as
# one LONG line of megabytes: the loader raises there. FLOAT, STRING and UNICODE lines can be that long and
# parse, so a bound hit on them still counts.
_UNPARSABLE_WHEN_LONG = frozenset(b"ILgpciP")


def _line_no_loader_parses(reader: Reader, res: WalkResult) -> bool:
    if res.limit is None or res.limit.what != "max_string" or res.error_offset is None:
        return False
    opcode = reader.read(res.error_offset, 1)
    return len(opcode) == 1 and opcode[0] in _UNPARSABLE_WHEN_LONG


def _imports_identifiers(res: WalkResult) -> bool:
    return any(_ident(r.module) and _ident(r.name) for r in res.imports)


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
