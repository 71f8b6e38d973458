"""The opcode walker: one pickle, symbolically, as the C unpickler would run it.

It keeps a symbolic stack (with MARK fences, like ``_pickle.c``) and memo, and
records every import, every call with the provenance of its callable, every
BUILD/mutation target and every persistent id. It never imports or calls
anything. Errors stop the walk but keep everything recorded so far: a loader
runs opcodes as it reads them, so a payload before a broken tail still runs.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...limits import Limits
from .cursor import Cursor, LineTooLong, Truncated
from .dtypes import dtype_info
from .opcodes import BY_BYTE, HIGHEST_PROTOCOL, Arg
from .values import Blob, Call, Const, Dct, Glob, ImportRec, Opaque, Seq, V, make_seq, plain, render

JOBLIB_WRAPPER = "joblib.numpy_pickle:NumpyArrayWrapper"
LITERAL_MIN = 16  # shorter literals cannot hold an encoded pickle worth reporting
_TIME_CHECK_EVERY = 4096


class Malformed(Exception):
    """The real loader would raise here."""


class LimitHit(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


@dataclass
class Budget:
    """Opcodes left for the whole top-level stream (shared by stacked and nested pickles)."""

    opcodes: int


@dataclass
class WalkResult:
    start: int
    end: int = -1  # offset just after STOP; -1 when the walk did not reach one
    proto: int = 0
    opcodes: int = 0
    imports: list[ImportRec] = field(default_factory=list)
    untraced: list[dict[str, Any]] = field(default_factory=list)
    mutations: list[dict[str, Any]] = field(default_factory=list)
    persistent_ids: list[Any] = field(default_factory=list)
    loader_calls: list[tuple[ImportRec, Call]] = field(default_factory=list)
    joblib_arrays: int = 0
    error: str | None = None
    error_offset: int | None = None
    error_index: int | None = None
    limit: LimitHit | None = None

    @property
    def complete(self) -> bool:
        return self.end >= 0 and self.error is None and self.limit is None


LiteralHook = Callable[[Any, int], None]
InlinePickleHook = Callable[[Cursor], bool]
ShadowHook = Callable[[int, int], None]


def _describe(v: V) -> str:
    """Where a non-imported callable came from, for the untraced-call finding."""
    if isinstance(v, Call):
        inner = v.func.rec.path if isinstance(v.func, Glob) else "an untraced value"
        return f"the result of calling {inner} ({v.opcode} at offset {v.offset})"
    if isinstance(v, Const):
        return f"a literal {type(v.value).__name__}"
    if isinstance(v, Blob):
        return f"a {v.kind} literal"
    if isinstance(v, Opaque):
        return f"a {v.what} value"
    if isinstance(v, Seq):
        return f"a {v.kind}"
    if isinstance(v, Dct):
        return "a dict"
    return "an unknown value"


class Machine:
    def __init__(
        self,
        cur: Cursor,
        limits: Limits,
        budget: Budget,
        *,
        out_of_time: Callable[[], bool],
        loader_names: frozenset[str] = frozenset(),
        on_literal: LiteralHook | None = None,
        on_inline_pickle: InlinePickleHook | None = None,
        on_shadow: ShadowHook | None = None,
        joblib: bool = True,
    ) -> None:
        self.cur = cur
        self.limits = limits
        self.budget = budget
        self.out_of_time = out_of_time
        self.loader_names = loader_names
        self.on_literal = on_literal
        self.on_inline_pickle = on_inline_pickle
        self.on_shadow = on_shadow
        self.joblib = joblib
        self.stack: list[V] = []
        self.marks: list[int] = []
        self.memo: dict[int, V] = {}
        self.proto = 0
        self.frame_end: int | None = None
        self.res = WalkResult(start=cur.pos)
        self._stack_limit = limits.max_pickle_stack
        self.index = 0
        self.op_offset = cur.pos

    # -- stack primitives (C semantics: pops may not cross the innermost MARK) --
    def _fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, v: V) -> None:
        stack = self.stack
        if len(stack) + len(self.marks) >= self._stack_limit:
            raise LimitHit("max_pickle_stack", f"pickle stack deeper than {self.limits.max_pickle_stack} entries")
        stack.append(v)

    def pop(self) -> V:
        if len(self.stack) <= self._fence():
            raise Malformed("stack underflow")
        return self.stack.pop()

    def top(self) -> V:
        if len(self.stack) <= self._fence():
            raise Malformed("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[V]:
        if not self.marks:
            raise Malformed("MARK expected but not found")
        k = self.marks.pop()
        items = self.stack[k:]
        del self.stack[k:]
        return items

    # -- the walk --
    def run(self) -> WalkResult:
        res = self.res
        try:
            self._loop()
        except Malformed as exc:
            res.error, res.error_offset, res.error_index = str(exc), self.op_offset, self.index
        except Truncated as exc:
            res.error = f"truncated: {exc}"
            res.error_offset, res.error_index = self.op_offset, self.index
        except LineTooLong as exc:
            res.limit = LimitHit("max_string", f"{exc} (limit {self.limits.max_string})")
            res.error_offset = self.op_offset
        except LimitHit as exc:
            res.limit = exc
            res.error_offset = self.op_offset
        res.proto = self.proto
        return res

    def _table(self) -> list[tuple[Arg, Callable[[Any], Any], str] | None]:
        table: list[tuple[Arg, Callable[[Any], Any], str] | None] = [None] * 256
        for code, op in enumerate(BY_BYTE):
            if op is not None:
                table[code] = (op.arg, getattr(self, "op_" + op.name), op.name)
        return table

    def _loop(self) -> None:
        cur = self.cur
        table = self._table()
        res = self.res
        budget = self.budget
        none = Arg.NONE
        while True:
            if budget.opcodes <= 0:
                raise LimitHit("max_pickle_opcodes", f"more than {self.limits.max_pickle_opcodes} pickle opcodes")
            budget.opcodes -= 1
            index = self.index
            if not index % _TIME_CHECK_EVERY and index and self.out_of_time():
                raise LimitHit("file_seconds", "time budget for this file ran out inside the pickle")
            pos = cur.pos
            self.op_offset = pos
            off = pos - cur._buf_start
            if pos < cur.end and 0 <= off < len(cur._buf):
                code = cur._buf[off]
                cur.pos = pos + 1
            else:
                code = cur.byte()
            entry = table[code]
            if entry is None:
                raise Malformed(f"invalid opcode 0x{code:02x}")
            res.opcodes += 1
            kind, handler, name = entry
            done = handler(None) if kind is none else handler(self._arg(kind, name))
            self.index = index + 1
            if done:
                res.end = cur.pos
                return

    def _arg(self, kind: Arg, name: str) -> Any:
        cur = self.cur
        if kind is Arg.NONE:
            return None
        if kind is Arg.U1:
            return cur.byte()
        if kind is Arg.U2:
            return struct.unpack("<H", cur.read(2))[0]
        if kind is Arg.U4:
            return struct.unpack("<I", cur.read(4))[0]
        if kind is Arg.I4:
            return struct.unpack("<i", cur.read(4))[0]
        if kind is Arg.U8:
            return struct.unpack("<Q", cur.read(8))[0]
        if kind is Arg.F8:
            return struct.unpack(">d", cur.read(8))[0]
        if kind is Arg.LINE:
            return cur.line(self.limits.max_string)
        if kind is Arg.TWO_LINES:
            return cur.line(self.limits.max_string), cur.line(self.limits.max_string)
        if kind is Arg.BYTES_U1:
            n = cur.byte()
        elif kind is Arg.BYTES_U4:
            n = struct.unpack("<I", cur.read(4))[0]
        elif kind is Arg.BYTES_I4:
            n = struct.unpack("<i", cur.read(4))[0]
            if n < 0:
                raise Malformed(f"{name} with negative length {n}")
        else:
            n = struct.unpack("<Q", cur.read(8))[0]
        if n > cur.remaining:
            raise Truncated(f"{name} declares {n} bytes but only {cur.remaining} remain")
        keep = self.limits.max_string if name not in ("LONG1", "LONG4") else 64
        if n > keep:
            off = cur.pos
            cur.skip(n)
            return Blob("int" if name.startswith("LONG") else name.lower(), n, off)
        return cur.read(n)

    def _literal(self, value: Any) -> None:
        v = Const(value, self.op_offset)
        if self.on_literal is not None and isinstance(value, (str, bytes)) and len(value) >= LITERAL_MIN:
            self.on_literal(value, self.op_offset)
        self.push(v)

    # -- imports --
    def _import(self, module: str, name: str, opcode: str, dynamic: str | None = None) -> None:
        raw = None
        if self.proto < 3 and dynamic is None:
            key = (module, name)
            if key in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[key]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            if (module, name) != key:
                raw = f"{key[0]}:{key[1]}"
        if dynamic is None and "." in name:
            dynamic = "dotted name (attribute traversal)"
        rec = ImportRec(module, name, opcode, self.op_offset, self.index, dynamic=dynamic, raw=raw)
        if len(self.res.imports) < 100_000:
            self.res.imports.append(rec)
        self.push(Glob(rec))

    def _text(self, b: bytes, what: str) -> str:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{what} is not valid UTF-8") from None

    # -- calls --
    def _call(self, func: V, args: V, opcode: str, kwargs: V | None = None) -> None:
        if isinstance(func, Glob):
            rec = func.rec
            rec.called += 1
            if rec.first_call is None:
                ev: dict[str, Any] = {"opcode": opcode, "offset": self.op_offset, "args": render(args)}
                if kwargs is not None:
                    ev["kwargs"] = render(kwargs)
                rec.first_call = ev
        else:
            if len(self.res.untraced) < 1000:
                self.res.untraced.append(
                    {
                        "opcode": opcode,
                        "offset": self.op_offset,
                        "index": self.index,
                        "callable": _describe(func),
                        "args": render(args),
                    }
                )
        for holder in (args, kwargs):
            items: list[V] = []
            if isinstance(holder, Seq):
                items = holder.items
            elif isinstance(holder, Dct):
                items = [v for _, v in holder.items]
            for a in items:
                if isinstance(a, Glob):
                    a.rec.passed += 1
        call = Call(func, args, opcode, self.op_offset)
        if isinstance(func, Glob) and func.rec.path in self.loader_names and len(self.res.loader_calls) < 64:
            self.res.loader_calls.append((func.rec, call))
        self.push(call)

    def _mutate(self, target: V, opcode: str, detail: V | None) -> None:
        if isinstance(target, Glob) and len(self.res.mutations) < 1000:
            self.res.mutations.append(
                {
                    "rec": target.rec,
                    "opcode": opcode,
                    "offset": self.op_offset,
                    "index": self.index,
                    "state": render(detail) if detail is not None else None,
                }
            )

    # -- opcode handlers: return True on STOP --
    def op_MARK(self, _: Any) -> None:
        if len(self.stack) + len(self.marks) >= self.limits.max_pickle_stack:
            raise LimitHit("max_pickle_stack", f"pickle stack deeper than {self.limits.max_pickle_stack} entries")
        self.marks.append(len(self.stack))

    def op_STOP(self, _: Any) -> bool:
        self.pop()
        return True

    def op_POP(self, _: Any) -> None:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()
        else:
            self.pop()

    def op_POP_MARK(self, _: Any) -> None:
        self.pop_mark()

    def op_DUP(self, _: Any) -> None:
        self.push(self.top())

    def op_FLOAT(self, a: bytes) -> None:
        try:
            self.push(Const(float(a), self.op_offset))
        except ValueError:
            raise Malformed("FLOAT is not a number") from None

    def op_INT(self, a: bytes) -> None:
        if a == b"00":
            self.push(Const(False))
        elif a == b"01":
            self.push(Const(True))
        else:
            self.push(self._parse_int(a, "INT"))

    def op_LONG(self, a: bytes) -> None:
        if a.endswith(b"L"):
            a = a[:-1]
        self.push(self._parse_int(a, "LONG"))

    def _parse_int(self, a: bytes, what: str) -> V:
        s = a.strip()
        if len(s) > 4000:
            if not s.lstrip(b"+-").isdigit():
                raise Malformed(f"{what} is not a number")
            return Opaque("large int")
        try:
            return Const(int(s, 10), self.op_offset)
        except ValueError:
            raise Malformed(f"{what} is not a number") from None

    def op_NONE(self, _: Any) -> None:
        self.push(Const(None))

    def op_PERSID(self, a: bytes) -> None:
        try:
            pid = a.decode("ascii")
        except UnicodeDecodeError:
            raise Malformed("persistent id is not ASCII") from None
        self._persid(Const(pid))

    def op_BINPERSID(self, _: Any) -> None:
        self._persid(self.pop())

    def _persid(self, pid: V) -> None:
        if len(self.res.persistent_ids) < 1_000_000:
            self.res.persistent_ids.append(plain(pid))
        self.push(Opaque("persistent id"))

    def op_REDUCE(self, _: Any) -> None:
        args = self.pop()
        func = self.pop()
        self._call(func, args, "REDUCE")

    def op_STRING(self, a: bytes) -> None:
        a = a.rstrip()
        if len(a) < 2 or a[0] != a[-1] or a[:1] not in (b"'", b'"'):
            raise Malformed("the STRING opcode argument must be quoted")
        try:
            val = codecs.escape_decode(a[1:-1])[0]
        except ValueError:
            raise Malformed("STRING has a bad escape") from None
        self._literal(val.decode("latin-1"))

    def op_UNICODE(self, a: bytes) -> None:
        try:
            self._literal(a.decode("raw-unicode-escape"))
        except UnicodeDecodeError:
            raise Malformed("UNICODE has a bad escape") from None

    def _bin_text(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(a)
            return
        try:
            self._literal(a.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise Malformed("text opcode with invalid UTF-8") from None

    def _bin_str8(self, a: bytes | Blob) -> None:
        # protocol-0/1 8-bit strings load as str under the default (ASCII/latin1) encodings
        if isinstance(a, Blob):
            self.push(a)
        else:
            self._literal(a.decode("latin-1"))

    def _bin_bytes(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(a)
        else:
            self._literal(a)

    op_BINUNICODE = op_SHORT_BINUNICODE = op_BINUNICODE8 = _bin_text
    op_BINSTRING = op_SHORT_BINSTRING = _bin_str8
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = _bin_bytes

    def op_BYTEARRAY8(self, a: bytes | Blob) -> None:
        self.push(a if isinstance(a, Blob) else Const(bytearray(a), self.op_offset))

    def op_APPEND(self, _: Any) -> None:
        v = self.pop()
        target = self.top()
        if isinstance(target, Seq) and target.kind == "list":
            target.add(v)
        else:
            self._mutate(target, "APPEND", v)

    def op_APPENDS(self, _: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Seq) and target.kind == "list":
            for v in items:
                target.add(v)
        else:
            self._mutate(target, "APPENDS", make_seq("list", items))

    def op_BUILD(self, _: Any) -> None:
        state = self.pop()
        inst = self.top()
        if isinstance(inst, Glob):
            self._mutate(inst, "BUILD", state)
            return
        if isinstance(inst, Call):
            inst.state = state
            if self.joblib and isinstance(inst.func, Glob) and inst.func.rec.path == JOBLIB_WRAPPER:
                self._joblib_array(inst, state)

    def op_GLOBAL(self, a: tuple[bytes, bytes]) -> None:
        self._import(self._text(a[0], "GLOBAL module"), self._text(a[1], "GLOBAL name"), "GLOBAL")

    def op_DICT(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for DICT")
        d = Dct()
        for i in range(0, len(items), 2):
            d.set(items[i], items[i + 1])
        self.push(d)

    def op_EMPTY_DICT(self, _: Any) -> None:
        self.push(Dct())

    def _memo_get(self, idx: int) -> None:
        try:
            self.push(self.memo[idx])
        except KeyError:
            raise Malformed(f"memo key {idx} was never stored (GET before PUT)") from None

    def op_GET(self, a: bytes) -> None:
        try:
            idx = int(a)
        except ValueError:
            raise Malformed("GET index is not a number") from None
        self._memo_get(idx)

    op_BINGET = op_LONG_BINGET = _memo_get

    def _memo_put(self, idx: int) -> None:
        if idx < 0:
            raise Malformed("negative PUT index")
        v = self.top()
        if idx not in self.memo and len(self.memo) >= self.limits.max_pickle_memo:
            raise LimitHit("max_pickle_memo", f"pickle memo larger than {self.limits.max_pickle_memo} entries")
        self.memo[idx] = v

    def op_PUT(self, a: bytes) -> None:
        try:
            idx = int(a)
        except ValueError:
            raise Malformed("PUT index is not a number") from None
        self._memo_put(idx)

    op_BINPUT = op_LONG_BINPUT = _memo_put

    def op_MEMOIZE(self, _: Any) -> None:
        self._memo_put(len(self.memo))

    def op_INST(self, a: tuple[bytes, bytes]) -> None:
        module, name = self._text(a[0], "INST module"), self._text(a[1], "INST name")
        args = self.pop_mark()
        self._import(module, name, "INST")
        cls = self.pop()
        self._call(cls, make_seq("tuple", args), "INST")

    def op_OBJ(self, _: Any) -> None:
        items = self.pop_mark()
        if not items:
            raise Malformed("OBJ without a class")
        self._call(items[0], make_seq("tuple", items[1:]), "OBJ")

    def op_LIST(self, _: Any) -> None:
        self.push(make_seq("list", self.pop_mark()))

    def op_EMPTY_LIST(self, _: Any) -> None:
        self.push(Seq("list"))

    def op_SETITEM(self, _: Any) -> None:
        v = self.pop()
        k = self.pop()
        target = self.top()
        if isinstance(target, Dct):
            target.set(k, v)
        else:
            self._mutate(target, "SETITEM", make_seq("tuple", [k, v]))

    def op_SETITEMS(self, _: Any) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise Malformed("odd number of items for SETITEMS")
        target = self.top()
        if isinstance(target, Dct):
            for i in range(0, len(items), 2):
                target.set(items[i], items[i + 1])
        else:
            self._mutate(target, "SETITEMS", make_seq("tuple", items))

    def op_TUPLE(self, _: Any) -> None:
        self.push(make_seq("tuple", self.pop_mark()))

    def op_EMPTY_TUPLE(self, _: Any) -> None:
        self.push(Seq("tuple"))

    def _tuple_n(self, n: int) -> None:
        items = [self.pop() for _ in range(n)][::-1]
        self.push(make_seq("tuple", items))

    def op_TUPLE1(self, _: Any) -> None:
        self._tuple_n(1)

    def op_TUPLE2(self, _: Any) -> None:
        self._tuple_n(2)

    def op_TUPLE3(self, _: Any) -> None:
        self._tuple_n(3)

    def op_BININT(self, a: int) -> None:
        self.push(Const(a, self.op_offset))

    op_BININT1 = op_BININT2 = op_BININT

    def op_BINFLOAT(self, a: float) -> None:
        self.push(Const(a, self.op_offset))

    def op_PROTO(self, a: int) -> None:
        if a > HIGHEST_PROTOCOL:
            raise Malformed(f"unsupported pickle protocol {a}")
        self.proto = a

    def op_NEWOBJ(self, _: Any) -> None:
        args = self.pop()
        cls = self.pop()
        self._call(cls, args, "NEWOBJ")

    def op_NEWOBJ_EX(self, _: Any) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self._call(cls, args, "NEWOBJ_EX", kwargs=kwargs)

    def _ext(self, code: int) -> None:
        if code <= 0:
            raise Malformed("EXT code must be positive")
        self._import("copyreg", f"<extension {code}>", "EXT", dynamic=f"extension registry code {code}")

    op_EXT1 = op_EXT2 = op_EXT4 = _ext

    def op_NEWTRUE(self, _: Any) -> None:
        self.push(Const(True))

    def op_NEWFALSE(self, _: Any) -> None:
        self.push(Const(False))

    def _long_bin(self, a: bytes | Blob) -> None:
        if isinstance(a, Blob):
            self.push(Opaque("large int"))
        else:
            self.push(Const(int.from_bytes(a, "little", signed=True), self.op_offset))

    op_LONG1 = op_LONG4 = _long_bin

    def op_EMPTY_SET(self, _: Any) -> None:
        self.push(Seq("set"))

    def op_ADDITEMS(self, _: Any) -> None:
        items = self.pop_mark()
        target = self.top()
        if isinstance(target, Seq) and target.kind == "set":
            for v in items:
                target.add(v)
        else:
            self._mutate(target, "ADDITEMS", make_seq("tuple", items))

    def op_FROZENSET(self, _: Any) -> None:
        self.push(make_seq("frozenset", self.pop_mark()))

    def op_STACK_GLOBAL(self, _: Any) -> None:
        name = self.pop()
        module = self.pop()
        if isinstance(module, Const) and isinstance(name, Const):
            if not (isinstance(module.value, str) and isinstance(name.value, str)):
                raise Malformed("STACK_GLOBAL requires str operands")
            self._import(module.value, name.value, "STACK_GLOBAL")
            return
        why = f"operands are not string literals (module: {_describe(module)}; name: {_describe(name)})"
        mod_s = module.value if isinstance(module, Const) and isinstance(module.value, str) else "<dynamic>"
        name_s = name.value if isinstance(name, Const) and isinstance(name.value, str) else "<dynamic>"
        self._import(mod_s, name_s, "STACK_GLOBAL", dynamic=why)

    def op_FRAME(self, n: int) -> None:
        if n > self.cur.remaining:
            raise Truncated(f"FRAME declares {n} bytes but only {self.cur.remaining} remain")
        self.frame_end = self.cur.pos + n

    def op_NEXT_BUFFER(self, _: Any) -> None:
        self.push(Opaque("out-of-band buffer"))

    def op_READONLY_BUFFER(self, _: Any) -> None:
        self.top()

    # -- joblib: raw array bytes inlined after the wrapper's BUILD --
    def _joblib_array(self, inst: Call, state: V) -> None:
        if not isinstance(state, Dct) or not state.items or state.total != len(state.items):
            raise Malformed("joblib array wrapper state is not a literal dict; array size unknown")
        shape_v = state.get("shape")
        info = dtype_info(state.get("dtype"))
        if info is None:
            raise Malformed("joblib array wrapper dtype cannot be derived statically")
        itemsize, has_object = info
        if not (isinstance(shape_v, Seq) and shape_v.complete):
            raise Malformed("joblib array wrapper shape is not a literal tuple")
        count = 1
        for d in shape_v.items:
            if not (isinstance(d, Const) and type(d.value) is int and d.value >= 0):
                raise Malformed("joblib array wrapper shape holds a non-integer")
            count *= d.value
        if self.frame_end is not None and self.cur.pos < self.frame_end:
            raise Malformed("joblib array data starts inside a pickle FRAME (loader/scanner differential)")
        self.res.joblib_arrays += 1
        if has_object:
            if self.on_inline_pickle is None or not self.on_inline_pickle(self.cur):
                raise Malformed("object array pickle inlined after a joblib wrapper could not be analyzed")
        else:
            region = self.cur.pos
            first = self.cur.peek()
            align = state.get("numpy_array_alignment_bytes")
            has_key = any(isinstance(k, Const) and k.value == "numpy_array_alignment_bytes" for k, _ in state.items)
            if has_key and not (isinstance(align, Const) and (align.value is None or type(align.value) is int)):
                raise Malformed("joblib array alignment is not a literal")
            if has_key and align is not None and isinstance(align, Const) and align.value is not None:
                pad = self.cur.byte()
                self.cur.skip(pad)
            nbytes = count * itemsize
            if nbytes > self.cur.remaining:
                raise Truncated(f"joblib array declares {nbytes} bytes but only {self.cur.remaining} remain")
            self.cur.skip(nbytes)
            if self.on_shadow is not None and first is not None and BY_BYTE[first] is not None:
                # plain pickle.load would run these bytes as opcodes; joblib.load skips them
                self.on_shadow(region, self.cur.pos)
        self.stack[-1] = Opaque("ndarray")
