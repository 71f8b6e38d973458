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
    zipfmt.inspect_all(reader, ctx, "zip")


HANDLERS = [
    FormatHandler("zip-archive", zipfmt.looks_like_zip, _inspect, family="zip", claims=(".zip",), priority=45),
]
