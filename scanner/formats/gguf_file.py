"""GGUF: strict header parsing and chat-template analysis.

C/C++ GGUF loaders have a history of heap overflows driven by lying counts,
lengths and dimensions, so every declared size is checked against the bytes
that remain before anything is read. Only the header region (key/values and
tensor infos) is read; tensor data is located, never fetched. The chat
template is parsed as Jinja and never rendered.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ..findings import Severity
from ..io.reader import Reader
from .interface import FormatHandler, InspectContext

MAGIC = b"GGUF"
MAX_COUNT = 1 << 20  # tensors or key/values
MAX_ARRAY = 1 << 26
MAX_NAME = 64  # llama.cpp's GGML_MAX_NAME (names must be shorter)
MAX_KEY = 64 << 10  # key names are kept while parsing; real ones are < 100 bytes
MAX_DIMS = 4
INT64_MAX = (1 << 63) - 1
CHUNK = 64 << 10
DEFAULT_ALIGNMENT = 32
TEMPLATE_KEY = "tokenizer.chat_template"

# value type -> fixed size (STRING=8 and ARRAY=9 are variable)
_SCALAR = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("?", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
_TYPE_NAMES = {
    0: "u8",
    1: "i8",
    2: "u16",
    3: "i16",
    4: "u32",
    5: "i32",
    6: "f32",
    7: "bool",
    8: "string",
    9: "array",
    10: "u64",
    11: "i64",
    12: "f64",
}
# ggml type -> (block size in elements, bytes per block); measured from gguf-py's GGML_QUANT_SIZES
GGML_TYPES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}


class GGUFError(Exception):
    """Parsing cannot continue; ``rule`` says which rule the reason belongs to."""

    def __init__(
        self, rule: str, message: str, offset: int | None = None, limit: str = "file_seconds"
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.offset = offset
        self.limit = limit  # for rule "LIMIT": which of our cost limits stopped the parse


class _Cursor:
    """Sequential reads over a Reader with a small buffer; never reads past what it is asked for by more than CHUNK."""

    def __init__(self, reader: Reader, pos: int, endian: str) -> None:
        self.r = reader
        self.pos = pos
        self.e = endian
        self._buf = b""
        self._buf_at = 0

    @property
    def remaining(self) -> int:
        return self.r.size - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise GGUFError(
                "GGUF-INVALID", f"truncated: {what} needs {n} bytes, {self.remaining} remain", self.pos
            )
        rel = self.pos - self._buf_at
        if 0 <= rel and rel + n <= len(self._buf):
            out = self._buf[rel : rel + n]
        elif n >= CHUNK:
            out = self.r.read(self.pos, n)
        else:
            self._buf = self.r.read(self.pos, max(CHUNK, n))
            self._buf_at = self.pos
            out = self._buf[:n]
        self.pos += n
        return out

    def skip(self, n: int, what: str) -> None:
        if n > self.remaining:
            raise GGUFError(
                "GGUF-INVALID", f"truncated: {what} needs {n} bytes, {self.remaining} remain", self.pos
            )
        self.pos += n

    def unpack(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(self.e + fmt, self.take(size, what))[0]


@dataclass
class GGUFInfo:
    version: int = 0
    big_endian: bool = False
    tensor_count: int = 0
    kv_count: int = 0
    kv: dict[str, Any] = field(default_factory=dict)  # small scalars only, for evidence and alignment
    templates: dict[str, str] = field(default_factory=dict)
    tensors: list[tuple[str, int, int]] = field(default_factory=list)  # name, offset, nbytes
    data_start: int = 0
    alignment: int = DEFAULT_ALIGNMENT


class _Parser:
    def __init__(self, reader: Reader, ctx: InspectContext) -> None:
        self.reader = reader
        self.ctx = ctx
        self.info = GGUFInfo()
        self.max_string = ctx.limits.max_string
        self.noncontiguous: str | None = None
        self.strings_left = ctx.limits.max_gguf_array_strings  # string array elements, summed over the file
        self.nul_keys: list[tuple[str, str]] = []  # (key as stored, key as C code looks it up)
        self.shadowed: list[tuple[str, str]] = []  # keys C code and Python loaders resolve differently
        self.odd_templates: list[tuple[str, str]] = []  # template keys whose value is not a string

    def run(self) -> GGUFInfo:
        head = self.reader.read(0, 8)
        if len(head) < 8 or head[:4] != MAGIC:
            raise GGUFError("GGUF-INVALID", "truncated before the version field", 0)
        le, be = struct.unpack("<I", head[4:8])[0], struct.unpack(">I", head[4:8])[0]
        if le in (1, 2, 3):
            endian, version = "<", le
        elif be in (1, 2, 3):
            endian, version = ">", be
            self.info.big_endian = True
        else:
            raise GGUFError("GGUF-INVALID", f"unsupported GGUF version {le}", 4)
        self.info.version = version
        self.wide = version >= 2
        c = _Cursor(self.reader, 8, endian)
        self.c = c
        cnt = "Q" if self.wide else "I"
        self.info.tensor_count = tc = c.unpack(cnt, "tensor count")
        self.info.kv_count = kc = c.unpack(cnt, "key/value count")
        szlen = 8 if self.wide else 4
        min_kv, min_ti = szlen + 4 + 1, szlen + 4 + 4 + 8
        for what, n in (("key/value", kc), ("tensor", tc)):
            if n > MAX_COUNT:
                raise GGUFError("GGUF-LIMIT", f"{what} count {n} exceeds the cap of {MAX_COUNT}", 8)
        # what parsing keeps per tensor/key costs memory: valid files beyond real ones' needs are not parsed
        for what, n, cap, name in (
            ("tensor", tc, self.ctx.limits.max_gguf_tensors, "max_gguf_tensors"),
            ("key/value", kc, self.ctx.limits.max_gguf_kvs, "max_gguf_kvs"),
        ):
            if n > cap:
                raise GGUFError(
                    "LIMIT",
                    f"{n} {what} records, more than the {cap} parsed (real files have a few thousand at most); "
                    "not parsed",
                    8,
                    limit=name,
                )
        if kc * min_kv + tc * min_ti > c.remaining:
            raise GGUFError(
                "GGUF-LIMIT",
                f"{kc} key/values and {tc} tensors cannot fit in the {c.remaining} bytes left",
                8,
            )
        self._read_kvs(kc)
        self._read_tensor_infos(tc)
        return self.info

    # --- primitives --------------------------------------------------------------------------------
    def _len(self, what: str) -> int:
        return self.c.unpack("Q" if self.wide else "I", what)

    def _string(self, what: str, cap: int, keep: bool) -> str | None:
        at = self.c.pos
        n = self._len(f"{what} length")
        if n > self.c.remaining:
            raise GGUFError("GGUF-LIMIT", f"{what} length {n} exceeds the {self.c.remaining} bytes left", at)
        if n > cap:
            raise GGUFError("GGUF-LIMIT", f"{what} length {n} exceeds the cap of {cap} bytes", at)
        if not keep:
            self.c.skip(n, what)
            return None
        return self.c.take(n, what).decode("utf-8", errors="replace")

    def _tick(self, i: int) -> None:
        if i & 0xFFFF == 0 and self.ctx.state.out_of_time():
            raise GGUFError("LIMIT", "time budget exhausted while parsing the GGUF header", self.c.pos)

    # --- key/values --------------------------------------------------------------------------------
    def _read_kvs(self, count: int) -> None:
        seen: set[str] = set()
        looked_up: set[str] = set()  # keys as llama.cpp's gguf_find_key sees them
        for i in range(count):
            self._tick(i)
            at = self.c.pos
            raw_key = self._string("key", min(self.max_string, MAX_KEY), keep=True) or ""
            if raw_key in seen:
                raise GGUFError("GGUF-INVALID", f"duplicate key {raw_key[:100]!r}", at)
            seen.add(raw_key)
            # gguf_find_key strcmp()s the C string: "tokenizer.chat_template\0x" is found as
            # tokenizer.chat_template, and the first of two such keys wins; gguf-py keys keep the NUL
            key = raw_key.split("\x00", 1)[0]
            if key != raw_key:
                if key in looked_up:
                    self.shadowed.append((raw_key, key))
                else:
                    self.nul_keys.append((raw_key, key))
            elif key in looked_up:
                self.shadowed.append((raw_key, key))
            looked_up.add(key)
            vtype = self.c.unpack("I", f"type of {key[:100]!r}")
            is_template = key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")
            if is_template and vtype == 8:
                self.info.templates[raw_key] = (
                    self._string(f"value of {raw_key[:100]!r}", self.max_string, keep=True) or ""
                )
                continue
            if (
                is_template
            ):  # llama.cpp asserts on it; Python readers hand the array/number on as the template
                self.odd_templates.append((raw_key, _TYPE_NAMES.get(vtype, str(vtype))))
            value = self._value(vtype, key, depth=0)
            if value is not None and (len(self.info.kv) < 64 or key == "general.alignment"):
                self.info.kv.setdefault(key, value)  # the first one, as gguf_find_key finds it
        align = self.info.kv.get("general.alignment")
        if "general.alignment" in looked_up:
            if not isinstance(align, tuple) or align[0] != 4:
                raise GGUFError("GGUF-INVALID", "general.alignment is not a u32 (llama.cpp asserts on it)")
            a = align[1]
            if a == 0 or a & (a - 1):
                raise GGUFError("GGUF-INVALID", f"general.alignment {a} is not a power of two")
            self.info.alignment = a

    def _value(self, vtype: int, key: str, depth: int) -> Any:
        where = f"value of {key[:100]!r}"
        if vtype in _SCALAR:
            fmt, _ = _SCALAR[vtype]
            return (vtype, self.c.unpack(fmt, where))
        if vtype == 8:
            s = self._string(where, self.max_string, keep=key in ("general.architecture", "general.name"))
            return (8, s[:200]) if s is not None else None
        if vtype == 9:
            if depth > 0:
                raise GGUFError(
                    "GGUF-INVALID", f"nested array in {key[:100]!r} (loaders reject it)", self.c.pos
                )
            at = self.c.pos
            etype = self.c.unpack("I", f"element type of {key[:100]!r}")
            n = self._len(f"array length of {key[:100]!r}")
            if etype in _SCALAR:
                size = _SCALAR[etype][1]
            elif etype == 8:
                size = 8 if self.wide else 4
            elif etype == 9:
                raise GGUFError("GGUF-INVALID", f"nested array in {key[:100]!r} (loaders reject it)", at)
            else:
                raise GGUFError("GGUF-INVALID", f"unknown array element type {etype} in {key[:100]!r}", at)
            if n > MAX_ARRAY or n * size > self.c.remaining:
                raise GGUFError(
                    "GGUF-LIMIT",
                    f"array {key[:100]!r} declares {n} elements; {self.c.remaining} bytes left",
                    at,
                )
            if etype == 8:
                if n > self.strings_left:
                    raise GGUFError(
                        "LIMIT",
                        f"array {key[:100]!r} of {n} strings passes the "
                        f"{self.ctx.limits.max_gguf_array_strings} string elements parsed per file "
                        "(real vocabularies: ~256k tokens, ~500k merges); not parsed",
                        at,
                        limit="max_gguf_array_strings",
                    )
                self.strings_left -= n
                self._skip_strings(n, key)
            else:
                self.c.skip(n * size, where)
            return None
        raise GGUFError("GGUF-INVALID", f"unknown value type {vtype} for {key[:100]!r}", self.c.pos - 4)

    def _skip_strings(self, n: int, key: str) -> None:
        """Step over ``n`` length-prefixed strings, checking each length, in buffered blocks (a 20M-token
        array took 69 s one read call per string)."""
        c = self.c
        width = 8 if self.wide else 4
        fmt = c.e + ("Q" if self.wide else "I")
        unpack_from = struct.Struct(fmt).unpack_from
        cap = self.max_string
        end = c.r.size
        pos = c.pos
        buf, buf_at = b"", pos
        for i in range(n):
            if i & 0xFFFF == 0 and self.ctx.state.out_of_time():
                c.pos = pos
                raise GGUFError("LIMIT", "time budget exhausted while parsing the GGUF header", pos)
            rel = pos - buf_at
            if rel + width > len(buf):
                if pos + width > end:
                    c.pos = pos
                    raise GGUFError(
                        "GGUF-INVALID",
                        f"truncated: element of {key[:100]!r} length needs {width} bytes, {end - pos} remain",
                        pos,
                    )
                buf, buf_at, rel = c.r.read(pos, max(CHUNK * 4, width)), pos, 0
            (ln,) = unpack_from(buf, rel)
            if ln > end - pos - width:
                c.pos = pos
                raise GGUFError(
                    "GGUF-LIMIT",
                    f"element of {key[:100]!r} length {ln} exceeds the {end - pos - width} bytes left",
                    pos,
                )
            if ln > cap:
                c.pos = pos
                raise GGUFError(
                    "GGUF-LIMIT", f"element of {key[:100]!r} length {ln} exceeds the cap of {cap} bytes", pos
                )
            pos += width + ln
        c.pos = pos

    # --- tensor infos ------------------------------------------------------------------------------
    def _read_tensor_infos(self, count: int) -> None:
        seen: set[str] = set()
        raw: list[tuple[str, int, int, int]] = []  # name, offset, nbytes, start-of-record
        for i in range(count):
            self._tick(i)
            at = self.c.pos
            name = self._string("tensor name", self.max_string, keep=True) or ""
            if len(name.encode("utf-8", "replace")) >= MAX_NAME:
                raise GGUFError(
                    "GGUF-INVALID", f"tensor name of {len(name)} characters is too long for llama.cpp", at
                )
            if name in seen:
                raise GGUFError("GGUF-INVALID", f"duplicate tensor name {name!r}", at)
            seen.add(name)
            nd = self.c.unpack("I", f"n_dims of {name!r}")
            if not 1 <= nd <= MAX_DIMS:
                raise GGUFError(
                    "GGUF-INVALID", f"tensor {name!r} has {nd} dimensions (1..{MAX_DIMS} allowed)", at
                )
            dims = [self.c.unpack("Q" if self.wide else "I", f"dims of {name!r}") for _ in range(nd)]
            nel = 1
            for d in dims:
                if d > INT64_MAX:
                    raise GGUFError("GGUF-INVALID", f"tensor {name!r} has a negative dimension", at)
                nel *= d
                if nel > INT64_MAX:
                    raise GGUFError("GGUF-INVALID", f"tensor {name!r}: dimensions {dims} overflow int64", at)
            gtype = self.c.unpack("I", f"type of {name!r}")
            if gtype not in GGML_TYPES:
                raise GGUFError("GGUF-INVALID", f"tensor {name!r} has unknown ggml type {gtype}", at)
            block, bsize = GGML_TYPES[gtype]
            if dims[0] % block:
                raise GGUFError(
                    "GGUF-INVALID",
                    f"tensor {name!r}: first dimension {dims[0]} not a multiple of block {block}",
                    at,
                )
            offset = self.c.unpack("Q", f"offset of {name!r}")
            raw.append((name, offset, nel // block * bsize, at))
        a = self.info.alignment
        self.info.data_start = -(-self.c.pos // a) * a
        data_len = self.reader.size - self.info.data_start
        expected = 0
        noncontiguous: str | None = None
        for name, offset, nbytes, at in raw:
            if offset % a:
                raise GGUFError("GGUF-INVALID", f"tensor {name!r} offset {offset} is not aligned to {a}", at)
            if offset + nbytes > data_len:
                raise GGUFError(
                    "GGUF-INVALID",
                    f"tensor {name!r} data [{offset}, {offset + nbytes}) lies beyond the {max(data_len, 0)}-byte data section",
                    at,
                )
            if offset != expected and noncontiguous is None:
                noncontiguous = name
            expected = offset + -(-nbytes // a) * a
            self.info.tensors.append((name, offset, nbytes))
        spans = sorted(self.info.tensors, key=lambda t: t[1])
        for (n1, o1, s1), (n2, o2, _) in zip(spans, spans[1:], strict=False):
            if o1 + s1 > o2:
                raise GGUFError("GGUF-INVALID", f"tensors {n1!r} and {n2!r} overlap at offset {o2}")
        self.noncontiguous = noncontiguous


def _sniff(head: bytes, reader: Reader) -> bool:
    return head[:4] == MAGIC


def _report_keys(p: _Parser, ctx: InspectContext) -> None:
    for raw, tname in p.odd_templates[:8]:
        ctx.add(
            "GGUF-INVALID",
            f"chat template key {raw[:100]!r} holds a {tname}, not a string: not judged as a template",
            evidence={"key": raw[:200], "type": tname},
        )
    for raw, key in p.nul_keys[:8]:
        ctx.add(
            "GGUF-INVALID",
            f"key {raw[:100]!r} holds a NUL byte: C loaders look it up as {key[:100]!r}",
            evidence={"key": raw[:200], "c_key": key[:200]},
        )
    for raw, key in p.shadowed[:8]:
        ctx.add(
            "GGUF-INVALID",
            f"key {raw[:100]!r} repeats {key[:100]!r} up to a NUL byte: C and Python loaders "
            "read different values",
            evidence={"key": raw[:200], "c_key": key[:200]},
        )


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    p = _Parser(reader, ctx)
    try:
        info = p.run()
    except GGUFError as exc:
        _report_keys(p, ctx)
        if exc.rule == "LIMIT":
            ctx.limit_hit(exc.limit, str(exc), offset=exc.offset)
        else:
            ctx.add(exc.rule, str(exc), offset=exc.offset, evidence={"version": p.info.version})
            ctx.partial("GGUF header parse stopped early")
        _analyze_templates(p.info, ctx)  # templates read before the failure are still judged
        return
    _report_keys(p, ctx)
    if info.big_endian:
        ctx.add("GGUF-BIG-ENDIAN", "big-endian GGUF file", evidence={"version": info.version})
    nc = p.noncontiguous
    if nc is not None:
        ctx.add(
            "GGUF-INVALID",
            f"tensor data is not laid out contiguously in tensor-info order (first at {nc!r}); "
            "llama.cpp rejects this, other loaders may not",
            severity=Severity.MEDIUM,
            evidence={"tensor": nc[:100]},
        )
    _analyze_templates(info, ctx)


def _analyze_templates(info: GGUFInfo, ctx: InspectContext) -> None:
    from ..analysis.jinja_template import MAX_TEMPLATE_CHARS, analyze_template  # jinja2: only when judging

    for key, source in info.templates.items():
        for issue in analyze_template(source, ctx.limits, max_chars=MAX_TEMPLATE_CHARS, rules=ctx.rules):
            ev = dict(issue.evidence)
            ev["key"] = key
            ctx.add(issue.rule_id, f"{key}: {issue.message}", severity=issue.severity, evidence=ev)
            if issue.rule_id in ("TEMPLATE-OVERSIZE", "TEMPLATE-INVALID"):
                ctx.partial(f"{key} not analysed in full")


GGUF = FormatHandler("gguf", _sniff, _inspect, family="gguf", claims=(".gguf",))
