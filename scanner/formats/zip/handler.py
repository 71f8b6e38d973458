"""Generic zip archives: every member is inspected by content, whatever its name.

Formats that are zips with a known layout (PyTorch, TorchScript, npz, Keras)
have their own handlers sniffed first; this one takes every other zip,
including a zip found only through its end record behind other data (a
polyglot), whose leading bytes are inspected as well.
"""

from __future__ import annotations

from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext
from .listing import looks_like_zip
from .members import inspect_all


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    inspect_all(reader, ctx, "zip")


ZIP_ARCHIVE = FormatHandler("zip-archive", looks_like_zip, _inspect, family="zip", claims=(".zip",))
