"""Peak-memory measurement for tests: run a scan in a forked child and read the kernel's high-water mark.

tracemalloc would be exact but slows pure-Python walkers ~50x; VmHWM (reset via
/proc/self/clear_refs) measures the real thing at full speed.
"""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_rss_rise(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn`` in a forked child; return its result and how far the child's peak RSS rose above its start."""
    if not Path("/proc/self/clear_refs").exists() or not hasattr(os, "fork"):
        pytest.skip("needs Linux /proc peak-RSS accounting")
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(rd)
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            base = _status("VmRSS")
            result = fn()
            out = {"peak": _status("VmHWM") - base, "result": pickle.dumps(result)}
            with os.fdopen(wr, "wb") as f:
                pickle.dump(out, f)  # our own result objects, not scanned content
            code = 0
        finally:
            os._exit(code)
    os.close(wr)
    with os.fdopen(rd, "rb") as f:
        raw = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and raw, "scan child failed"
    out = pickle.loads(raw)  # written by the child above from our own objects
    return pickle.loads(out["result"]), out["peak"]
