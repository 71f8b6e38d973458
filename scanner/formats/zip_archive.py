"""Generic zip archives: every member is inspected by content, whatever its name.

Formats that are zips with a known layout (PyTorch, TorchScript, npz, Keras)
have their own handlers sniffed first; this one takes every other zip,
including a zip found only through its end record behind other data (a
polyglot), whose leading bytes are inspected as well.
"""

from __future__ import annotations

from ..io.reader import Reader
from . import zipfmt
from .base import FormatHandler, InspectContext


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    listing = zipfmt.read_zip(reader, ctx)
    if listing is None:
        return
    zipfmt.inspect_extra_regions(reader, listing, ctx)
    for e in zipfmt.unique_entries(listing):
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting zip members")
            return
        zipfmt.inspect_entry(reader, e, ctx)


HANDLERS = [
    FormatHandler("zip-archive", zipfmt.looks_like_zip, _inspect, family="zip", claims=(".zip",), priority=45),
]
