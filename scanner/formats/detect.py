"""Content-based format detection: the dispatcher every top-level context is given.

Sniffers run in ``registry.HANDLERS`` order; the first that claims the content
wins. The engine (or a test) passes ``inspect_with_detection`` to the top-level
``InspectContext`` so members recurse through it without handlers importing
this module.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re

from ..findings import Severity
from ..io.reader import Reader, ReaderError
from .interface import SNIFF_BYTES, FormatHandler, InspectContext, run_inspector
from .registry import SNIFFED_BEFORE_PICKLE, handlers

log = logging.getLogger(__name__)


def sniff(reader: Reader) -> FormatHandler | None:
    """The first handler that claims the content."""
    return sniff_reporting(reader)[0]


def sniff_reporting(reader: Reader) -> tuple[FormatHandler | None, list[str]]:
    """The first handler that claims the content, and the sniffers that crashed before it decided.

    A crashed sniffer might have been the one that should claim the file (a
    protocol-0 pickle is ASCII text), so the caller reports it: falling through
    to a later, more lenient format must never read as clean.
    """
    head = reader.head(SNIFF_BYTES)
    crashed: list[str] = []
    for h in handlers():
        try:
            if h.sniff(head, reader):
                return h, crashed
        except ReaderError:
            raise
        except Exception as exc:  # a sniffer must never take the scan down
            log.debug("sniffer %s raised", h.name, exc_info=True)
            crashed.append(f"{h.name}: {type(exc).__name__}: {exc}"[:200])
    return None, crashed


def claimed_handlers(name: str) -> list[FormatHandler]:
    """Handlers whose usual file-name endings match ``name`` (longest ending wins)."""
    base = posixpath.basename(name.replace("\\", "/")).lower()
    best: list[FormatHandler] = []
    best_len = 0
    for h in handlers():
        for ending in h.claims:
            if base.endswith(ending) and len(ending) >= best_len:
                if len(ending) > best_len:
                    best, best_len = [], len(ending)
                best.append(h)
    return best


# C0 control bytes no text file carries (tab, newlines, vertical tab, form feed and escape are left out)
_BINARY_CONTROL = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]")


def _check_name(ctx: InspectContext, name: str, actual: FormatHandler, head: bytes = b"") -> None:
    claimed = claimed_handlers(name)
    if not claimed or any(c.family == actual.family for c in claimed):
        return
    hides_code = actual.can_carry_code and not any(c.can_carry_code for c in claimed)
    # The catch-all text sniffer takes any UTF-8 without NUL, so a small protobuf (a SavedModel or ONNX
    # model whose fields are not in the order the strict sniffers expect) reads as "text". Control bytes
    # say it is binary: the loader the name picks parses it, and nothing here judged it.
    binary = actual.name == "text" and _BINARY_CONTROL.search(head) is not None
    message = f"named like {claimed[0].name} but the content is {actual.name}"
    if binary:
        message += (
            " with control bytes: binary content no sniffer recognised, which the named loader still parses"
        )
    ctx.add(
        "FORMAT-NAME-MISMATCH",
        message,
        severity=Severity.HIGH if hides_code or binary else Severity.MEDIUM,
        evidence={"name": name, "claimed": sorted({c.name for c in claimed}), "detected": actual.name},
    )


def inspect_with_detection(reader: Reader, ctx: InspectContext) -> str:
    """Detect the format of ``reader`` and run its inspector; never raises for content problems."""
    top = ctx.depth == 0
    try:
        if reader.size == 0:
            if top:
                ctx.state.result.format = "empty"
            ctx.add("FILE-EMPTY", "empty file: nothing to load")
            return "empty"
        handler, crashed = sniff_reporting(reader)
    except ReaderError as exc:
        ctx.add("FILE-READ-ERROR", str(exc))
        ctx.unanalyzable(f"read error: {exc}")
        return "unreadable"
    for c in crashed:
        ctx.add("INSPECTOR-ERROR", f"format detection failed in the {c}")
        ctx.partial(f"sniffer error ({c.split(':', 1)[0]})")
    if handler is None:
        if top:
            ctx.state.result.format = "unknown"
        ctx.add("FORMAT-UNKNOWN", "content matches no known model, archive or data format")
        ctx.unanalyzable("unknown format")
        return "unknown"
    if top:
        ctx.state.result.format = handler.name
    if handler.name not in ctx.state.result.formats:
        ctx.state.result.formats.append(handler.name)
    name = ctx.member_name if ctx.member_name is not None else ctx.path
    _check_name(ctx, name, handler, reader.head(SNIFF_BYTES) if handler.name == "text" else b"")
    run_inspector(handler, reader, ctx)
    if handler.family != "pickle" and handler.name in SNIFFED_BEFORE_PICKLE:
        view = functools.partial(_pickle_view, claimed=handler.name)
        run_inspector(FormatHandler("pickle-view", lambda head, r: True, view, family="pickle"), reader, ctx)
    return handler.name


def _pickle_view(reader: Reader, ctx: InspectContext, *, claimed: str) -> None:
    """Content a sniffer ahead of the pickle one claimed, which a pickle loader would also run.

    Only the first claim is inspected, so a file that is valid GGUF, ONNX, TFLite, Core ML weights or a tar
    (whose first member name is free text) and also a pickle whose opcodes import code was judged as the
    first format alone, while ``pickle.load``, ``joblib.load`` or a legacy ``torch.load`` of it ran the
    payload (all four formats were shown to run ``os.system`` that way). When the pickle walk of the content
    imports anything, the whole file is analysed as a pickle as well.
    """
    from ._pickle_bridge import analyze_pickles
    from .pickle.handler import imports_when_loaded

    if not imports_when_loaded(reader.head(SNIFF_BYTES), reader):
        return
    ctx.add(
        "FORMAT-PICKLE-POLYGLOT",
        f"the {claimed} content is also a pickle stream that imports code: "
        "pickle.load, joblib.load or a legacy torch.load of this file runs it (analysed as a pickle too)",
        offset=0,
    )
    analyze_pickles(reader, ctx, member="<pickle view>")
