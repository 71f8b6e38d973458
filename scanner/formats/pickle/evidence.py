"""Decompiled Python (via fickling) as human-readable evidence for blocked pickles.

fickling interprets opcodes symbolically into an AST; it never imports or calls
what the pickle names. It is only asked for evidence, never for the verdict, and
it is bounded: input size, a worker thread with a timeout, output truncation.
Any failure just means no decompiled text.
"""

from __future__ import annotations

import ast
import logging
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)


class _Sink:
    def write(self, s: str) -> int:
        log.debug("fickling: %s", s.rstrip())
        return len(s)

    def flush(self) -> None:
        pass


class _QuietSys:
    """fickling writes warnings straight to sys.stdout/stderr; that would corrupt our JSON/SARIF on stdout."""

    stdout = _Sink()
    stderr = _Sink()

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)


def _quiet(module: Any) -> None:
    if getattr(module, "sys", None) is sys:
        module.sys = _QuietSys()


MAX_INPUT = 1 << 20  # bytes of one pickle we hand to fickling
MAX_OPCODES = 200_000


def decompile(data: bytes, *, seconds: float, max_chars: int) -> str | None:
    """Python-like source for one pickle, or None if fickling fails or runs out of time."""
    if not data or len(data) > MAX_INPUT:
        return None
    box: list[str] = []

    def work() -> None:
        try:
            from fickling import fickle
            from fickling.fickle import Pickled

            _quiet(fickle)
            pickled = Pickled.load(data)
            if len(pickled) > MAX_OPCODES:
                return
            box.append(ast.unparse(pickled.ast))
        except Exception:  # evidence only: a fickling failure must never affect the scan
            log.debug("fickling could not decompile", exc_info=True)

    t = threading.Thread(target=work, name="modelward-fickling", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive() or not box:
        return None
    text = box[0]
    if len(text) > max_chars:
        text = text[: max_chars - 20] + "\n# … (truncated)"
    return text
