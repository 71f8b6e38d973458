"""Bounded static decoder for marshalled CPython code objects (Keras Lambda blobs).

``marshal.loads`` on untrusted bytes has crashed interpreters and is never
used: this reader walks the marshal format itself, with caps on objects, depth
and sizes, and reports what a code object would touch (co_names, string
constants, nested functions, the author's co_filename). The code-object field
layout changed across CPython versions and the blob does not say which one
wrote it, so each known layout is tried and the one that decodes the whole
blob wins.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MAX_OBJECTS = 200_000
MAX_DEPTH = 64
MAX_REPORTED = 200

FLAG_REF = 0x80

# code object field layouts: 'i' = 32-bit int read raw, 'o' = a marshalled object
_LAYOUTS: dict[str, list[tuple[str, str]]] = {
    "3.11+": [
        ("argcount", "i"),
        ("posonlyargcount", "i"),
        ("kwonlyargcount", "i"),
        ("stacksize", "i"),
        ("flags", "i"),
        ("code", "o"),
        ("consts", "o"),
        ("names", "o"),
        ("localsplusnames", "o"),
        ("localspluskinds", "o"),
        ("filename", "o"),
        ("name", "o"),
        ("qualname", "o"),
        ("firstlineno", "i"),
        ("linetable", "o"),
        ("exceptiontable", "o"),
    ],
    "3.8-3.10": [
        ("argcount", "i"),
        ("posonlyargcount", "i"),
        ("kwonlyargcount", "i"),
        ("nlocals", "i"),
        ("stacksize", "i"),
        ("flags", "i"),
        ("code", "o"),
        ("consts", "o"),
        ("names", "o"),
        ("varnames", "o"),
        ("freevars", "o"),
        ("cellvars", "o"),
        ("filename", "o"),
        ("name", "o"),
        ("firstlineno", "i"),
        ("lnotab", "o"),
    ],
    "3.0-3.7": [
        ("argcount", "i"),
        ("kwonlyargcount", "i"),
        ("nlocals", "i"),
        ("stacksize", "i"),
        ("flags", "i"),
        ("code", "o"),
        ("consts", "o"),
        ("names", "o"),
        ("varnames", "o"),
        ("freevars", "o"),
        ("cellvars", "o"),
        ("filename", "o"),
        ("name", "o"),
        ("firstlineno", "i"),
        ("lnotab", "o"),
    ],
}


class MarshalError(Exception):
    pass


@dataclass
class CodeInfo:
    name: str | None = None
    qualname: str | None = None
    filename: str | None = None
    names: list[str] = field(default_factory=list)
    varnames: list[str] = field(default_factory=list)
    consts: list[Any] = field(default_factory=list)  # str/int/float/bytes/None/bool (nested code excluded)
    children: list[CodeInfo] = field(default_factory=list)


@dataclass
class MarshalSummary:
    ok: bool
    layout: str | None = None
    error: str | None = None
    functions: list[str] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)

    def evidence(self, cap: int = 40) -> dict[str, Any]:
        ev: dict[str, Any] = {"decoded": self.ok}
        if self.layout:
            ev["layout"] = self.layout
        if self.error:
            ev["error"] = self.error[:200]
        for k in ("functions", "filenames", "names", "strings"):
            v = getattr(self, k)
            if v:
                ev[k] = [s[:200] for s in v[:cap]]
        return ev


class _Code:
    """Marker for a decoded code object inside a container."""

    def __init__(self, info: CodeInfo) -> None:
        self.info = info


class _Reader:
    def __init__(self, data: bytes, layout: list[tuple[str, str]]) -> None:
        self.d = data
        self.pos = 0
        self.layout = layout
        self.refs: list[Any] = []
        self.count = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.d):
            raise MarshalError(f"truncated at offset {self.pos} (need {n} bytes)")
        b = self.d[self.pos : self.pos + n]
        self.pos += n
        return b

    def i32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def u8(self) -> int:
        return self.take(1)[0]

    def _count(self, n: int, per_item: int = 1) -> int:
        if n < 0 or n * per_item > len(self.d) - self.pos:
            raise MarshalError(f"declared count {n} exceeds remaining bytes")
        return n

    def obj(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise MarshalError("nesting too deep")
        self.count += 1
        if self.count > MAX_OBJECTS:
            raise MarshalError("too many objects")
        code = self.u8()
        flag = code & FLAG_REF
        t = chr(code & ~FLAG_REF)
        slot = None
        if flag:
            slot = len(self.refs)
            self.refs.append(None)
        v = self._value(t, depth)
        if slot is not None:
            self.refs[slot] = v
        return v

    def _value(self, t: str, depth: int) -> Any:
        if t in "0NFTS.":
            return {"0": None, "N": None, "F": False, "T": True, "S": None, ".": Ellipsis}[t]
        if t == "i":
            return self.i32()
        if t == "I":
            return struct.unpack("<q", self.take(8))[0]
        if t == "g":
            return struct.unpack("<d", self.take(8))[0]
        if t == "y":
            self.take(16)
            return 0j
        if t in "fx":
            for _ in range(1 if t == "f" else 2):
                self.take(self.u8())
            return 0.0
        if t == "l":
            n = self.i32()
            self._count(abs(n), 2)
            digits = struct.unpack(f"<{abs(n)}H", self.take(2 * abs(n))) if n else ()
            v = 0
            for d in reversed(digits[:40]):
                v = (v << 15) | d
            return -v if n < 0 else v
        if t == "s":
            return self.take(self._count(self.i32()))
        if t in "tuaA":
            b = self.take(self._count(self.i32()))
            return b.decode("utf-8", "replace") if t in "tu" else b.decode("latin-1")
        if t in "zZ":
            return self.take(self.u8()).decode("latin-1")
        if t == ")":
            return tuple(self.obj(depth + 1) for _ in range(self._count(self.u8())))
        if t in "([<>":
            return tuple(self.obj(depth + 1) for _ in range(self._count(self.i32())))
        if t == "{":
            items = []
            while True:
                if self.pos < len(self.d) and self.d[self.pos] == ord("0"):
                    self.pos += 1
                    break
                k = self.obj(depth + 1)
                items.append((k, self.obj(depth + 1)))
            return tuple(items)
        if t == "r":
            idx = self.i32()
            if idx < 0 or idx >= len(self.refs):
                raise MarshalError(f"bad back-reference {idx}")
            return self.refs[idx]
        if t == ":":  # slice (3.14)
            return tuple(self.obj(depth + 1) for _ in range(3))
        if t == "c":
            return _Code(self._code(depth))
        raise MarshalError(f"unknown type code {t!r} at offset {self.pos - 1}")

    def _code(self, depth: int) -> CodeInfo:
        fields: dict[str, Any] = {}
        for fname, kind in self.layout:
            fields[fname] = self.i32() if kind == "i" else self.obj(depth + 1)
        if not isinstance(fields["code"], bytes):
            raise MarshalError("code field is not bytes")
        for k in ("consts", "names"):
            if not isinstance(fields[k], tuple):
                raise MarshalError(f"{k} is not a tuple")
        if not all(isinstance(n, str) for n in fields["names"]):
            raise MarshalError("names are not strings")
        if not isinstance(fields["filename"], str) or not isinstance(fields["name"], str):
            raise MarshalError("filename/name are not strings")
        info = CodeInfo(
            name=fields["name"],
            qualname=fields.get("qualname") if isinstance(fields.get("qualname"), str) else None,
            filename=fields["filename"],
            names=list(fields["names"]),
        )
        vn = fields.get("varnames", fields.get("localsplusnames"))
        if isinstance(vn, tuple):
            info.varnames = [v for v in vn if isinstance(v, str)]
        for c in fields["consts"]:
            if isinstance(c, _Code):
                info.children.append(c.info)
            elif isinstance(c, tuple):
                info.consts.extend(x for x in c if isinstance(x, (str, int, float, bytes)))
            else:
                info.consts.append(c)
        return info


def decode_code(data: bytes) -> tuple[CodeInfo | None, str | None, str | None]:
    """(code info, layout name, error). Tries every layout; the one that consumes the whole blob wins."""
    errors = []
    partial: tuple[CodeInfo, str] | None = None
    for name, layout in _LAYOUTS.items():
        r = _Reader(data, layout)
        try:
            v = r.obj()
        except (MarshalError, struct.error, RecursionError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        if not isinstance(v, _Code):
            return None, None, "top-level object is not a code object"
        if r.pos == len(data):
            return v.info, name, None
        partial = partial or (v.info, name)
        errors.append(f"{name}: {len(data) - r.pos} trailing bytes")
    if partial:
        return partial[0], partial[1], "; ".join(errors)
    return None, None, "; ".join(errors)[:400]


def summarize(data: bytes) -> MarshalSummary:
    """What a marshalled code object uses: names, string constants, functions, file names (capped)."""
    info, layout, err = decode_code(data)
    if info is None:
        return MarshalSummary(ok=False, error=err)
    s = MarshalSummary(ok=True, layout=layout, error=err)
    stack = [info]
    seen = 0
    while stack and seen < 1000:
        c = stack.pop()
        seen += 1
        if c.name and c.name not in s.functions:
            s.functions.append(c.qualname or c.name)
        if c.filename and c.filename not in s.filenames:
            s.filenames.append(c.filename)
        for n in c.names:
            if n not in s.names and len(s.names) < MAX_REPORTED:
                s.names.append(n)
        for k in c.consts:
            if isinstance(k, str) and k not in s.strings and len(s.strings) < MAX_REPORTED:
                s.strings.append(k)
            elif isinstance(k, bytes) and len(s.strings) < MAX_REPORTED:
                s.strings.append(repr(k[:200]))
        stack.extend(c.children)
    return s


SUSPICIOUS_NAMES = frozenset(
    {
        "system",
        "popen",
        "exec",
        "eval",
        "compile",
        "__import__",
        "import_module",
        "subprocess",
        "os",
        "Popen",
        "run",
        "call",
        "check_output",
        "getattr",
        "open",
        "socket",
        "urlopen",
        "requests",
        "loads",
        "load",
        "b64decode",
        "spawn",
        "pty",
        "builtins",
        "__builtins__",
        "globals",
        "setattr",
        "remove",
        "unlink",
        "rmtree",
        "write",
    }
)
