"""Helpers for the pickle analyzer tests: a byte-level pickle assembler and scan shortcuts.

Nothing here unpickles: payload pickles are built by hand or with pickle.dumps of
objects whose __reduce__ names a harmless command (dumps never calls it).
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from scanner.findings import FileResult, Finding, Severity
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from scanner.rules import get_rule_db

DATA = Path(__file__).parent / "data"
CANARY = "touch /tmp/modelward-canary"


class Evil:
    """pickle.dumps of this writes a REDUCE of os.system; it is never loaded."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, (CANARY,))


# -- a tiny assembler: each helper returns opcode bytes --
PROTO = lambda n: b"\x80" + bytes([n])  # noqa: E731
STOP = b"."
MARK = b"("
REDUCE = b"R"
BUILD = b"b"
POP = b"0"
TUPLE = b"t"
TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST = b"}", b")", b"]"
SETITEM, SETITEMS = b"s", b"u"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
NONE = b"N"
NEWOBJ = b"\x81"
OBJ = b"o"


def U(s: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE."""
    b = s.encode()
    return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + struct.pack("<I", len(b)) + b)


def B(b: bytes) -> bytes:
    return (b"C" + bytes([len(b)]) + b) if len(b) < 256 else (b"B" + struct.pack("<I", len(b)) + b)


def S0(s: str) -> bytes:
    """Protocol-0 STRING."""
    return b"S" + repr(s).encode() + b"\n"


def G(module: str, name: str) -> bytes:
    """GLOBAL (protocol 0)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def SG(module: str, name: str) -> bytes:
    return U(module) + U(name) + STACK_GLOBAL


def INT(n: int) -> bytes:
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def PUT(i: int) -> bytes:
    return b"q" + bytes([i])


def GET(i: int) -> bytes:
    return b"h" + bytes([i])


def call(func: bytes, *args: bytes) -> bytes:
    """func(*args) via MARK ... TUPLE REDUCE."""
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def scan(data: bytes, name: str = "sample.pkl", *, limits: Limits | None = None,
         profiles: list[str] | None = None, extra: list[str] | None = None) -> FileResult:
    limits = limits or Limits()
    result = FileResult(path=name, size=len(data), format="unknown")
    state = ScanState(
        rules=get_rule_db(),
        limits=limits,
        result=result,
        budget_left=limits.max_total_uncompressed,
        deadline=time.monotonic() + limits.file_seconds,
        allowed_profiles=profiles,
        extra_allowed_globals=list(extra or []),
    )
    reader = BytesReader(data, name)
    inspect_with_detection(reader, InspectContext(state, name, dispatch=inspect_with_detection))
    result.bytes_read = reader.bytes_read
    return result


def rules(result: FileResult) -> set[str]:
    return {f.rule_id for f in result.findings}


def worst(result: FileResult) -> Severity | None:
    return result.max_severity


def finding(result: FileResult, rule_id: str) -> Finding:
    for f in result.findings:
        if f.rule_id == rule_id:
            return f
    raise AssertionError(f"{rule_id} not in {[(f.rule_id, f.message) for f in result.findings]}")


@pytest.fixture
def evil_bytes() -> bytes:
    import pickle

    return pickle.dumps(Evil(), protocol=2)
