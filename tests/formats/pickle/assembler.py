"""A byte-level pickle assembler for the pickle analyzer tests, and the harness's scan with pickle defaults.

Nothing here unpickles: payload pickles are built by hand or with pickle.dumps of
objects whose __reduce__ names a harmless command (dumps never calls it).
"""

from __future__ import annotations

import struct
from pathlib import Path

from scanner.findings import FileResult, Finding
from scanner.limits import Limits
from tests.harness import detect_bytes, rule_ids, worst  # noqa: F401  (worst re-exported for the pickle tests)

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


def scan(
    data: bytes,
    name: str = "sample.pkl",
    *,
    limits: Limits | None = None,
    profiles: list[str] | None = None,
    extra: list[str] | None = None,
) -> FileResult:
    """Detection and inspection of pickle bytes (the harness's, with a pickle file name by default)."""
    return detect_bytes(data, name, limits, profiles=profiles, extra=extra)


rules = rule_ids


def finding(result: FileResult, rule_id: str) -> Finding:
    for f in result.findings:
        if f.rule_id == rule_id:
            return f
    raise AssertionError(f"{rule_id} not in {[(f.rule_id, f.message) for f in result.findings]}")
