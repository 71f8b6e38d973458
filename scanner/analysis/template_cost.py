"""Static size bounds of a Jinja chat template: constants an attacker multiplies into a denial of service.

A chat template runs in the renderer's sandbox, but the sandbox bounds neither work nor memory: ``'a' * 10**9``,
``'%999999999s' % x``, ``[1] | batch(10**9, 'x')`` or three nested ``range(99999)`` loops exhaust the host, and
Jinja's optimizer folds constant arithmetic (``9 ** 9 ** 9``) while *compiling* the template, before any render.
The data the caller passes in (messages, tools) is bounded by the caller; what the template's own constants can
multiply to is not. This pass estimates, without rendering, how large each value and loop can get from the
template's constants alone (data counts as 1) and reports what exceeds limits no real chat template approaches
(the measured corpus stays below 20,000 everywhere).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from jinja2 import nodes

BIG = 10**18  # "unbounded"; keeps the arithmetic in plain ints
MAX_VALUE = 1_000_000  # one string/list/number built from constants
MAX_LOOP = 1_000_000  # iterations of nested loops (and macro calls inside them)
MAX_WORK = 50_000_000  # iterations x size of what each iteration builds
MAX_POW_EXPONENT = 64
_PCT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_FMT_SPEC = re.compile(r"\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")
_DEPTH = 40


@dataclass
class CostHit:
    detail: str
    line: int | None


def _cap(v: int) -> int:
    return min(max(v, 0), BIG)


def _widths(fmt: str) -> int:
    """The largest field width or precision a %-format or str.format string asks for (a '*' is unbounded)."""
    out = 0
    for m in _PCT_SPEC.finditer(fmt):
        for g in m.groups():
            if g == "*":
                return BIG
            if g:
                out = max(out, int(g[:19]))
    for m in _FMT_SPEC.finditer(fmt):
        out = max(out, int(m.group(1)[:19]))
    return out


class _Cost:
    def __init__(self, root: nodes.Template) -> None:
        self.hits: list[CostHit] = []
        self.sets: dict[str, list[nodes.Node]] = {}
        for n in root.find_all((nodes.Assign, nodes.With)):
            if isinstance(n, nodes.Assign) and isinstance(n.target, nodes.Name):
                self.sets.setdefault(n.target.name, []).append(n.node)
            elif isinstance(n, nodes.With):
                for t, v in zip(n.targets, n.values, strict=False):
                    if isinstance(t, nodes.Name):
                        self.sets.setdefault(t.name, []).append(v)
        self.macros = {m.name: m for m in root.find_all(nodes.Macro)}
        self._macro_cost: dict[str, int] = {}
        self._in_progress: set[str] = set()
        self._reported: set[tuple[str, int | None]] = set()
        self._names: dict[str, int] = {}
        self._naming: set[str] = set()

    def hit(self, detail: str, node: nodes.Node) -> None:
        key = (detail.split(" ")[0], getattr(node, "lineno", None))
        if key not in self._reported and len(self.hits) < 20:
            self._reported.add(key)
            self.hits.append(CostHit(detail, getattr(node, "lineno", None)))

    # ---------------------------------------------------------------- how big a value can get from constants

    def size(self, node: nodes.Node | None, depth: int = 0) -> int:
        if node is None or depth > _DEPTH:
            return 1
        d = depth + 1
        if isinstance(node, nodes.Const):
            v = node.value
            if isinstance(v, bool) or v is None:
                return 1
            if isinstance(v, int):
                return _cap(abs(v))
            if isinstance(v, float):
                return _cap(int(min(abs(v), BIG))) if math.isfinite(v) else BIG
            if isinstance(v, (str, bytes)):
                return max(1, len(v))
            return 1
        if isinstance(node, (nodes.List, nodes.Tuple)):
            return _cap(max(1, len(node.items)) * max([1, *(self.size(i, d) for i in node.items[:64])]))
        if isinstance(node, nodes.Dict):
            return max(1, len(node.items))
        if isinstance(node, nodes.Mul):
            return _cap(self.size(node.left, d) * self.size(node.right, d))
        if isinstance(node, nodes.Pow):
            base, exp = self.size(node.left, d), self.size(node.right, d)
            if base <= 1:
                return 1
            if exp > MAX_POW_EXPONENT or exp * math.log2(base) > 60:
                return BIG
            return _cap(base**exp)
        if isinstance(node, (nodes.Add, nodes.Concat)):
            parts = [node.left, node.right] if isinstance(node, nodes.Add) else node.nodes
            return _cap(sum(self.size(p, d) for p in parts[:64]))
        if isinstance(node, (nodes.Sub, nodes.Div, nodes.FloorDiv)):
            return self.size(node.left, d)
        if isinstance(node, nodes.Mod):
            left = node.left
            fmt = left.value if isinstance(left, nodes.Const) and isinstance(left.value, str) else None
            w = _widths(fmt) if fmt is not None else 0
            return _cap(self.size(left, d) + w + self.size(node.right, d))
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            return self.size(node.node, d)
        if isinstance(node, nodes.CondExpr):
            return max(self.size(node.expr1, d), self.size(node.expr2, d))
        if isinstance(node, nodes.Name):
            return self._name_size(node.name, d)
        if isinstance(node, nodes.Filter):
            return self._filter_size(node, d)
        if isinstance(node, nodes.Call):
            fn = node.node
            args = [*node.args, *(k.value for k in node.kwargs)]
            if isinstance(fn, nodes.Name) and fn.name == "range":
                return max([1, *(self.size(a, d) for a in args)])
            if isinstance(fn, nodes.Getattr) and fn.attr == "format":
                recv = fn.node
                fmt = recv.value if isinstance(recv, nodes.Const) and isinstance(recv.value, str) else None
                w = _widths(fmt) if fmt is not None else 0
                return _cap(self.size(recv, d) + w + sum(self.size(a, d) for a in args[:16]))
            if isinstance(fn, nodes.Getattr) and fn.attr == "replace":  # each occurrence becomes 'new'
                return _cap(self.size(fn.node, d) * max([1, *(self.size(a, d) for a in args[1:2])]))
            if isinstance(fn, nodes.Getattr) and fn.attr == "join":  # the separator between the items
                return _cap(self.size(fn.node, d) * max([1, *(self.size(a, d) for a in args[:1])]))
            if isinstance(fn, nodes.Getattr) and fn.attr in ("center", "ljust", "rjust", "zfill"):
                return max([self.size(fn.node, d), *(self.size(a, d) for a in args[:1])])
            return 1
        return 1  # attribute and item lookups, tests, comparisons: data or booleans

    def _name_size(self, name: str, d: int) -> int:
        """The largest value {% set %} binds to the name; data, loop variables and macro parameters count 1."""
        if name not in self.sets or name in self._naming:
            return 1  # a set that refers to its own name (x = x.replace(...)) is not a multiplier of itself
        if name not in self._names:
            self._naming.add(name)
            self._names[name] = max(self.size(v, d) for v in self.sets[name][:16])
            self._naming.discard(name)
        return self._names[name]

    def _filter_size(self, node: nodes.Filter, d: int) -> int:
        src = self.size(node.node, d)
        args = [*node.args, *(k.value for k in node.kwargs)]
        name = node.name
        if name == "indent":  # every line gets the width
            return _cap(src * max([1, *(self.size(a, d) for a in args[:1])]))
        if name in ("center", "batch", "slice"):  # padded to the width; that many (filled) groups
            return _cap(max(src, max([1, *(self.size(a, d) for a in args[:1])])))
        if name == "replace":  # each occurrence of the first argument becomes the second
            return _cap(src * max([1, *(self.size(a, d) for a in args[1:2])]))
        if name == "join":
            return _cap(src * max([1, *(self.size(a, d) for a in args[:1])]))
        if name == "format":
            fmt = node.node.value if isinstance(node.node, nodes.Const) else None
            w = _widths(fmt) if isinstance(fmt, str) else 0
            return _cap(src + w + sum(self.size(a, d) for a in args[:16]))
        if name == "tojson":
            return _cap(src * max([1, *(self.size(a, d) for a in args[:1])]))
        return src

    # ---------------------------------------------------------------- loops, macro calls, and what they build

    def macro_cost(self, name: str) -> int:
        if name in self._macro_cost:
            return self._macro_cost[name]
        if name in self._in_progress:
            return 1  # recursion: judged by template_recursion (it must walk the caller's data)
        self._in_progress.add(name)
        cost = self.walk(self.macros[name].body, 1)
        self._in_progress.discard(name)
        self._macro_cost[name] = cost
        return cost

    def walk(self, body: list[nodes.Node], loops: int) -> int:
        """Walk statements under ``loops`` iterations; returns the largest iteration count reached inside."""
        worst = loops
        stack: list[tuple[nodes.Node, int]] = [(n, loops) for n in reversed(body)]
        while stack:
            node, p = stack.pop()
            if isinstance(node, nodes.Macro):
                continue  # judged at its call sites (and once on its own)
            if isinstance(node, nodes.For):
                n = self.size(node.iter)
                inner = _cap(p * n)
                if inner > MAX_LOOP:
                    self.hit(f"loops of up to {_fmt(inner)} iterations built from constants", node)
                worst = max(worst, inner)
                stack.extend((c, inner) for c in reversed(node.body))
                stack.extend((c, p) for c in reversed(node.else_))
                for c in (node.iter, node.test):
                    if c is not None:
                        stack.append((c, p))
                continue
            if (
                isinstance(node, nodes.Name) and node.ctx == "load" and p > 1
            ):  # a big {% set %} value output per pass
                s = self.size(node)
                if _cap(s * p) > MAX_WORK:
                    self.hit(f"{_fmt(p)} loop iterations each using {_fmt(s)} characters/items", node)
            if isinstance(node, (nodes.Mul, nodes.Mod, nodes.Filter, nodes.Call, nodes.Pow)):
                s = self.size(node)
                if s > MAX_VALUE and isinstance(node, nodes.Pow):
                    self.hit(
                        f"a power of up to {_fmt(s)} (Jinja folds constant powers while compiling)", node
                    )
                elif s > MAX_VALUE:
                    self.hit(f"a value of up to {_fmt(s)} characters/items built from constants", node)
                elif _cap(s * p) > MAX_WORK:
                    self.hit(f"{_fmt(p)} loop iterations each building {_fmt(s)} characters/items", node)
            if (
                isinstance(node, nodes.Call)
                and isinstance(node.node, nodes.Name)
                and node.node.name in self.macros
            ):
                inner = _cap(p * self.macro_cost(node.node.name))
                if inner > MAX_LOOP:
                    self.hit(f"macro {node.node.name!r} called in loops: {_fmt(inner)} iterations", node)
                worst = max(worst, inner)
            stack.extend((c, p) for c in node.iter_child_nodes())
        return worst


def _fmt(v: int) -> str:
    return "unbounded" if v >= BIG else f"{v:,}"


def cost_hits(root: nodes.Template) -> list[CostHit]:
    """What in the template can grow past the limits from its own constants; empty for real chat templates."""
    from .template_recursion import recursion_hits

    c = _Cost(root)
    c.walk(root.body, 1)
    for name in sorted(c.macros):  # macros never called are still compiled, and may be called by name later
        c.walk(c.macros[name].body, 1)
    # recursion is costed as one call above: it is judged here instead (it must walk the caller's data)
    c.hits.extend(CostHit(h.detail, h.line) for h in recursion_hits(root))
    return c.hits
