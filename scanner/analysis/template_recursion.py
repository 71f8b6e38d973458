"""Recursion and loop nesting in a Jinja chat template, judged from the AST alone (never rendered).

The renderer's sandbox bounds neither work nor depth. A macro that calls itself on the same value
(``{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}``), on a counter (``f(n - 1)`` twice: 2**n calls), through
another macro, through ``caller()`` of a ``{% call %}`` block, through a macro passed around as a value, or a
``{% for ... recursive %}`` loop calling ``loop(...)`` on the same items, runs until the host gives up (CPython
stops at its recursion limit only after an exponential number of calls; C++ renderers overflow the stack).

Real chat templates do recurse, always on their data: a JSON schema rendered by walking ``spec.items``,
``value|dictsort`` or the elements of a list once they know it is not a string. Data the caller passes is a
finite tree, so recursion that steps into a strict part of it ends. A cycle of calls is therefore accepted
only when every cycle passes a *descending* call: one argument is a strict part of the caller's parameters.
Strict parts are ``p.attr``, ``p['key']``, ``p|items``, ``p|dictsort``, ``p.items()``/``values()``/``keys()``,
the loop variables of a ``for`` over one of those, or over ``p`` itself inside a branch that excluded strings
(a one-character string is its own only element), and names bound only to such values. Anything else
(the parameter itself, arithmetic, a constant, a namespace attribute when namespaces can refer to each other,
a filter that turns an undefined value into ``''`` or ``[]``) is not a descent (``template_descent`` has the
shapes). Known gaps, accepted because real templates rely on them: a new mapping wrapping a strict part
(``f({"type": t})``, Hermes-style) counts as descending, and so does a name bound to a strict part in one branch
and to a constant in another (``set extra = {'type': 'any'}`` ... ``set extra = schema.additionalProperties``).

Loops nested deeper than ``MAX_LOOP_NESTING`` (lexically and through macro calls) are reported as well:
measured real templates nest at most 5 deep, and every extra level multiplies the work by the data's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import nodes

from .template_descent import Scope, Unit, children, collect_own, targets, walk_nodes

MAX_LOOP_NESTING = 8
MAX_UNITS = 200  # macros (real chat templates define fewer than 30); more is a finding, not analysed
MAX_CALL_ROUNDS = 8  # rounds adding caller() edges until the call graph stops growing
_GLOBAL_CALLS = frozenset(
    {"range", "namespace", "dict", "lipsum", "cycler", "joiner", "raise_exception", "strftime_now", "loop"}
)


@dataclass
class Hit:
    detail: str
    line: int | None


@dataclass
class _Edge:
    src: str
    dst: str
    node: nodes.Node
    descends: bool


class _TooBig(Exception):
    pass


class _Graph:
    def __init__(self, root: nodes.Template) -> None:
        self.units: dict[str, Unit] = {}
        top = Unit("<template>", set(), list(root.body))
        collect_own(top, root.body, None)
        self.units[top.name] = top
        for m in (n for n in top.own if isinstance(n, nodes.Macro)):
            self._add_macro(m)
        self.macros = {name for name in self.units if name != "<template>"}
        if len(self.macros) > MAX_UNITS:
            raise _TooBig(f"more than {MAX_UNITS} macros")
        self.namespaces = {
            t
            for u in self.units.values()
            for n in u.own
            if isinstance(n, nodes.Assign) and _is_namespace_call(n.node)
            for t in targets(n.target)
        }
        self.cyclic = self._namespaces_can_cycle()
        self.edges: list[_Edge] = []
        self._direct_edges()

    def _add_macro(self, m: nodes.Macro) -> None:
        unit = Unit(m.name, {a.name for a in m.args} | {"varargs", "kwargs"}, list(m.body))
        collect_own(unit, m.body, m)
        for d in m.defaults:
            collect_own(unit, [d], m)
        self.units[m.name] = unit  # a later definition of the same name replaces the earlier, as in Jinja
        if len(self.units) > MAX_UNITS + 1:
            raise _TooBig(f"more than {MAX_UNITS} macros")
        for inner in (n for n in unit.own if isinstance(n, nodes.Macro)):
            self._add_macro(inner)

    def _namespaces_can_cycle(self) -> bool:
        """Whether a namespace may be stored in a namespace (``set ns.a = ns``): attributes may then loop."""
        for u in self.units.values():
            for n in u.own:
                if isinstance(n, nodes.Assign) and isinstance(n.target, nodes.NSRef):
                    if self._may_be_namespace(n.node, u):
                        return True
        return False

    def _may_be_namespace(self, e: nodes.Node, u: Unit) -> bool:
        if isinstance(e, nodes.Name):
            return e.name in self.namespaces or e.name in u.params
        if isinstance(e, (nodes.Or, nodes.And)):
            return self._may_be_namespace(e.left, u) or self._may_be_namespace(e.right, u)
        if isinstance(e, nodes.CondExpr):
            return self._may_be_namespace(e.expr1, u) or (
                e.expr2 is not None and self._may_be_namespace(e.expr2, u)
            )
        if isinstance(e, nodes.Filter) and e.node is not None:
            return self._may_be_namespace(e.node, u) or any(self._may_be_namespace(a, u) for a in e.args)
        return _is_namespace_call(e)

    def _direct_edges(self) -> None:
        escaped: set[str] = set()
        indirect: set[str] = set()
        callees: set[int] = set()
        for u in self.units.values():
            for n in u.own:
                if isinstance(n, nodes.Call) and isinstance(n.node, nodes.Name):
                    callees.add(id(n.node))
        for u in self.units.values():
            for n in u.own:
                if isinstance(n, nodes.Name) and n.ctx == "load" and n.name in self.macros:
                    if id(n) not in callees:
                        escaped.add(n.name)
        for u in self.units.values():
            scope = Scope(u, self.namespaces, self.cyclic)
            for n in u.own:
                if not isinstance(n, nodes.Call):
                    continue
                callee = n.node.name if isinstance(n.node, nodes.Name) else None
                if callee is not None and callee in self.macros:
                    args = [*n.args, *(k.value for k in n.kwargs)]
                    if n.dyn_args is not None or n.dyn_kwargs is not None:
                        args = []  # *args/**kwargs: what reaches the parameters is unknown
                    down = any(scope.descends(n, a) for a in args)
                    self.edges.append(_Edge(u.name, callee, n, down))
                elif (
                    callee not in _GLOBAL_CALLS and callee != "caller" and escaped and u.name not in indirect
                ):
                    # a call through a variable may reach any macro used as a value
                    indirect.add(u.name)
                    self.edges.extend(_Edge(u.name, m, n, False) for m in sorted(escaped))

    def add_caller_edges(self) -> None:
        """``caller()`` in macro M runs the body of a ``{% call %}`` block that (transitively) called M."""
        blocks = [(u, n) for u in self.units.values() for n in u.own if isinstance(n, nodes.CallBlock)]
        users = {
            u.name
            for u in self.units.values()
            for n in u.own
            if isinstance(n, nodes.Call) and isinstance(n.node, nodes.Name) and n.node.name == "caller"
        }
        if not blocks or not users:
            return
        seen = {(e.src, e.dst, id(e.node)) for e in self.edges}
        for _ in range(MAX_CALL_ROUNDS):
            grew = False
            reach = self._reach()
            for _owner, cb in blocks:
                target = cb.call.node.name if isinstance(cb.call.node, nodes.Name) else ""
                if target not in self.macros:
                    continue
                called = [
                    (c, c.node.name)
                    for c in walk_nodes(nodes.Output(list(cb.body)))
                    if isinstance(c, nodes.Call)
                    and isinstance(c.node, nodes.Name)
                    and c.node.name in self.macros
                ]
                for m in users:
                    if m == target or m in reach.get(target, set()):
                        for c, name in called:
                            key = (m, name, id(c))
                            if key not in seen:
                                seen.add(key)
                                self.edges.append(_Edge(m, name, c, False))
                                grew = True
            if not grew:
                return

    def _reach(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        succ: dict[str, set[str]] = {}
        for e in self.edges:
            succ.setdefault(e.src, set()).add(e.dst)
        for start in self.units:
            seen: set[str] = set()
            stack = list(succ.get(start, ()))
            while stack:
                x = stack.pop()
                if x not in seen:
                    seen.add(x)
                    stack.extend(succ.get(x, ()))
            out[start] = seen
        return out


def _is_namespace_call(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "namespace"
    )


def _undescending_cycle(edges: list[_Edge]) -> _Edge | None:
    """An edge on a cycle made only of non-descending calls, if any (such a cycle can repeat forever)."""
    weak = [e for e in edges if not e.descends]
    for e in weak:
        if e.src == e.dst:
            return e
    comp = _components({(e.src, e.dst) for e in weak})
    for e in weak:
        if comp.get(e.src) is not None and comp.get(e.src) == comp.get(e.dst):
            return e
    return None


def _components(pairs: set[tuple[str, str]]) -> dict[str, int]:
    """Strongly connected components (Tarjan, iterative): node -> component number."""
    succ: dict[str, list[str]] = {}
    for a, b in sorted(pairs):
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in succ:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            nxt = succ[v]
            if i < len(nxt):
                work.append((v, i + 1))
                w = nxt[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp[w] = index[v]
                    if w == v:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comp


def _recursive_loops(g: _Graph) -> Iterator[Hit]:
    """``{% for x in items recursive %}``: each ``loop(...)`` must descend from the loop's own variables."""
    for u in g.units.values():
        for n in u.own:
            if not (isinstance(n, nodes.For) and n.recursive):
                continue
            inner = Unit(f"loop@{n.lineno}", set(targets(n.target)), list(n.body))
            collect_own(inner, n.body, n)
            scope = Scope(inner, g.namespaces, g.cyclic)
            nested = {
                id(x) for f in inner.own if isinstance(f, nodes.For) for x in walk_nodes(f) if x is not f
            }
            for c in inner.own:
                if (
                    isinstance(c, nodes.Call)
                    and isinstance(c.node, nodes.Name)
                    and c.node.name == "loop"
                    and id(c) not in nested
                    and not any(scope.descends(c, a) for a in c.args)
                ):
                    yield Hit(
                        "a recursive for loop calls loop(...) on values that are not a part of its items: "
                        "unbounded recursion",
                        c.lineno,
                    )
                    break


def _nesting(g: _Graph) -> Iterator[Hit]:
    """Loops nested deeper than MAX_LOOP_NESTING, counting the loops of the macros called inside them."""
    memo: dict[str, int] = {}
    busy: set[str] = set()
    calls: dict[int, list[str]] = {}
    for e in g.edges:
        calls.setdefault(id(e.node), []).append(e.dst)

    def depth_of(body: list[nodes.Node], d: int, where: list[int | None]) -> int:
        best = d
        stack: list[tuple[nodes.Node, int]] = [(n, d) for n in body]
        while stack:
            node, k = stack.pop()
            if isinstance(node, nodes.Macro):
                continue
            if isinstance(node, nodes.For):
                k += 1
                if k > best:
                    best, where[0] = k, node.lineno
            for m in calls.get(id(node), ()):
                total = k + macro_depth(m)
                if total > best:
                    best, where[0] = total, node.lineno
            stack.extend((c, k) for _f, c in children(node))
        return best

    def macro_depth(name: str) -> int:
        if name in memo:
            return memo[name]
        if name in busy:
            return 0  # recursion is judged on its own
        busy.add(name)
        memo[name] = depth_of(g.units[name].body, 0, [None])
        busy.discard(name)
        return memo[name]

    where: list[int | None] = [None]
    top = g.units["<template>"]
    deepest = depth_of(top.body, 0, where)
    if deepest > MAX_LOOP_NESTING:
        yield Hit(f"loops nested {deepest} deep (real chat templates nest at most 5)", where[0])


def recursion_hits(root: nodes.Template) -> list[Hit]:
    """Recursion the template's own values can drive without bound, and loops nested too deep."""
    try:
        g = _Graph(root)
        g.add_caller_edges()
        hits = _judge(g)
    except _TooBig as exc:
        return [Hit(f"{exc}: recursion between them not analysed", None)]
    except RecursionError:
        return [Hit("expressions nest too deeply to judge the template's recursion", None)]
    return hits


def _judge(g: _Graph) -> list[Hit]:
    hits: list[Hit] = []
    bad = _undescending_cycle(g.edges)
    if bad is not None:
        how = "itself" if bad.src == bad.dst else f"{bad.dst!r}, which leads back to it,"
        hits.append(
            Hit(
                f"macro {bad.src!r} calls {how} with no argument that is a part of its parameters: "
                f"recursion that does not walk the data can repeat without bound",
                getattr(bad.node, "lineno", None),
            )
        )
    hits.extend(_recursive_loops(g))
    hits.extend(_nesting(g))
    return hits


__all__ = ["MAX_LOOP_NESTING", "Hit", "recursion_hits"]
