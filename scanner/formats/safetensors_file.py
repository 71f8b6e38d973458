"""safetensors: re-apply the reference loader's header rules and flag what other parsers may read differently.

The format carries no code, so the risks are parser differentials (a file one
tool reads differently from another) and polyglots. Only the header and the
last 64 KiB are read, so a remote multi-GB file costs a few kilobytes.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from ..io.reader import Reader
from .interface import SNIFF_BYTES, FormatHandler, InspectContext, run_inspector
from .parsers.json_cost import value_bound
from .sniff_gates import SAFETENSORS_WS as _WS
from .sniff_gates import safetensors as _sniff  # split out so sniffing imports no inspector (issue #13)

MAX_HEADER = 100_000_000  # the Rust core refuses larger headers ("header too large")
# What parsing may cost: a 99 MB header took 1.5 GB and 51 s to parse whole. Real headers are far smaller
# (a 1,000-tensor shard is ~150 KB; SDXL's 2,500 tensors ~400 KB), so the defaults in Limits
# (max_safetensors_header, max_json_values) bound memory near 60 MB above them.
POLYGLOT_WINDOW = 64 << 10
# element size in bits, as accepted by safetensors 0.8 (verified by loading one tensor of each)
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}
_TENSOR_KEYS = {"dtype", "shape", "data_offsets"}
U64_MAX = (1 << 64) - 1


@dataclass
class Problem:
    kind: str  # "invalid" | "differential"
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Header:
    """What the header declares, plus every rule it breaks."""

    header_len: int = 0
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    parsed: bool = False
    limit: tuple[str, str] | None = None  # (limit name, message): a valid-looking header too costly to parse

    def invalid(self, message: str, **evidence: Any) -> None:
        self.problems.append(Problem("invalid", message, evidence))

    def differential(self, message: str, **evidence: Any) -> None:
        self.problems.append(Problem("differential", message, evidence))


def _pairs_hook(dupes: list[str]):  # type: ignore[no-untyped-def]
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out and len(dupes) < 20:
                dupes.append(k)
            out[k] = v
        return out

    return hook


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


def read_header(reader: Reader, max_header: int | None = None, max_objects: int | None = None) -> Header:
    """Parse and validate the header of a safetensors file; reads only the header bytes.

    Headers the loader would accept but that exceed ``max_header`` bytes or
    ``max_objects`` JSON values are not parsed: ``limit`` says why.
    """
    from ..limits import DEFAULT_LIMITS

    max_header = DEFAULT_LIMITS.max_safetensors_header if max_header is None else max_header
    max_objects = DEFAULT_LIMITS.max_json_values if max_objects is None else max_objects
    h = Header()
    if reader.size < 8:
        h.invalid(f"file of {reader.size} bytes is shorter than the 8-byte header length")
        return h
    (n,) = struct.unpack("<Q", reader.read(0, 8))
    h.header_len = n
    if n > MAX_HEADER:
        h.invalid(f"header length {n} exceeds the loader's limit of {MAX_HEADER} bytes", header_len=n)
        return h
    if 8 + n > reader.size:
        h.invalid(
            f"header length {n} runs past the end of the {reader.size}-byte file (truncated)", header_len=n
        )
        return h
    if n > max_header:
        h.limit = (
            "max_safetensors_header",
            f"safetensors header of {n} bytes is larger than the "
            f"{max_header} bytes real files need; not parsed",
        )
        return h
    raw = reader.read(8, n)
    values = value_bound(raw)
    if values > max_objects:
        h.limit = (
            "max_json_values",
            f"safetensors header holds up to {values} JSON values, more than the "
            f"{max_objects} that parsing is allowed to build; not parsed",
        )
        return h
    stripped = raw.lstrip(_WS)
    if len(stripped) != len(raw):
        h.differential("whitespace before the header's JSON object", skipped=len(raw) - len(stripped))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        h.invalid(f"header is not UTF-8 (byte {exc.start})", offset=8 + exc.start)
        return h
    del raw, stripped
    dupes: list[str] = []
    try:
        obj = json.loads(text, object_pairs_hook=_pairs_hook(dupes), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        h.invalid(f"header is not valid JSON: {exc}"[:300])
        return h
    if not isinstance(obj, dict):
        h.invalid("header JSON is not an object")
        return h
    h.parsed = True
    if dupes:
        h.differential(
            f"duplicate keys in the header (the loader keeps the last): {', '.join(dupes[:5])}",
            keys=dupes[:20],
        )
    meta = obj.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict):
            h.invalid("__metadata__ is not an object of strings")
        else:
            bad = [k for k, v in meta.items() if not isinstance(v, str)]
            if bad:
                h.invalid(
                    f"__metadata__ values must be strings (the loader refuses): {', '.join(bad[:5])}",
                    keys=bad[:20],
                )
            h.metadata = meta
    _check_tensors(h, obj, reader.size - 8 - n)
    return h


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _check_tensors(h: Header, obj: dict[str, Any], data_len: int) -> None:
    spans: list[tuple[int, int, str]] = []
    extra_fields: set[str] = set()
    for name, info in obj.items():
        if not isinstance(info, dict):
            h.invalid(f"tensor {name!r}: entry is not an object", tensor=name[:200])
            continue
        missing = _TENSOR_KEYS - info.keys()
        if missing:
            h.invalid(f"tensor {name!r}: missing {', '.join(sorted(missing))}", tensor=name[:200])
            continue
        extra_fields |= set(info) - _TENSOR_KEYS
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_BITS:
            h.invalid(f"tensor {name!r}: unknown dtype {str(dtype)[:40]!r}", tensor=name[:200])
            continue
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            h.invalid(f"tensor {name!r}: shape is not a list of non-negative integers", tensor=name[:200])
            continue
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_uint(o) for o in offs)):
            h.invalid(f"tensor {name!r}: data_offsets is not two non-negative integers", tensor=name[:200])
            continue
        begin, end = offs
        h.tensors[name] = info
        nbits = math.prod(shape) * DTYPE_BITS[dtype]
        if nbits > U64_MAX:
            h.invalid(f"tensor {name!r}: size of shape {shape[:8]} overflows", tensor=name[:200])
            continue
        if nbits % 8:
            h.invalid(f"tensor {name!r}: sub-byte tensor does not end on a byte boundary", tensor=name[:200])
            continue
        if end < begin or end - begin != nbits // 8:
            h.invalid(
                f"tensor {name!r}: data_offsets span {end - begin} bytes, shape and dtype need {nbits // 8}",
                tensor=name[:200],
                data_offsets=[begin, end],
                expected=nbits // 8,
            )
            continue
        spans.append((begin, end, name))
    if extra_fields:
        h.differential(
            f"unknown fields inside tensor entries: {', '.join(sorted(extra_fields)[:5])}",
            fields=sorted(extra_fields)[:20],
        )
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            h.invalid(
                f"tensor {name!r} overlaps the previous tensor (starts at {begin}, previous ends at {pos})",
                tensor=name[:200],
                begin=begin,
            )
        elif begin > pos:
            h.invalid(
                f"gap of {begin - pos} unreferenced bytes before tensor {name!r}",
                tensor=name[:200],
                begin=begin,
            )
        pos = max(pos, end)
    if pos > data_len:
        h.invalid(
            f"tensor data ends at {pos} but the data section holds {data_len} bytes (truncated)",
            declared_end=pos,
            data_len=data_len,
        )
    elif pos < data_len:
        h.invalid(
            f"{data_len - pos} trailing bytes after the last tensor (file not fully covered)",
            trailing=data_len - pos,
            offset=8 + h.header_len + pos,
        )


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    h = read_header(
        reader,
        min(ctx.limits.max_safetensors_header, ctx.limits.max_json_bytes),
        ctx.limits.max_json_values,
    )
    if h.limit is not None:
        ctx.limit_hit(*h.limit)
    for p in h.problems:
        rule = "SAFETENSORS-INVALID" if p.kind == "invalid" else "SAFETENSORS-DIFFERENTIAL"
        off = p.evidence.get("offset") if isinstance(p.evidence.get("offset"), int) else None
        ctx.add(rule, p.message, offset=off, evidence=p.evidence)
    if not h.parsed and h.limit is None:
        ctx.partial("safetensors header could not be parsed")
    tail = reader.tail(POLYGLOT_WINDOW)
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd >= 0:
        at = reader.size - len(tail) + eocd
        ctx.add(
            "SAFETENSORS-POLYGLOT",
            f"zip end-of-central-directory record at offset {at}: the file also opens as a zip",
            offset=at,
            evidence={"offset": at},
        )
        _inspect_zip_view(reader, ctx)


def _inspect_zip_view(reader: Reader, ctx: InspectContext) -> None:
    """Let the zip handler judge the archive view too, so a pickle inside is not left unseen."""
    from .zip.handler import ZIP_ARCHIVE

    if ZIP_ARCHIVE.sniff(reader.head(SNIFF_BYTES), reader):
        run_inspector(ZIP_ARCHIVE, reader, ctx)


SAFETENSORS = FormatHandler("safetensors", _sniff, _inspect, family="safetensors", claims=(".safetensors",))
