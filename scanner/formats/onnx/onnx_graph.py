"""ShadowLogic-style graph backdoor heuristic for ONNX graphs.

A backdoor that lives in the graph (not in the weights) taps a graph input,
compares it with a hard-coded pattern (a token sequence, a pixel patch) and
uses the result to select a constant output. Real models route inputs through
learned weights before any data-dependent selection, and their input-derived
comparisons are against scalars (padding ids) or shapes. The heuristic flags
only the conjunction: input --(no learned weight)--> comparison with a
multi-element constant --> Where/If condition or multiplicative mask, whose
other operand is constant-only and which reaches a graph output.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

COMPARE = frozenset({"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
DIFF = frozenset({"Sub", "BitwiseXor", "Xor"})
SHAPE_OPS = frozenset({"Shape", "Size"})
# operators whose weight inputs are learned parameters (input positions; None = every non-first input)
LEARNED_INPUTS: dict[str, tuple[int, ...] | None] = {
    "MatMul": None,
    "Gemm": None,
    "Conv": None,
    "ConvTranspose": None,
    "MatMulInteger": None,
    "ConvInteger": None,
    "QLinearMatMul": None,
    "QLinearConv": None,
    "LSTM": None,
    "GRU": None,
    "RNN": None,
    "Gather": (0,),
    "Attention": None,
    "MultiHeadAttention": None,
    "EmbedLayerNormalization": None,
    "SkipLayerNormalization": None,
    "LayerNormalization": None,
    "BatchNormalization": None,
    "InstanceNormalization": None,
    "MatMulNBits": None,
    "GatherBlockQuantized": (0,),
    "DequantizeLinear": (0,),
    "Einsum": None,
    "GroupQueryAttention": None,
}
MAX_PATH = 24
MAX_REPORTS = 5

RAW, LEARNED, CONST, META = "raw", "learned", "const", "meta"


@dataclass(slots=True)  # one per value name of the graph: keep it small
class _Value:
    kind: str
    elements: int = 1  # for CONST: the largest constant feeding it
    trig: int = 0  # 0 none, 1 diff against a multi-element constant, 2 trigger flag
    prev: tuple[int, str | None, str] | None = (
        None  # (producing node index, its note or None, the input it came from)
    )


_LEARNED = _Value(LEARNED)  # shared: values that carry no path need no object of their own
_META = _Value(META)


def _elements(dims: Any) -> int:
    try:
        return max(1, math.prod(int(d) for d in dims))
    except (TypeError, ValueError):
        return 1


def _const_elements_of_constant_node(node: Any) -> int:
    for a in node.attribute:
        if a.name == "value":
            return _elements(a.t.dims)
        if a.name in ("value_ints", "value_floats", "value_strings"):
            return max(1, len(a.ints) + len(a.floats) + len(a.strings))
    return 1


def _t(v: str | bytes) -> str:
    return v if isinstance(v, str) else v.decode("utf-8", "replace")


def _describe(node: Any) -> str:
    return f"{_t(node.op_type)}({_t(node.name)})" if node.name else _t(node.op_type)


def _learned_initializers(graph: Any, init_names: set[str]) -> set[str]:
    learned: set[str] = set()
    for node in graph.node:
        spec = LEARNED_INPUTS.get(node.op_type, ())
        if spec == ():
            continue
        positions = range(1, len(node.input)) if spec is None else spec
        if spec is None and node.op_type in ("MatMul", "Einsum"):
            positions = range(len(node.input))  # either side of a MatMul may hold the weight
        for i in positions:
            if i < len(node.input) and node.input[i] in init_names:
                learned.add(node.input[i])
    return learned


@dataclass(slots=True)
class _Compact:
    """The graph's dataflow as indices and shared strings: per-node wrappers and per-access string copies of a
    parsed protobuf cost ~10x more, and a 100k-node graph must stay within the memory goal."""

    ops: list[Any]  # str, or bytes when a name is not valid UTF-8
    ins: list[tuple[Any, ...]]
    outs: list[tuple[Any, ...]]


def _compact(graph: Any, limit: int) -> _Compact:
    names: dict[str, str] = {}

    def share(xs: Any) -> tuple[str, ...]:
        return tuple(names.setdefault(x, x) for x in xs)

    ops: list[str] = []
    ins: list[tuple[str, ...]] = []
    outs: list[tuple[str, ...]] = []
    for i, n in enumerate(graph.node):
        if i >= limit:
            break
        op = n.op_type
        ops.append(names.setdefault(op, op))
        ins.append(share(n.input))
        outs.append(share(n.output))
    return _Compact(ops, ins, outs)


def _topo(c: _Compact, ready: set[str]) -> list[int]:
    n_nodes = len(c.ops)
    waiting: dict[str, list[int]] = {}
    missing = [0] * n_nodes
    produced = {o for outs in c.outs for o in outs if o}
    for i in range(n_nodes):
        for name in {x for x in c.ins[i] if x and x in produced and x not in ready}:
            waiting.setdefault(name, []).append(i)
            missing[i] += 1
    queue = deque(i for i, m in enumerate(missing) if m == 0)
    order: list[int] = []
    while queue:
        i = queue.popleft()
        order.append(i)
        for o in c.outs[i]:
            for j in waiting.pop(o, ()):
                missing[j] -= 1
                if missing[j] == 0:
                    queue.append(j)
    return order


def _branch_is_constant(sub: Any, outer_const: set[str]) -> bool:
    const = set(outer_const) | {t.name for t in sub.initializer}
    for node in sub.node:
        if node.op_type == "Constant" or all((not x) or x in const for x in node.input):
            if node.op_type in SHAPE_OPS or any(a.type in (5, 10) for a in node.attribute):  # subgraph attrs
                continue
            const.update(o for o in node.output if o)
    return len(sub.output) > 0 and all(o.name in const for o in sub.output)


def find_backdoors(graph: Any, max_nodes: int = 1_000_000) -> list[dict[str, Any]]:
    """Evidence dicts, one per suspicious selection; empty for ordinary graphs."""
    init = {t.name: t for t in graph.initializer}
    learned_init = _learned_initializers(graph, set(init))
    vals: dict[str, _Value] = {}
    for t in graph.initializer:
        vals[t.name] = _LEARNED if t.name in learned_init else _Value(CONST, _elements(t.dims))
    init_names = set(init)
    del init
    for i in graph.input:
        if i.name not in init_names:
            vals[i.name] = _Value(RAW, prev=(-1, f"graph input {_t(i.name)}", ""))
    c = _compact(graph, max_nodes)
    order = _topo(c, set(vals))
    sinks: list[tuple[int, str]] = []
    for i in order:
        op, node_ins = c.ops[i], c.ins[i]
        ins = [vals.get(x) for x in node_ins if x]
        known = [v for v in ins if v is not None]
        out = _propagate(graph, i, op, node_ins, ins, known)
        for o in c.outs[i]:
            if o:
                vals[o] = out
        cond = vals.get(node_ins[0]) if node_ins else None
        if op in ("Where", "If") and cond is not None and cond.trig == 2:
            sinks.append((i, node_ins[0]))
        elif op == "Mul":
            for x in node_ins:
                v = vals.get(x)
                if v is not None and v.trig == 2:
                    sinks.append((i, x))
                    break
    if not sinks:
        return []
    consumers: dict[str, list[int]] = {}  # only needed (and built) when a selection was found
    for i in order:
        for x in c.ins[i]:
            if x:
                consumers.setdefault(x, []).append(i)
    const_names = {k for k, v in vals.items() if v.kind == CONST}
    outputs = {o.name for o in graph.output}
    reports: list[dict[str, Any]] = []
    for i, cond_name in sinks:
        node = graph.node[i]
        branch = _constant_branch(node, cond_name, vals, const_names)
        if branch is None:
            continue
        reached = _reaches_output(i, c, consumers, outputs, max_nodes)
        if reached is None:
            continue
        path = _path_back(graph, cond_name, vals)
        reports.append(
            {
                "selector": _describe(node),
                "constant_branch": _t(branch)[:200],
                "output": _t(reached)[:200],
                "path": path + [_describe(node), f"graph output {_t(reached)}"],
            }
        )
        if len(reports) >= MAX_REPORTS:
            break
    return reports


def _propagate(
    graph: Any, i: int, op: str, node_ins: tuple[str, ...], ins: list[_Value | None], known: list[_Value]
) -> _Value:
    if op == "Constant":
        return _Value(CONST, _const_elements_of_constant_node(graph.node[i]))
    if op in SHAPE_OPS:
        return _META
    if any(v.kind == LEARNED for v in known):
        return _LEARNED
    raw = [
        (x, v)
        for x, v in zip([x for x in node_ins if x], ins, strict=False)
        if v is not None and v.kind == RAW
    ]
    consts = [v for v in known if v.kind == CONST]
    if raw:
        src_name, src = raw[0]
        trig_in = max((v.trig for _, v in raw), default=0)
        if trig_in:
            src_name, src = next((x, v) for x, v in raw if v.trig == trig_in)
        multi = max((c.elements for c in consts), default=0) > 1
        trig = trig_in
        note: str | None = None  # None: the node's own description, made only if a path is reported
        if op in COMPARE and (multi or trig_in == 1):
            trig = 2
            if multi:
                note = (
                    f"{_describe(graph.node[i])} against a {max(c.elements for c in consts)}-element constant"
                )
        elif op in DIFF and multi and trig_in == 0:
            trig = 1
            note = f"{_describe(graph.node[i])} with a {max(c.elements for c in consts)}-element constant"
        return _Value(RAW, trig=trig, prev=(i, note, src_name))
    if known and all(v.kind == CONST for v in known) and len(known) == len([x for x in node_ins if x]):
        return _Value(CONST, max(v.elements for v in known))
    return _META


def _constant_branch(node: Any, cond_name: str, vals: dict[str, _Value], const_names: set[str]) -> str | None:
    if node.op_type == "Where":
        for x in node.input[1:3]:
            v = vals.get(x)
            if v is not None and v.kind == CONST:
                return x
        return None
    if node.op_type == "Mul":
        for x in node.input:
            v = vals.get(x)
            if x != cond_name and v is not None and v.kind == CONST:
                return x
        return None
    for a in node.attribute:  # If
        if a.name in ("then_branch", "else_branch") and _branch_is_constant(a.g, const_names):
            return a.name
    return None


def _reaches_output(
    start: int, c: _Compact, consumers: dict[str, list[int]], outputs: set[str], cap: int
) -> str | None:
    seen: set[int] = set()
    queue = deque([start])
    while queue and len(seen) < cap:
        i = queue.popleft()
        if i in seen:
            continue
        seen.add(i)
        for o in c.outs[i]:
            if o in outputs:
                return o
            queue.extend(consumers.get(o, ()))
    return None


def _path_back(graph: Any, name: str, vals: dict[str, _Value]) -> list[str]:
    path: list[str] = []
    seen: set[str] = set()
    cur: str | None = name
    while cur and cur not in seen and len(path) < MAX_PATH:
        seen.add(cur)
        v = vals.get(cur)
        if v is None or v.prev is None:
            break
        i, note, src = v.prev
        path.append(note if note is not None else _describe(graph.node[i]))
        cur = src
    return list(reversed(path))
