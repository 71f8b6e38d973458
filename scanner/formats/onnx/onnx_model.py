"""ONNX: operator domains, Python ops, external data, size abuse and graph backdoors.

The protobuf is first reduced to a bounded skeleton (onnx_skeleton: big
tensor payloads are left unread and described in a side table), which is then
decoded with onnx's generated classes (parsing only: no external data is
loaded, no checker or shape inference runs). Every graph is
walked: the main graph, subgraphs held in node attributes (If/Loop/Scan/
SequenceMap) at any depth, model-local functions and training graphs, with
caps on depth and total nodes.
"""

from __future__ import annotations

import math
import posixpath
import re
import struct
from collections import ChainMap
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from ...findings import Severity
from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext
from ..parsers.protobuf_wire import WireError, read_varint, scan_top_level

if TYPE_CHECKING:
    from .onnx_skeleton import Skeleton

STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "ai.onnx.preview"}
)
CONTRIB_DOMAINS = frozenset(
    {"com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental", "com.ms.internal.nhwc"}
)
EXTENSIONS_DOMAINS = frozenset({"ai.onnx.contrib"})
# onnxruntime-extensions also registers these in "com.microsoft.extensions" (measured: every op name in the 0.15.2
# library probed against a session); its own pre/post-processing tool writes DecodeImage there. The Azure / OpenAI
# invoker ops of its Azure builds (HTTP calls to endpoints the model names) live there too and stay custom.
EXTENSIONS_MS_DOMAIN = "com.microsoft.extensions"
EXTENSIONS_MS_OPS = frozenset(
    {
        "BasicTokenizer",
        "BertTokenizer",
        "BertTokenizerDecoder",
        "BlingFireSentenceBreaker",
        "BpeDecoder",
        "CLIPTokenizer",
        "DecodeImage",
        "DrawBoundingBoxes",
        "EncodeImage",
        "GPT2Tokenizer",
        "HfBertTokenizer",
        "HfJsonTokenizer",
        "RobertaTokenizer",
        "SentencepieceDecoder",
        "SentencepieceTokenizer",
        "SpmTokenizer",
        "TrieDetokenizer",
        "TrieTokenizer",
        "WordpieceTokenizer",
    }
)
EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum"})
MAX_IR_VERSION = 32
INT64_MAX = (1 << 63) - 1
ALLOC_CAP = 1 << 31  # elements a constant-driven op may materialize before it counts as abuse
SCALE_CAP = 1 << 16
LOOP_CAP = 1 << 40
METADATA_CAP = 1 << 20
MAX_CONST_VALUES = 64
MAX_FINDINGS_PER_RULE = 20
# element size in bits per TensorProto.DataType (STRING=8 and UNDEFINED=0 have none)
ELEM_BITS = {
    1: 32,
    2: 8,
    3: 8,
    4: 16,
    5: 16,
    6: 32,
    7: 64,
    9: 8,
    10: 16,
    11: 64,
    12: 32,
    13: 64,
    14: 64,
    15: 128,
    16: 16,
    17: 8,
    18: 8,
    19: 8,
    20: 8,
    21: 4,
    22: 4,
    23: 4,
    24: 8,
    25: 2,
    26: 2,
}
ATTR_GRAPH, ATTR_GRAPHS, ATTR_TENSOR, ATTR_TENSORS, ATTR_SPARSE, ATTR_SPARSES = 5, 10, 4, 9, 11, 12
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# onnxruntime (kTensorProtoMemoryAddressTag) and OpenVINO's ONNX frontend (ORT_MEM_ADDR) take a tensor whose location
# is exactly this as already in memory, its "offset" a raw pointer: OpenVINO 2026.4 read_model() copies the bytes at
# any address a file names into the tensor (process memory out through the model's outputs)
ORT_MEM_ADDR = "*/_ORT_MEM_ADDR_/*"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# top-level ModelProto fields and their wire types, for the sniffer
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _t(v: str | bytes) -> str:
    """proto2 string fields come back as bytes when they are not UTF-8; runtimes accept them, so must we."""
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


class _Stop(Exception):
    """A cap was hit; the walk stops and the rest is reported as not inspected."""


def _sniff(head: bytes, reader: Reader) -> bool:
    """ModelProto has no magic: ir_version first (what writers do) or anywhere (``_sniff_unordered``), and only
    ModelProto fields at the top level."""
    if len(head) < 4:
        return False
    if head[0] != 0x08:
        return _sniff_unordered(head, reader)
    pos = 1
    seen_struct = False
    try:
        ir, pos = read_varint(head, pos)
        if not 3 <= ir <= MAX_IR_VERSION:
            return False
        while pos < len(head):
            tag, pos = read_varint(head, pos)
            field, wire = tag >> 3, tag & 7
            if _MODEL_FIELDS.get(field) != wire:
                return False
            if wire == 0:
                _, pos = read_varint(head, pos)
            else:
                n, pos = read_varint(head, pos)
                seen_struct = seen_struct or field in (7, 8, 25)
                pos += n
    except WireError:  # a varint cut by the end of the sniff window
        return len(head) < reader.size
    return seen_struct or pos > len(head)


def _sniff_unordered(head: bytes, reader: Reader) -> bool:
    """Writers put ir_version first, but protobuf parsers (onnx.load, onnxruntime) take fields in any order:
    a model that starts with its graph is still a model (and was "text" to the next sniffers). Every top-level
    field must be a ModelProto field of the right wire type, with an ir_version and a graph among them."""
    tag = head[0]
    if _MODEL_FIELDS.get(tag >> 3) != tag & 7 or tag >> 3 == 1:
        return False
    ir_ok = graph = False
    try:
        for field, wire, _off, value in scan_top_level(reader.read, reader.size, max_fields=100_000):
            if _MODEL_FIELDS.get(field) != wire:
                return False
            if field == 1:
                ir_ok = 3 <= value <= MAX_IR_VERSION
            graph = graph or field == 7
    except WireError:
        return False
    return ir_ok and graph


def _sniff_ort(head: bytes, reader: Reader) -> bool:
    return head[4:8] == b"ORTM"


def _inspect_ort(reader: Reader, ctx: InspectContext) -> None:
    ctx.add("ONNX-ORT-FORMAT", "ONNX Runtime ORT-format model (flatbuffer): not analysed")
    ctx.unanalyzable("ORT-format models are not parsed")


def _tensor_bytes(dims: list[int], data_type: int) -> int | None:
    bits = ELEM_BITS.get(data_type)
    if bits is None:
        return None
    return (math.prod(dims) * bits + 7) // 8


def _ints_of(t: Any) -> list[int] | None:
    """Values of a small integer constant tensor, or None (callers skip tensors whose values were stripped)."""
    n = math.prod(t.dims) if all(d >= 0 for d in t.dims) else -1
    if n < 0 or n > MAX_CONST_VALUES or t.data_location == 1:
        return None
    if t.data_type == 7:
        if t.raw_data:
            return list(struct.unpack(f"<{n}q", t.raw_data)) if len(t.raw_data) == 8 * n else None
        return list(t.int64_data) if len(t.int64_data) == n else None
    if t.data_type == 6:
        if t.raw_data:
            return list(struct.unpack(f"<{n}i", t.raw_data)) if len(t.raw_data) == 4 * n else None
        return list(t.int32_data) if len(t.int32_data) == n else None
    return None


def _floats_of(t: Any) -> list[float] | None:
    n = math.prod(t.dims) if all(d >= 0 for d in t.dims) else -1
    if n < 0 or n > MAX_CONST_VALUES or t.data_type != 1 or t.data_location == 1:
        return None
    if t.raw_data:
        return list(struct.unpack(f"<{n}f", t.raw_data)) if len(t.raw_data) == 4 * n else None
    return list(t.float_data) if len(t.float_data) == n else None


def check_location(loc: str) -> str | None:
    """Why an external-data location could leave the model folder, or None when it stays inside."""
    if not loc:
        return "empty location"
    if "\x00" in loc:
        return "NUL byte in location"
    if loc == ORT_MEM_ADDR:
        return "in-memory address marker: runtimes read the offset as a raw pointer"
    if "*" in loc or "?" in loc:  # wildcards: no writer names a file so; the marker's neighbours
        return "wildcard character in location"
    if _CONTROL.search(loc):
        return "control character in location"
    if loc.startswith(("\\\\", "//")):
        return "UNC / network path"
    if loc.startswith(("/", "\\")):
        return "absolute path"
    if _SCHEME.match(loc):
        return "drive letter or URL scheme"
    norm = posixpath.normpath(loc.replace("\\", "/"))
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        return "path traversal ('..')"
    return None


def normalize_location(loc: str) -> str:
    return posixpath.normpath(loc.replace("\\", "/"))


class _Walker:
    def __init__(self, model: Any, ctx: InspectContext, skeleton: Skeleton) -> None:
        self.model = model
        self.ctx = ctx
        self.sk = skeleton
        self.max_depth = ctx.limits.max_graph_recursion
        self.max_nodes = ctx.limits.max_nodes
        self.nodes = 0
        # onnxruntime resolves a node to a model-local function by (domain, name, overload) (IR 10), and only when
        # no registered schema has the name: a contrib or onnxruntime-extensions kernel wins over a local
        # function of the same name (measured, onnxruntime 1.32), so those are reported whatever the model defines
        self.local_funcs = {(_t(f.domain), _t(f.name), _t(f.overload)) for f in model.functions}
        self.ops: dict[tuple[str, str, str], int] = {}  # (rule, domain, op_type) -> count
        self.op_where: dict[tuple[str, str, str], str] = {}
        self.counts: dict[str, int] = {}
        self.external: dict[str, dict[str, Any]] = {}
        self.ep_nodes = 0
        self.ep_sources: set[str] = set()
        self.ep_files: set[str] = set()
        self.text_bytes = (
            skeleton.text_dropped
            + len(model.doc_string)
            + sum(len(p.key) + len(p.value) for p in model.metadata_props)
        )

    def add(
        self,
        rule: str,
        message: str,
        *,
        severity: Severity | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        key = f"{rule}/{severity}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= MAX_FINDINGS_PER_RULE:
            self.ctx.add(rule, message, severity=severity, evidence=evidence)

    # --- graphs -----------------------------------------------------------------------------------
    def graph(self, g: Any, where: str, depth: int, consts: MutableMapping[str, Any]) -> None:
        if depth > self.max_depth:
            self.ctx.limit_hit(
                "max_graph_recursion", f"subgraphs nested deeper than {self.max_depth} levels at {where}"
            )
            raise _Stop
        self.text_bytes += len(g.doc_string)
        scope = ChainMap({}, consts) if not isinstance(consts, ChainMap) else consts.new_child()
        for t in g.initializer:
            self.tensor(t, f"{where} initializer {_t(t.name)!r}")
            scope[t.name] = t
        for st in g.sparse_initializer:
            self.sparse(st, f"{where} sparse initializer {_t(st.values.name)!r}")
        for n in g.node:
            self.node(n, where, depth, scope)

    def sparse(self, st: Any, where: str) -> None:
        # values and indices are both TensorProtos a runtime densifies: either may point at external data
        self.tensor(st.values, where)
        self.tensor(st.indices, f"{where} indices")

    def attribute(self, a: Any, where: str, depth: int, scope: MutableMapping[str, Any]) -> None:
        """Every tensor and graph one attribute carries (a node's, or a function's default)."""
        if a.HasField("t"):
            self.tensor(a.t, where)
        for t in a.tensors:
            self.tensor(t, where)
        if a.HasField("sparse_tensor"):
            self.sparse(a.sparse_tensor, where)
        for st in a.sparse_tensors:
            self.sparse(st, where)
        if a.HasField("g"):
            self.graph(a.g, where, depth + 1, scope)
        for sub in a.graphs:
            self.graph(sub, where, depth + 1, scope)

    def node(self, n: Any, where: str, depth: int, scope: MutableMapping[str, Any]) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            self.ctx.limit_hit("max_nodes", f"more than {self.max_nodes} nodes; the rest was not inspected")
            raise _Stop
        if self.nodes & 0xFFF == 0 and self.ctx.state.out_of_time():
            self.ctx.limit_hit("file_seconds", "time budget exhausted while walking the ONNX graph")
            raise _Stop
        self.text_bytes += len(n.doc_string)
        self.op(n, where)
        for a in n.attribute:
            self.attribute(a, f"{where} > {_t(n.op_type)} {_t(n.name)!r}.{_t(a.name)}", depth, scope)
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    scope[n.output[0]] = a.t
        self.allocation(n, where, scope)

    def op(self, n: Any, where: str) -> None:
        dom, op = _t(n.domain), _t(n.op_type)
        if op.lower() == "pyop":
            attrs = {_t(a.name)[:100]: _t(a.s)[:200] for a in n.attribute if a.s}
            self.add(
                "ONNX-PYOP",
                f"PyOp node {_t(n.name)!r} at {where} calls Python "
                f"{attrs.get('module', '?')}.{attrs.get('class_name', '?')}.{attrs.get('compute', '?')}",
                evidence={
                    "node": _t(n.name)[:200],
                    "domain": dom[:200],
                    "attributes": attrs,
                    "where": where[:300],
                },
            )
            return
        if dom in STANDARD_DOMAINS:
            return
        if dom == "com.microsoft" and op == "EPContext":
            self.ep_context(n, where)
        extensions = dom in EXTENSIONS_DOMAINS or (dom == EXTENSIONS_MS_DOMAIN and op in EXTENSIONS_MS_OPS)
        local = (dom, op, _t(n.overload)) in self.local_funcs
        if local and dom not in CONTRIB_DOMAINS and not extensions:
            return
        rule = (
            "ONNX-CONTRIB-OP"
            if dom in CONTRIB_DOMAINS
            else "ONNX-EXTENSIONS-OP"
            if extensions
            else "ONNX-CUSTOM-DOMAIN"
        )
        key = (rule, dom, op)
        self.ops[key] = self.ops.get(key, 0) + 1
        self.op_where.setdefault(key, where)

    def ep_context(self, n: Any, where: str) -> None:
        """An execution provider's precompiled binary: embedded (embed_mode 1, the default) or a file path."""
        attrs = {_t(a.name): a for a in n.attribute}
        embed = attrs["embed_mode"].i if "embed_mode" in attrs else 1
        self.ep_nodes += 1
        if "source" in attrs:
            self.ep_sources.add(_t(attrs["source"].s)[:60])
        if embed == 1 or "ep_cache_context" not in attrs:
            return
        loc = _t(attrs["ep_cache_context"].s)
        self.ep_files.add(loc[:200])
        why = check_location(loc)
        if why:
            self.add(
                "ONNX-EXTERNAL-DATA-PATH",
                f"{where}: EPContext node {_t(n.name)[:100]!r} loads its binary from {loc[:200]!r}, "
                f"outside the model folder ({why})",
                evidence={"node": _t(n.name)[:200], "location": loc[:300], "reason": why},
            )

    # --- tensors ----------------------------------------------------------------------------------
    def tensor(self, t: Any, where: str) -> None:
        dims = list(t.dims)
        if any(d < 0 for d in dims):
            self.add(
                "ONNX-SHAPE-ABUSE",
                f"negative dimension in {where}: {dims[:8]}",
                evidence={"tensor": _t(t.name)[:200], "dims": dims[:8]},
            )
            return
        if math.prod(dims) > INT64_MAX:
            self.add(
                "ONNX-SHAPE-ABUSE",
                f"dimensions of {where} overflow int64: {dims[:8]}",
                evidence={"tensor": _t(t.name)[:200], "dims": dims[:8]},
            )
            return
        expected = _tensor_bytes(dims, t.data_type)
        if t.data_location == 1 or len(t.external_data):
            self.external_data(t, where, expected)
            return
        info = self.sk.stripped(t)
        raw_len = info.raw_len if info is not None and info.raw_len is not None else len(t.raw_data)
        if raw_len and expected is not None and raw_len != expected:
            ev = {"tensor": _t(t.name)[:200], "dims": dims[:8], "raw_bytes": raw_len}
            if info is not None and info.raw_offset is not None:
                ev["raw_offset"] = info.raw_offset
            self.add(
                "ONNX-SHAPE-ABUSE",
                f"{where}: raw_data holds {raw_len} bytes, shape {dims[:8]} needs {expected}",
                evidence=ev,
            )

    def external_data(self, t: Any, where: str, expected: int | None) -> None:
        entries: dict[str, str] = {}
        for kv in t.external_data:
            key, value = _t(kv.key), _t(kv.value)
            if key not in EXTERNAL_KEYS:
                self.add(
                    "ONNX-EXTERNAL-DATA-KEY",
                    f"{where}: unknown external_data key {key[:80]!r}",
                    evidence={"tensor": _t(t.name)[:200], "key": key[:200]},
                )
            elif key in entries:
                self.add(
                    "ONNX-EXTERNAL-DATA-KEY",
                    f"{where}: external_data key {key!r} given twice",
                    evidence={"tensor": _t(t.name)[:200], "key": key},
                )
            entries[key] = value
        loc = entries.get("location")
        if loc is None:
            self.add(
                "ONNX-EXTERNAL-DATA-RANGE",
                f"{where}: external data without a location",
                evidence={"tensor": _t(t.name)[:200]},
            )
            return
        why = check_location(loc)
        if why:
            self.add(
                "ONNX-EXTERNAL-DATA-PATH",
                f"{where}: external data location {loc[:200]!r} escapes the model folder ({why})",
                evidence={"tensor": _t(t.name)[:200], "location": loc[:300], "reason": why},
            )
            return
        nums: dict[str, int] = {}
        for k in ("offset", "length"):
            if k in entries:
                v = entries[k].strip()
                if not v.isdigit():
                    self.add(
                        "ONNX-EXTERNAL-DATA-RANGE",
                        f"{where}: external data {k} {v[:40]!r} is not a non-negative integer",
                        evidence={"tensor": _t(t.name)[:200], k: v[:40]},
                    )
                    return
                nums[k] = int(v)
        length = nums.get("length", expected)
        if "length" in nums and expected is not None and nums["length"] != expected:
            self.add(
                "ONNX-EXTERNAL-DATA-RANGE",
                f"{where}: external data length {nums['length']} disagrees with shape {list(t.dims)[:8]} ({expected} bytes)",
                evidence={"tensor": _t(t.name)[:200], "length": nums["length"], "expected": expected},
            )
        norm = normalize_location(loc)
        rec = self.external.setdefault(
            norm, {"location": norm, "tensors": 0, "max_end": 0, "open_ended": False}
        )
        rec["tensors"] += 1
        if length is None:
            rec["open_ended"] = True
        else:
            rec["max_end"] = max(rec["max_end"], nums.get("offset", 0) + length)

    # --- constant-driven allocations ---------------------------------------------------------------
    def allocation(self, n: Any, where: str, scope: MutableMapping[str, Any]) -> None:
        op = _t(n.op_type)
        if _t(n.domain) not in ("", "ai.onnx") or op not in (
            "ConstantOfShape",
            "Expand",
            "Tile",
            "Resize",
            "Upsample",
            "Loop",
        ):
            return

        def const(i: int) -> Any:
            t = scope.get(n.input[i]) if i < len(n.input) and n.input[i] else None
            if t is None:
                return None
            info = self.sk.stripped(t)
            return None if info is not None and info.values_hidden else t

        def ints(i: int) -> list[int] | None:
            t = const(i)
            return _ints_of(t) if t is not None else None

        where = f"{where} > {op} {_t(n.name)!r}"
        if op in ("ConstantOfShape", "Expand", "Tile"):
            vals = ints(0 if op == "ConstantOfShape" else 1)
            if vals is None:
                return
            if any(v < 0 for v in vals):
                self.add(
                    "ONNX-SHAPE-ABUSE", f"{where}: negative target {vals[:8]}", evidence={"values": vals[:8]}
                )
            elif math.prod(vals) > ALLOC_CAP:
                self.add(
                    "ONNX-SHAPE-ABUSE",
                    f"{where}: constant target {vals[:8]} materializes {math.prod(vals)} elements",
                    severity=Severity.MEDIUM,
                    evidence={"values": vals[:8]},
                )
        elif op in ("Resize", "Upsample"):
            sizes = ints(3) if op == "Resize" else None
            if sizes is not None and (any(v < 0 for v in sizes) or math.prod(sizes) > ALLOC_CAP):
                self.add(
                    "ONNX-SHAPE-ABUSE",
                    f"{where}: constant output sizes {sizes[:8]}",
                    severity=None if any(v < 0 for v in sizes) else Severity.MEDIUM,
                    evidence={"sizes": sizes[:8]},
                )
            si = 2 if op == "Resize" else 1
            t = const(si)
            scales = _floats_of(t) if t is not None else None
            if scales and (any(s < 0 for s in scales) or math.prod(scales) > SCALE_CAP):
                self.add(
                    "ONNX-SHAPE-ABUSE",
                    f"{where}: constant scales {scales[:8]}",
                    severity=None if any(s < 0 for s in scales) else Severity.MEDIUM,
                    evidence={"scales": scales[:8]},
                )
        elif op == "Loop":
            trip = ints(0)
            no_cond = len(n.input) < 2 or not n.input[1]
            if trip and no_cond and trip[0] > LOOP_CAP:
                self.add(
                    "ONNX-SHAPE-ABUSE",
                    f"{where}: {trip[0]} iterations with no exit condition",
                    severity=Severity.MEDIUM,
                    evidence={"trip_count": trip[0]},
                )

    # --- driver -----------------------------------------------------------------------------------
    def run(self) -> None:
        m = self.model
        self.graph(m.graph, "graph", 0, ChainMap())
        for f in m.functions:
            scope: ChainMap[str, Any] = ChainMap()
            self.text_bytes += len(f.doc_string)
            fw = f"function {_t(f.domain)}:{_t(f.name)}"
            for a in f.attribute_proto:  # default attribute values: used when a call omits the attribute
                self.attribute(a, f"{fw} default {_t(a.name)!r}", 1, scope)
            for n in f.node:
                self.node(n, f"function {_t(f.domain)}:{_t(f.name)}", 1, scope)
        for i, ti in enumerate(m.training_info):
            self.graph(ti.initialization, f"training_info[{i}].initialization", 1, ChainMap())
            self.graph(ti.algorithm, f"training_info[{i}].algorithm", 1, ChainMap())

    def report_ops(self) -> None:
        for (rule, dom, op), count in sorted(self.ops.items()):
            where = self.op_where[(rule, dom, op)]
            what = {
                "ONNX-CONTRIB-OP": "ONNX Runtime contrib",
                "ONNX-EXTENSIONS-OP": "onnxruntime-extensions",
            }.get(rule, "custom-domain (needs a native custom-op library)")
            self.ctx.add(
                rule,
                f"{count} node(s) use {what} operator {dom}:{op} (first at {where})"[:400],
                evidence={"domain": dom[:200], "op_type": op[:200], "count": count},
            )


def _function_cycles(model: Any, max_depth: int) -> str | None:
    """A description of a recursive or over-deep call chain among model-local functions, or None."""
    funcs = {(_t(f.domain), _t(f.name)): f for f in model.functions}
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, f in funcs.items():
        found: set[tuple[str, str]] = set()
        stack = list(f.node)
        while stack:
            n = stack.pop()
            key2 = (_t(n.domain), _t(n.op_type))
            if key2 in funcs:
                found.add(key2)
            for a in n.attribute:
                if a.HasField("g"):
                    stack.extend(a.g.node)
                for g in a.graphs:
                    stack.extend(g.node)
        calls[key] = found
    state: dict[tuple[str, str], int] = {}
    for root in funcs:
        if root in state:
            continue
        stack2: list[tuple[tuple[str, str], list[tuple[str, str]]]] = [(root, sorted(calls[root]))]
        state[root] = 1
        while stack2:
            key, todo = stack2[-1]
            if todo:
                nxt = todo.pop()
                if state.get(nxt) == 1:
                    return f"function {nxt[0]}:{nxt[1]} calls itself (through {key[0]}:{key[1]})"
                if nxt not in state:
                    state[nxt] = 1
                    stack2.append((nxt, sorted(calls[nxt])))
                    if len(stack2) > max_depth:
                        return f"function call chain deeper than {max_depth}"
            else:
                stack2.pop()
                state[key] = 2
    return None


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    if reader.size > ctx.limits.max_protobuf_bytes:
        ctx.limit_hit(
            "max_protobuf_bytes",
            f"ONNX protobuf of {reader.size} bytes exceeds {ctx.limits.max_protobuf_bytes}",
        )
        return
    from google.protobuf.message import DecodeError

    from onnx import ModelProto

    from .onnx_graph import find_backdoors
    from .onnx_skeleton import SkeletonError, build_skeleton

    try:
        sk = build_skeleton(
            reader,
            max_graph_depth=ctx.limits.max_graph_recursion,
            out_of_time=ctx.state.out_of_time,
            max_bytes=ctx.limits.max_onnx_structure_bytes,
            max_nodes=ctx.limits.max_onnx_nodes,
            max_fields=ctx.limits.max_onnx_fields,
        )
    except SkeletonError as exc:
        ctx.add("ONNX-INVALID", f"not a valid ONNX ModelProto: {exc}"[:300])
        ctx.unanalyzable("ONNX protobuf does not decode")
        return
    model = ModelProto()
    try:
        model.ParseFromString(sk.data)
    except (DecodeError, RecursionError, ValueError, RuntimeError) as exc:
        ctx.add("ONNX-INVALID", f"not a valid ONNX ModelProto: {exc}"[:300])
        ctx.unanalyzable("ONNX protobuf does not decode")
        return
    finally:
        sk.data = b""  # the parsed model holds what it needs
    if sk.stopped:
        ctx.limit_hit(*sk.stopped)
    if sk.depth_hit:
        ctx.limit_hit("max_graph_recursion", sk.depth_hit)
    sane = 1 <= model.ir_version <= MAX_IR_VERSION and len(model.opset_import) > 0 and model.HasField("graph")
    if (
        not sane and not sk.stopped
    ):  # a model cut short by a cap may lack its trailing fields: judge what was read
        ctx.add(
            "ONNX-INVALID",
            f"not a sane ONNX model (ir_version {model.ir_version}, "
            f"{len(model.opset_import)} opset imports, graph {'present' if model.HasField('graph') else 'missing'})",
            evidence={"ir_version": model.ir_version},
        )
        ctx.unanalyzable("ONNX model structure not sane")
        return
    cycle = _function_cycles(model, ctx.limits.max_graph_recursion)
    if cycle:
        ctx.add("ONNX-INVALID", f"model-local functions recurse: {cycle}", severity=Severity.MEDIUM)
    w = _Walker(model, ctx, sk)
    try:
        w.run()
    except _Stop:
        pass
    except RecursionError:
        ctx.limit_hit("max_graph_recursion", "ONNX graph nesting exhausted the recursion budget")
    w.report_ops()
    if w.ep_nodes:
        ctx.add(
            "ONNX-EP-CONTEXT",
            f"{w.ep_nodes} EPContext node(s) hold binaries precompiled for an execution provider "
            f"({', '.join(sorted(w.ep_sources)[:4]) or 'provider not named'}), "
            f"{'in ' + ', '.join(sorted(w.ep_files)[:4]) if w.ep_files else 'embedded'}: not judged"[:400],
            evidence={
                "nodes": w.ep_nodes,
                "sources": sorted(w.ep_sources)[:8],
                "files": sorted(w.ep_files)[:8],
            },
        )
        ctx.partial("EPContext precompiled binaries not judged")
    if w.external:
        files = sorted(w.external.values(), key=lambda r: r["location"])[:64]
        ctx.add(
            "ONNX-EXTERNAL-DATA",
            f"{sum(r['tensors'] for r in w.external.values())} tensor(s) stored in "
            f"{len(w.external)} external file(s): {', '.join(r['location'] for r in files[:5])}"[:400],
            evidence={"files": files},
        )
    if w.text_bytes > METADATA_CAP:
        ctx.add(
            "ONNX-METADATA-LARGE",
            f"{w.text_bytes} bytes of doc strings and metadata",
            evidence={"bytes": w.text_bytes},
        )
    if w.nodes <= ctx.limits.max_nodes:
        for ev in find_backdoors(model.graph, ctx.limits.max_nodes):
            ctx.add(
                "ONNX-GRAPH-BACKDOOR",
                f"input-triggered selection: {' -> '.join(ev['path'])}"[:500],
                evidence=ev,
            )


ONNX = FormatHandler("onnx", _sniff, _inspect, family="onnx", claims=(".onnx",))
ONNX_ORT = FormatHandler("onnx-ort", _sniff_ort, _inspect_ort, family="onnx", claims=(".ort",))
