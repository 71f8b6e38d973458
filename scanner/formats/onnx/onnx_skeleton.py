"""A bounded "skeleton" of an ONNX ModelProto: its structure without the weight bytes.

Parsing a multi-GB protobuf with the generated classes needs the whole file in
memory, twice. The checks only need the graph structure and the values of
small constants (shapes, thresholds, trigger patterns), so the model is walked
at the wire level through the Reader instead: every message that may hold
tensors is descended, big tensor payloads (raw_data and the typed data fields)
are left unread and recorded in a side table, oversized doc strings and
attribute lists are cut, and the enclosing lengths are rewritten. Messages no
larger than ``keep`` bytes cannot hold a big payload and are copied verbatim,
so ordinary models come out byte-identical and the walk costs little.

A stripped TensorProto carries a marker entry in its ``metadata_props`` whose
key holds a per-build random nonce, so a file cannot forge one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...io.reader import Reader
from ..parsers.protobuf_wire import FIXED32, FIXED64, LEN, VARINT, WireError, read_varint

KEEP = (
    16 << 10
)  # tensor data up to this many bytes stays in the skeleton (constants used as shapes, patterns)
MAX_SKELETON = 32 << 20  # skeleton bytes before the build stops (LIMIT-EXCEEDED, partial); parsing and
# walking a graph costs ~15x its skeleton size in memory, so this is what bounds a structure-heavy model
PREFIX = (
    4 << 10
)  # what is kept of an oversized attribute string or list (enough to tell one element from many)
MIN_FILL, MAX_FILL = 4 << 10, 256 << 10  # read-ahead: small after a jump, doubling while reading on
COPY_CHUNK = 1 << 20
MARKER_SLACK = 1 << 20
_LEN4 = 1 << 28  # lengths rewritten as 4-byte varints

MODEL, GRAPH, NODE, ATTR, TENSOR, SPARSE, FUNC, TRAINING = range(8)
_NAMES = (
    "ModelProto",
    "GraphProto",
    "NodeProto",
    "AttributeProto",
    "TensorProto",
    "SparseTensorProto",
    "FunctionProto",
    "TrainingInfoProto",
)
# length-delimited fields that hold a message we descend into (onnx.proto field numbers)
_CHILD: dict[int, dict[int, int]] = {
    MODEL: {7: GRAPH, 20: TRAINING, 25: FUNC},
    TRAINING: {1: GRAPH, 2: GRAPH},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTR},
    ATTR: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    FUNC: {7: NODE, 11: ATTR},
    TENSOR: {},
}
# nodes and attributes are walked field by field even when small: their repeated names and values are what a
# structure-heavy model is made of, and parsing costs per field, not per byte (a 3-byte input name costs ~45 bytes)
_ALWAYS_WALK = frozenset({NODE, ATTR})
_DOC = {MODEL: 6, GRAPH: 10, NODE: 6, ATTR: 13, TENSOR: 12, FUNC: 8}
RAW_DATA, STRING_DATA = 9, 6
TYPED_DATA = {
    4: FIXED32,
    5: VARINT,
    7: VARINT,
    10: FIXED64,
    11: VARINT,
}  # packed numeric fields and their element type
ATTR_FLOATS, ATTR_INTS, ATTR_STRINGS, ATTR_S = 7, 8, 9, 4
_MARKER_FIELD = 16  # TensorProto.metadata_props


def _depth(parent: int, child: int, gd: int) -> int:
    """Graph nesting depth counted like the graph walker: main graph 0, function bodies and training graphs 1."""
    if parent == MODEL:
        return 0 if child == GRAPH else 1
    return gd + 1 if parent == ATTR and child == GRAPH else gd


class SkeletonError(Exception):
    """The wire data is malformed; the message says where."""


class _Stop(Exception):
    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(slots=True)  # one per big tensor
class Stripped:
    """What was left out of one TensorProto."""

    offset: int  # file offset of the TensorProto's payload
    raw_len: int | None = None  # length of the effective (last) raw_data when it was not kept
    raw_offset: int | None = None
    dropped: dict[int, int] = field(default_factory=dict)  # typed data / string_data field -> bytes left out
    values_hidden: bool = False  # the tensor's values are not in the skeleton


@dataclass
class Skeleton:
    data: bytes | bytearray
    marker: str
    tensors: list[Stripped] = field(default_factory=list)
    skipped_bytes: int = 0  # payload bytes never read
    text_dropped: int = 0  # doc-string bytes left out
    stopped: tuple[str, str] | None = None  # (limit, message) when the build stopped early
    depth_hit: str | None = None  # a subgraph deeper than the graph-recursion cap was left out

    def stripped(self, tensor: Any) -> Stripped | None:
        """The side-table entry of a parsed TensorProto, or None when it is complete."""
        for kv in tensor.metadata_props:
            if kv.key == self.marker:
                try:
                    return self.tensors[int(kv.value)]
                except (ValueError, IndexError):
                    return None
        return None


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _len4(n: int) -> bytes:
    """``n`` as a fixed 4-byte varint (redundant continuation bytes are valid protobuf)."""
    return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, ((n >> 14) & 0x7F) | 0x80, (n >> 21) & 0x7F))


class _Src:
    """Buffered forward reads over a Reader; skipped payloads are never fetched."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.buf = b""
        self.base = 0
        self.fill = MIN_FILL

    def _load(self, pos: int, need: int) -> None:
        sequential = self.base <= pos <= self.base + len(self.buf)
        self.fill = min(self.fill * 2, MAX_FILL) if sequential else MIN_FILL
        self.buf = self.r.read(pos, max(need, self.fill))
        self.base = pos

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        off = pos - self.base
        if off < 0 or (off + 10 > len(self.buf) and self.base + len(self.buf) < end):
            self._load(pos, 10)
            off = 0
        try:
            v, p = read_varint(self.buf, off, min(len(self.buf), end - self.base))
        except WireError as exc:
            raise WireError(f"{exc} at offset {pos}") from None
        return v, p + self.base

    def get(self, pos: int, n: int) -> bytes:
        off = pos - self.base
        if off < 0 or off + n > len(self.buf):
            if n > MAX_FILL:
                return self.r.read(pos, n)
            self._load(pos, n)
            off = 0
        return self.buf[off : off + n]


class _Builder:
    def __init__(
        self,
        reader: Reader,
        keep: int,
        max_bytes: int,
        max_graph_depth: int,
        out_of_time: Callable[[], bool],
        max_nodes: int = 1 << 62,
        max_fields: int = 1 << 62,
    ) -> None:
        if max_bytes + MARKER_SLACK >= _LEN4:
            raise ValueError("skeleton cap too large for 4-byte lengths")
        self.src = _Src(reader)
        self.keep = keep
        self.max_bytes = max_bytes
        self.max_graph_depth = max_graph_depth
        self.out_of_time = out_of_time
        self.out = bytearray()
        self.pend: tuple[int, int] | None = None  # a run of fields to copy verbatim, [start, end)
        self.fields = 0
        self.max_nodes = max_nodes
        self.max_fields = max_fields
        self.nodes = 0
        self.sk = Skeleton(self.out, f"modelward.stripped.{secrets.token_hex(8)}")

    # --- output ---------------------------------------------------------------------------------
    def copy(self, a: int, b: int) -> None:
        """Queue whole fields for copying; a run never outgrows the room left, so a cap cuts between fields."""
        if self.pend is not None and self.pend[1] == a and len(self.out) + b - self.pend[0] <= self.max_bytes:
            self.pend = (self.pend[0], b)
            return
        self.flush()
        self.pend = (a, b)

    def flush(self) -> None:
        if self.pend is None:
            return
        a, b = self.pend
        self.pend = None
        self.emit_range(a, b)

    def emit_range(self, a: int, b: int) -> None:
        self.room(b - a, a)
        if b - a <= MAX_FILL:
            self.out += self.src.get(a, b - a)
            return
        for pos in range(a, b, COPY_CHUNK):
            self.out += self.src.r.read(pos, min(COPY_CHUNK, b - pos))

    def room(self, n: int, offset: int, slack: int = 0) -> None:
        if len(self.out) + n > self.max_bytes + slack:
            raise _Stop(
                "max_skeleton_bytes",
                f"ONNX structure beyond {self.max_bytes} bytes (without tensor data) "
                f"at offset {offset}; the rest was not inspected",
            )

    def emit(self, data: bytes, offset: int) -> None:
        self.flush()
        self.room(len(data), offset)
        self.out += data

    # --- walking --------------------------------------------------------------------------------
    def header(self, pos: int, end: int, kind: int) -> tuple[int, int, int, int]:
        """(field, wire type, payload start, payload end or varint value end) of the field at ``pos``."""
        tag, p = self.src.varint(pos, end)
        fnum, wt = tag >> 3, tag & 7
        if fnum == 0:
            raise WireError(f"field number 0 in {_NAMES[kind]} at offset {pos}")
        if wt == LEN:
            n, p = self.src.varint(p, end)
            if n > end - p:
                raise WireError(
                    f"field {fnum} of {_NAMES[kind]} at offset {pos} declares {n} bytes, "
                    f"{end - p} remain in the enclosing message"
                )
            return fnum, wt, p, p + n
        if wt == VARINT:
            _, q = self.src.varint(p, end)
            return fnum, wt, p, q
        size = 8 if wt == FIXED64 else 4 if wt == FIXED32 else -1
        if size < 0:
            raise WireError(
                f"wire type {wt} (field {fnum} of {_NAMES[kind]}) at offset {pos} is not used by ONNX"
            )
        if p + size > end:
            raise WireError(f"field {fnum} of {_NAMES[kind]} at offset {pos} runs past the enclosing message")
        return fnum, wt, p, p + size

    def message(self, kind: int, start: int, end: int, gd: int) -> None:
        tensor = Stripped(start) if kind == TENSOR else None
        raw_state: str | None = None  # the last raw_data: "kept" | "stripped"
        budget = 0  # bytes of typed data / list elements kept
        kept_elems = 0
        pos = start
        children = _CHILD[kind]
        while pos < end:
            self.fields += 1
            if self.fields & 0xFFF == 0:
                if self.out_of_time():
                    raise _Stop("file_seconds", "time budget exhausted while reading the ONNX structure")
                if self.fields > self.max_fields:  # each costs ~50 bytes parsed, however short on disk
                    raise _Stop(
                        "max_onnx_fields",
                        f"more than {self.max_fields} protobuf fields in the ONNX "
                        f"structure (at offset {pos}); the rest was not inspected",
                    )
            fstart = pos
            fnum, wt, a, b = self.header(pos, end, kind)
            pos = b
            if wt == LEN and fnum in children:
                child = children[fnum]
                self.submessage(fstart, fnum, child, a, b, _depth(kind, child, gd))
            elif wt == LEN and _DOC.get(kind) == fnum and b - a > self.keep:
                self.sk.text_dropped += b - a
                self.skip(b - a)
            elif tensor is not None and fnum == RAW_DATA and wt == LEN:
                if b - a <= self.keep:
                    raw_state = "kept"
                    self.copy(fstart, b)
                else:
                    raw_state = "stripped"
                    tensor.raw_len, tensor.raw_offset = b - a, a
                    self.skip(b - a)
            elif tensor is not None and (fnum in TYPED_DATA or fnum == STRING_DATA):
                if budget + (b - fstart) <= self.keep and not tensor.dropped:
                    budget += b - fstart
                    self.copy(fstart, b)
                else:
                    tensor.dropped[fnum] = tensor.dropped.get(fnum, 0) + (b - a)
                    self.skip(b - a)
            elif kind == ATTR and fnum in (ATTR_S, ATTR_FLOATS, ATTR_INTS, ATTR_STRINGS):
                # a list keeps at least two elements: "one value or many" is what the checks ask of it
                is_list = fnum != ATTR_S
                if budget + (b - fstart) <= self.keep or (is_list and wt != LEN and kept_elems < 2):
                    budget += b - fstart
                    kept_elems += is_list
                    self.copy(fstart, b)
                elif wt == LEN and (fnum != ATTR_STRINGS or kept_elems < 2):
                    kept_elems += is_list
                    self.prefix(fnum, a, b)
                else:
                    self.skip(b - fstart)
            else:
                self.copy(fstart, b)
        if pos != end:
            raise WireError(f"{_NAMES[kind]} at offset {start} overruns its length")
        self.flush()
        if tensor is not None and (raw_state == "stripped" or tensor.dropped):
            tensor.values_hidden = raw_state == "stripped" or (raw_state is None and bool(tensor.dropped))
            if raw_state != "stripped":
                tensor.raw_len = tensor.raw_offset = None
            idx = len(self.sk.tensors)
            self.sk.tensors.append(tensor)
            entry = (
                b"\x0a"
                + _varint_bytes(len(self.sk.marker))
                + self.sk.marker.encode()
                + b"\x12"
                + _varint_bytes(len(str(idx)))
                + str(idx).encode()
            )
            marker = _varint_bytes(_MARKER_FIELD << 3 | LEN) + _varint_bytes(len(entry)) + entry
            self.room(len(marker), start, slack=MARKER_SLACK)  # markers may pass the cap a little
            self.out += marker

    def skip(self, n: int) -> None:
        self.sk.skipped_bytes += n

    def prefix(self, fnum: int, a: int, b: int) -> None:
        """An oversized attribute string or packed list, cut to its first PREFIX bytes on an element boundary."""
        head = self.src.get(a, min(PREFIX, b - a))
        if fnum == ATTR_FLOATS:
            head = head[: len(head) // 4 * 4]
        elif fnum == ATTR_INTS:
            last = max((i for i, c in enumerate(head) if not c & 0x80), default=-1)
            head = head[: last + 1]
        self.emit(_varint_bytes(fnum << 3 | LEN) + _varint_bytes(len(head)) + head, a)
        self.skip(b - a - len(head))

    def submessage(self, fstart: int, fnum: int, kind: int, a: int, b: int, gd: int) -> None:
        if kind == NODE:
            self.nodes += 1
            if (
                self.nodes > self.max_nodes
            ):  # parsing and walking cost ~1 KB per node, however small it is on disk
                raise _Stop(
                    "max_onnx_nodes",
                    f"more than {self.max_nodes} nodes (at offset {fstart}); the rest was not inspected",
                )
        if kind == GRAPH and gd > self.max_graph_depth:
            self.sk.depth_hit = (
                self.sk.depth_hit
                or f"subgraph at offset {a} nested deeper than {self.max_graph_depth} levels"
            )
            self.skip(b - a)
            return
        if b - a <= self.keep and kind not in _ALWAYS_WALK:
            self.copy(fstart, b)
            return
        self.emit(_varint_bytes(fnum << 3 | LEN) + b"\0\0\0\0", fstart)
        at = len(self.out) - 4
        body = len(self.out)
        try:
            self.message(kind, a, b, gd)
        except _Stop:
            if kind == TENSOR:  # a tensor cut short (or without its marker) would mislead: leave it out whole
                self.pend = None
                del self.out[at - len(_varint_bytes(fnum << 3 | LEN)) :]
                raise
            self.pend = None
            self.out[at : at + 4] = _len4(len(self.out) - body)
            raise
        self.out[at : at + 4] = _len4(len(self.out) - body)


def build_skeleton(
    reader: Reader,
    *,
    max_graph_depth: int,
    out_of_time: Callable[[], bool] = lambda: False,
    keep: int | None = None,
    max_bytes: int | None = None,
    max_nodes: int | None = None,
    max_fields: int | None = None,
) -> Skeleton:
    """The ModelProto in ``reader`` without its big tensor payloads; raises SkeletonError for malformed wire data.

    A build stopped by a cap returns the well-formed part read so far with ``stopped`` set.
    """
    keep = KEEP if keep is None else keep
    max_bytes = MAX_SKELETON if max_bytes is None else max_bytes
    if reader.size <= keep:
        data = reader.read(0, reader.size)
        return Skeleton(data, f"modelward.stripped.{secrets.token_hex(8)}")
    b = _Builder(
        reader,
        keep,
        max_bytes,
        max_graph_depth,
        out_of_time,
        1 << 62 if max_nodes is None else max_nodes,
        1 << 62 if max_fields is None else max_fields,
    )
    try:
        b.message(MODEL, 0, reader.size, 0)
    except _Stop as stop:
        b.pend = None
        b.sk.stopped = (stop.limit, str(stop))
    except WireError as exc:
        raise SkeletonError(str(exc)) from None
    except RecursionError:
        raise SkeletonError("ONNX messages nested too deeply") from None
    return b.sk
