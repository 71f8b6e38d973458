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
# passes of constant loops over a body that copies the caller's data (messages, tools, a data loop's variable):
# the data's size is the caller's, the number of copies the template's (real templates: at most 112 passes)
MAX_DATA_LOOP = 10_000
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
        self.root = root
        self._const_targets: set[str] | None = None
        self._const_loop_ids: set[int] | None = None
        self._data_nested: set[int] | None = None
        self._macro_cost: dict[str, int] = {}
        self._in_progress: set[str] = set()
        self._reported: set[tuple[str, int | None]] = set()
        self._names: dict[str, int] = {}
        self._naming: set[str] = set()

    def _under_data_loop(self, loop: nodes.For) -> bool:
        """Whether the loop runs once per item of the caller's data (inside a loop over messages, tools ...)."""
        if self._data_nested is None:
            const = self._const_loops()
            self._data_nested = {
                id(inner)
                for outer in self.root.find_all(nodes.For)
                if id(outer) not in const
                for b in outer.body
                for inner in [b, *b.find_all(nodes.For)]
                if isinstance(inner, nodes.For)
            }
        return id(loop) in self._data_nested

    def _const_loops(self) -> set[int]:
        if self._const_loop_ids is None:
            self._const_loop_ids = {
                id(f)
                for f in self.root.find_all(nodes.For)
                if isinstance(f.iter, (nodes.List, nodes.Tuple, nodes.Const))
                or (
                    isinstance(f.iter, nodes.Call)
                    and isinstance(f.iter.node, nodes.Name)
                    and f.iter.node.name == "range"
                    and all(isinstance(a, nodes.Const) for a in f.iter.args)
                )
            }
        return self._const_loop_ids

    def _uses_data(self, loop: nodes.For) -> bool:
        """Whether the loop's body reads anything but constant-loop counters: caller data, names the template set
        (they may hold data), macro calls (macros render data)."""
        if self._const_targets is None:
            self._const_targets = {
                t.name
                for f in self.root.find_all(nodes.For)
                if isinstance(f.iter, (nodes.List, nodes.Tuple, nodes.Const))
                or (
                    isinstance(f.iter, nodes.Call)
                    and isinstance(f.iter.node, nodes.Name)
                    and f.iter.node.name == "range"
                )
                for t in [f.target, *f.target.find_all(nodes.Name)]
                if isinstance(t, nodes.Name)
            }
        callees = {
            id(c.node) for b in loop.body for c in b.find_all(nodes.Call) if isinstance(c.node, nodes.Name)
        }
        for b in loop.body:
            for n in [b, *b.find_all(nodes.Name)]:
                if (
                    not isinstance(n, nodes.Name)
                    or n.ctx != "load"
                    or n.name in ("loop", *self._const_targets)
                ):
                    continue
                if id(n) in callees and n.name not in self.macros:
                    continue  # range(), namespace(), raise_exception() ...: renderer functions
                return True
        return False

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
                elif inner > MAX_DATA_LOOP and (self._under_data_loop(node) or self._uses_data(node)):
                    self.hit(
                        f"loops of up to {_fmt(inner)} iterations built from constants, each copying the "
                        "caller's data (messages, tools ...)",
                        node,
                    )
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


# ---------------------------------------------------------------- accumulators rebuilt from themselves

# nodes through which a referenced value's whole size reaches the result (anything else, a test, a comparison, a
# lookup or |length, yields something small)
_CARRIES = (
    nodes.Concat,
    nodes.Add,
    nodes.Mul,
    nodes.Mod,
    nodes.List,
    nodes.Tuple,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Call,
    nodes.Pos,
    nodes.Neg,
    nodes.Output,
    nodes.Pair,
    nodes.Dict,
    nodes.Keyword,
    nodes.Getattr,  # ns.s.upper(), ns.d.part: a copy of (part of) the value
    nodes.Getitem,  # ns.s[:], ns.l[0]
    nodes.Slice,
)
_SMALL_FILTERS = frozenset({"length", "count", "int", "float", "abs", "round", "first", "last", "bool"})
MAX_GROWTH_SITES = 20_000  # assignments in loops and macros followed (real templates: under 200)
MAX_GROWTH_STEPS = 16  # a constant loop may double an accumulator this many times (65,536x) and stay bounded


_Key = tuple[str, str, str]  # ("ns", namespace, attribute) or ("local", name, "")


class _Keys:
    """Which value an expression names: a namespace attribute (through any alias of the namespace) or a name."""

    def __init__(self, root: nodes.Template) -> None:
        self.canon: dict[str, str] = {}
        assigns = [
            n for n in root.find_all(nodes.Assign) if isinstance(n.target, nodes.Name) and n.node is not None
        ]
        for n in assigns:
            v = n.node
            if isinstance(v, nodes.Call) and isinstance(v.node, nodes.Name) and v.node.name == "namespace":
                self.canon[n.target.name] = n.target.name  # type: ignore[attr-defined]
        for _ in range(8):  # {% set alias = ns %}: the same object by another name
            grew = False
            for n in assigns:
                v = n.node
                name = n.target.name  # type: ignore[attr-defined]
                if isinstance(v, nodes.Name) and v.name in self.canon and name not in self.canon:
                    self.canon[name] = self.canon[v.name]
                    grew = True
            if not grew:
                break
        self.locals: set[str] = set()
        self.ns_attrs: set[_Key] = set()  # namespace attributes assigned in loops or macros

    def key(self, node: nodes.Node) -> _Key | None:
        if isinstance(node, nodes.NSRef):
            return ("ns", self.canon.get(node.name, node.name), node.attr)
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            key = ("ns", self.canon.get(node.node.name, node.node.name), node.attr)
            if key not in self.ns_attrs and node.node.name in self.locals:
                return ("local", node.node.name, "")  # an attribute of a value built in the loop: part of it
            return key
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in self.locals:
            return ("local", node.name, "")
        return None


def _self_refs(expr: nodes.Node, keys: _Keys, accumulators: set[_Key], depth: int = 0) -> int:
    """How many whole copies of ``accumulators`` values ``expr`` builds its value from."""
    if depth > _DEPTH:
        return 2  # too deep to follow: assume the worst
    key = keys.key(expr)
    if key is not None and key in accumulators:
        return 1
    if not isinstance(expr, _CARRIES):
        return 0
    if isinstance(expr, nodes.CondExpr):  # one branch or the other, never both
        other = _self_refs(expr.expr2, keys, accumulators, depth + 1) if expr.expr2 is not None else 0
        return max(_self_refs(expr.expr1, keys, accumulators, depth + 1), other)
    if isinstance(expr, nodes.Filter) and expr.name in _SMALL_FILTERS:
        return 0
    total = 0
    for child in expr.iter_child_nodes():
        total += _self_refs(child, keys, accumulators, depth + 1)
    if isinstance(expr, nodes.Mul) and total:  # ns.s * 2: as many copies as the other side says
        factors = [expr.left, expr.right]
        if not any(isinstance(f, nodes.Const) and isinstance(f.value, int) and f.value <= 1 for f in factors):
            total = max(total, 2)
    if total and _replace_grows(expr):
        total = max(total, 2)  # each occurrence becomes something longer (data, or a longer constant)
    return total


def _replace_grows(expr: nodes.Node) -> bool:
    """``x|replace(old, new)`` / ``x.replace(old, new)`` whose replacement can be longer than what it replaces."""
    if isinstance(expr, nodes.Filter) and expr.name == "replace":
        args = list(expr.args)
    elif (
        isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Getattr) and expr.node.attr == "replace"
    ):
        args = list(expr.args)
    else:
        return False
    if len(args) < 2:
        return True  # keyword or unpacked arguments: not followed
    old, new = args[0], args[1]
    if isinstance(old, nodes.Const) and isinstance(new, nodes.Const):
        return not (
            isinstance(old.value, str) and isinstance(new.value, str) and len(new.value) <= len(old.value)
        )
    return True


def _ref_keys(expr: nodes.Node, keys: _Keys, accumulators: set[_Key]) -> set[_Key]:
    """The accumulators whose whole value ``expr`` carries."""
    out: set[_Key] = set()
    stack: list[tuple[nodes.Node, int]] = [(expr, 0)]
    while stack:
        node, depth = stack.pop()
        key = keys.key(node)
        if key is not None and key in accumulators:
            out.add(key)
            continue
        if depth > _DEPTH or not isinstance(node, _CARRIES):
            continue
        if isinstance(node, nodes.Filter) and node.name in _SMALL_FILTERS:
            continue
        if isinstance(node, nodes.CondExpr):
            stack.extend((c, depth + 1) for c in (node.expr1, node.expr2) if c is not None)
            continue
        stack.extend((c, depth + 1) for c in node.iter_child_nodes())
    return out


def _cycles(deps: dict[_Key, set[_Key]]) -> dict[_Key, set[_Key]]:
    """Each accumulator's strongly connected group: the accumulators it is built from that are built from it
    (Tarjan's algorithm, iterative: linear in the accumulators and their references)."""
    index: dict[_Key, int] = {}
    low: dict[_Key, int] = {}
    on_stack: set[_Key] = set()
    stack: list[_Key] = []
    out: dict[_Key, set[_Key]] = {}
    counter = 0
    for root in deps:
        if root in index:
            continue
        work: list[tuple[_Key, list[_Key]]] = [(root, sorted(deps.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(deps.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: set[_Key] = set()
                while True:
                    k = stack.pop()
                    on_stack.discard(k)
                    comp.add(k)
                    if k == node:
                        break
                for k in comp:
                    out[k] = comp
    return out


def _constant_iterations(loop: nodes.For, cost: _Cost) -> int | None:
    """Iterations of a loop over constants (range(N), a literal list); None when it walks the caller's data."""
    it = loop.iter
    if isinstance(it, (nodes.List, nodes.Tuple)):
        return len(it.items)
    if isinstance(it, nodes.Const) and isinstance(it.value, (str, list, tuple)):
        return len(it.value)
    if (
        isinstance(it, nodes.Call)
        and isinstance(it.node, nodes.Name)
        and it.node.name == "range"
        and all(isinstance(a, nodes.Const) for a in it.args)
    ):
        return cost.size(it)
    return None


def growth_hits(root: nodes.Template, cost: _Cost) -> list[CostHit]:
    """``{% set ns.s = ns.s ~ ns.s %}`` in a loop: a namespace attribute (the one assignment that outlives a loop
    iteration) rebuilt from two or more copies of itself doubles every pass, 2**N characters after N passes:
    range(40), or a 40-message conversation, exhausts any host. The copies may go through other accumulators or
    local names ({% set x = ns.s ~ ns.s %}{% set ns.s = x %}, {% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}) and
    aliases of the namespace. Real templates append to an accumulator (ns.s = ns.s ~ message), never multiply it."""
    keys = _Keys(root)
    hits: list[CostHit] = []
    # (target, value expressions, enclosing loops, in a macro) of every assignment inside a loop or a macro body
    sites: list[tuple[_Key, list[nodes.Node], list[nodes.For], bool, int]] = []
    stack: list[tuple[nodes.Node, list[nodes.For], bool]] = [(n, [], False) for n in reversed(root.body)]
    while stack and len(sites) < MAX_GROWTH_SITES:
        node, loops, in_macro = stack.pop()
        inside = bool(loops) or in_macro
        if inside and isinstance(node, (nodes.Assign, nodes.AssignBlock)):
            t = node.target
            key: _Key | None = None
            if isinstance(t, nodes.NSRef):
                key = keys.key(t)
            elif isinstance(t, nodes.Name):
                key = ("local", t.name, "")
                keys.locals.add(t.name)
            if key is not None:
                values: list[nodes.Node] = (
                    [node.node]
                    if isinstance(node, nodes.Assign)
                    else list(nodes.Template(node.body).find_all(nodes.Output))
                )
                sites.append((key, values, loops, in_macro, node.lineno))
        if inside and isinstance(node, nodes.With):
            for t, v in zip(node.targets, node.values, strict=False):
                if isinstance(t, nodes.Name):
                    keys.locals.add(t.name)
                    sites.append((("local", t.name, ""), [v], loops, in_macro, node.lineno))
        if isinstance(node, nodes.For):
            inner = [*loops, node]
            stack.extend((c, inner, in_macro) for c in reversed(node.body))
            stack.extend((c, loops, in_macro) for c in reversed(node.else_))
            continue
        if isinstance(node, nodes.Macro):
            stack.extend((c, loops, True) for c in reversed(node.body))
            continue
        stack.extend((c, loops, in_macro) for c in node.iter_child_nodes())
    if stack:  # fail closed: assignments past the cap could close a doubling cycle
        hits.append(
            CostHit(f"more than {MAX_GROWTH_SITES} assignments in loops; their growth not bounded", None)
        )
    accumulators = {k for k, _, _, _, _ in sites}
    keys.ns_attrs = {k for k in accumulators if k[0] == "ns"}
    # growth needs a cycle: ns.s built from ns.s (or from ns.t built from ns.s) twice per pass; an accumulator
    # appending another that never reads it back (ns.out ~ ns.role) grows linearly
    deps: dict[_Key, set[_Key]] = {}
    for key, values, _, _, _ in sites:
        deps.setdefault(key, set())
        for val in values:
            deps.setdefault(key, set()).update(_ref_keys(val, keys, accumulators))
    group = _cycles(deps)
    for key, values, loops, in_macro, line in sites:
        if not any(k[0] == "ns" for k in group[key]):
            continue  # only namespace attributes outlive an iteration: a local name starts over each pass
        refs = sum(_self_refs(val, keys, group[key]) for val in values)
        if refs < 2:
            continue
        counts = [_constant_iterations(lp, cost) for lp in loops]
        bounded = not in_macro and all(c is not None for c in counts)
        steps = math.prod(c for c in counts if c is not None) if bounded else None
        if steps is not None and (steps <= 1 or steps * math.log2(refs) <= MAX_GROWTH_STEPS):
            continue
        target = f"{key[1]}.{key[2]}" if key[0] == "ns" else key[1]
        why = (
            f"{_fmt(steps)} passes"
            if steps is not None
            else "every pass over the caller's data or macro call"
        )
        if len(hits) < 20:
            hits.append(
                CostHit(
                    f"{target} is rebuilt from {refs} copies of loop accumulators on {why}: it doubles each time",
                    line,
                )
            )
    return hits


def cost_hits(root: nodes.Template) -> list[CostHit]:
    """What in the template can grow past the limits from its own constants; empty for real chat templates."""
    from .template_recursion import recursion_hits

    c = _Cost(root)
    c.walk(root.body, 1)
    for name in sorted(c.macros):  # macros never called are still compiled, and may be called by name later
        c.walk(c.macros[name].body, 1)
    # recursion is costed as one call above: it is judged here instead (it must walk the caller's data)
    c.hits.extend(CostHit(h.detail, h.line) for h in recursion_hits(root))
    c.hits.extend(growth_hits(root, c))
    return c.hits
