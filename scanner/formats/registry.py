"""Discovers format handlers: every module under ``scanner.formats`` that defines ``HANDLERS``.

Adding a format is adding one module; nothing else needs editing.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from .base import FormatHandler


@functools.lru_cache(maxsize=1)
def handlers() -> tuple[FormatHandler, ...]:
    from .. import formats as pkg

    found: list[FormatHandler] = []
    for mod in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
        module = importlib.import_module(mod.name)
        found.extend(getattr(module, "HANDLERS", ()))
    names = [h.name for h in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise RuntimeError(f"duplicate format handler names: {sorted(dupes)}")
    return tuple(sorted(found, key=lambda h: (h.priority, h.name)))


def by_name(name: str) -> FormatHandler:
    for h in handlers():
        if h.name == name:
            return h
    raise KeyError(name)
