"""Which arguments of a call inside a chat-template macro are strict parts of the macro's parameters.

Used by ``template_recursion``: a call cycle ends when every cycle hands some callee a strict part of the data
it was given (the caller's data is a finite tree). The rules are in that module's notes; this module knows the
shapes: attribute and string-key lookups, ``|items``/``|dictsort``, ``.items()``/``.values()``/``.keys()``,
``.get(k)``, loop variables, names bound only to parts, and the if-branches that exclude strings or empty values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from jinja2 import nodes

_STRICT_FILTERS = frozenset({"items", "dictsort"})  # raise on anything but a mapping: never a fixpoint
# a part of a part stays a strict part (and an undefined value stays undefined: the next lookup fails)
_PART_FILTERS = frozenset({"first", "last"})
_PART_METHODS = frozenset({"items", "values", "keys"})


_Pred = Callable[[nodes.Node, str], bool]


@dataclass
class Unit:
    """A macro (or a recursive for loop): its parameters and the nodes it runs itself (not nested macros)."""

    name: str
    params: set[str]
    body: list[nodes.Node] = field(default_factory=list)
    own: list[nodes.Node] = field(default_factory=list)
    parent: dict[int, tuple[nodes.Node, str]] = field(default_factory=dict)


def children(node: nodes.Node) -> Iterator[tuple[str, nodes.Node]]:
    """(field name, child) for every child node, in field order."""
    for name in node.fields:
        value = getattr(node, name, None)
        if isinstance(value, nodes.Node):
            yield name, value
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, nodes.Node):
                    yield name, v


def collect_own(unit: Unit, body: list[nodes.Node], host: nodes.Node | None) -> None:
    """Collect the nodes ``unit`` runs itself, with their parents; nested macros are units of their own."""
    stack: list[tuple[nodes.Node, nodes.Node | None, str]] = [(n, host, "body") for n in body]
    while stack:
        node, parent, where = stack.pop()
        if parent is not None:
            unit.parent[id(node)] = (parent, where)
        unit.own.append(node)
        if isinstance(node, nodes.Macro):
            continue
        stack.extend((c, node, f) for f, c in children(node))


def root_name(expr: nodes.Node | None) -> str:
    """The variable an attribute/item/filter chain starts from ('' when it starts elsewhere)."""
    while isinstance(expr, (nodes.Getattr, nodes.Getitem, nodes.Filter)):
        expr = expr.node
    if isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Getattr):
        return root_name(expr.node.node)
    return expr.name if isinstance(expr, nodes.Name) else ""


def _parts(test: nodes.Node | None, kind: type[nodes.Node]) -> list[nodes.Node]:
    """Operands of a chain of ``and`` (kind And) or ``or`` (kind Or), the test itself when it is neither."""
    if test is None:
        return []
    if isinstance(test, kind):
        return [*_parts(test.left, kind), *_parts(test.right, kind)]  # type: ignore[attr-defined]
    return [test]


def _is_test(node: nodes.Node, name: str, tests: tuple[str, ...]) -> bool:
    return (
        isinstance(node, nodes.Test)
        and node.name in tests
        and isinstance(node.node, nodes.Name)
        and node.node.name == name
    )


def _is_empty_literal(e: nodes.Node) -> bool:
    if isinstance(e, nodes.Const):
        return e.value in (None, "", 0, False)
    return isinstance(e, (nodes.Dict, nodes.List, nodes.Tuple)) and not e.items


def _is_constant(e: nodes.Node) -> bool:
    """A literal built of constants only (``none``, ``{'type': 'any'}``)."""
    return all(
        isinstance(x, (nodes.Const, nodes.Dict, nodes.List, nodes.Tuple, nodes.Pair)) for x in walk_nodes(e)
    )


def _getter(e: nodes.Node) -> tuple[nodes.Node, list[nodes.Node]] | None:
    """(receiver, args) of ``x.get(...)``."""
    if (
        isinstance(e, nodes.Call)
        and isinstance(e.node, nodes.Getattr)
        and e.node.attr == "get"
        and not e.kwargs
    ):
        return e.node.node, list(e.args)
    return None


def _length_of(e: nodes.Node, name: str) -> bool:
    return (
        isinstance(e, nodes.Filter)
        and e.name in ("length", "count")
        and isinstance(e.node, nodes.Name)
        and e.node.name == name
    )


def _says_nonempty(t: nodes.Node, name: str) -> bool:
    if (isinstance(t, nodes.Name) and t.name == name) or _length_of(t, name):
        return True
    if isinstance(t, nodes.Compare) and _length_of(t.expr, name) and len(t.ops) == 1:
        op = t.ops[0]
        if isinstance(op.expr, nodes.Const) and isinstance(op.expr.value, int):
            n = op.expr.value  # length > 0 (or more), length != 0, length >= 1 (or more)
            return (op.op == "gt" and n >= 0) or (op.op == "ne" and n == 0) or (op.op == "ge" and n >= 1)
    return False


def _says_empty(t: nodes.Node, name: str) -> bool:
    if isinstance(t, nodes.Not) and isinstance(t.node, nodes.Name) and t.node.name == name:
        return True
    if isinstance(t, nodes.Compare) and _length_of(t.expr, name) and len(t.ops) == 1:
        op = t.ops[0]
        return isinstance(op.expr, nodes.Const) and (
            (op.op == "eq" and op.expr.value == 0) or (op.op == "lt" and op.expr.value == 1)
        )
    return False


class Scope:
    """What counts as a strict part ("descends") of one unit's parameters."""

    def __init__(self, unit: Unit, namespaces: set[str], cyclic_namespaces: bool) -> None:
        self.unit = unit
        self.namespaces = namespaces
        self.cyclic = cyclic_namespaces
        self.strong: set[str] = set()  # names bound only to strict parts (or constants, see module notes)
        self.partial: set[str] = set()  # names bound to strict parts or an empty value (x.get('k', {}))
        bindings: dict[str, list[tuple[str, nodes.Node, nodes.Node]]] = {}
        for n in unit.own:
            if isinstance(n, nodes.For):
                for t in targets(n.target):
                    bindings.setdefault(t, []).append(("for", n, n.iter))
            elif isinstance(n, nodes.Assign):
                for t in targets(n.target):
                    bindings.setdefault(t, []).append(("set", n, n.node))
            elif isinstance(n, nodes.With):
                for tgt, val in zip(n.targets, n.values, strict=False):
                    for t in targets(tgt):
                        bindings.setdefault(t, []).append(("set", n, val))
            elif isinstance(n, (nodes.AssignBlock, nodes.Macro)):
                target = n.target if isinstance(n, nodes.AssignBlock) else nodes.Name(n.name, "store")
                for t in targets(target):
                    bindings.setdefault(t, []).append(("other", n, n))
        self.own_params = {p for p in unit.params if p not in bindings}  # parameters never rebound
        for _ in range(4):  # names bound from names bound from parameters ...
            for name, binds in bindings.items():
                if name in unit.params:
                    continue
                kinds = [self._binding(k, n, v) for k, n, v in binds]
                if all(k in ("strong", "constant") for k in kinds) and "strong" in kinds:
                    self.strong.add(name)
                elif all(k in ("strong", "partial") for k in kinds):
                    self.partial.add(name)

    def _binding(self, kind: str, node: nodes.Node, value: nodes.Node) -> str:
        if kind == "set":
            if self.strong_expr(value):
                return "strong"
            if self._part_or_empty(value):
                return "partial"
            return "constant" if _is_constant(value) else "other"
        if kind != "for" or not isinstance(node, nodes.For):
            return "other"
        it = node.iter
        if self.strong_expr(it):
            return "strong"
        if isinstance(it, nodes.Filter) and it.name in _STRICT_FILTERS and it.node is not None:
            return "strong" if self._base(it.node) else "other"
        if (
            isinstance(it, nodes.Call)
            and isinstance(it.node, nodes.Getattr)
            and it.node.attr in _PART_METHODS
            and not it.args
            and self._base(it.node.node)
        ):
            return "strong"
        if isinstance(it, nodes.Name) and self._base(it) and self._guarded(node, it.name, _NOT_A_STRING):
            return "strong"
        return "other"

    def _base(self, e: nodes.Node) -> bool:
        """The parameter itself, or a part of it (maybe empty): taking a part of it descends."""
        if isinstance(e, nodes.Name) and (e.name in self.own_params or e.name in self.partial):
            return True
        return self.strong_expr(e) or self._part_or_empty(e)

    def _part_or_empty(self, e: nodes.Node) -> bool:
        get = _getter(e)
        return get is not None and len(get[1]) == 2 and _is_empty_literal(get[1][1]) and self._base(get[0])

    def _guarded(self, node: nodes.Node, name: str, preds: tuple[_Pred, _Pred]) -> bool:
        """Whether ``node`` runs only in an if-branch whose own test (``preds[0]``) or an earlier branch's
        failed test (``preds[1]``) establishes something about ``name``."""
        own_pred, earlier_pred = preds
        child = node
        while id(child) in self.unit.parent:
            parent, where = self.unit.parent[id(child)]
            if isinstance(parent, nodes.If) and where in ("body", "else_"):
                head, earlier = self._head(parent)
                own = parent.test if where == "body" else None
                if where == "else_":
                    earlier = [head.test, *(e.test for e in head.elif_)]
                if any(own_pred(p, name) for p in _parts(own, nodes.And)):
                    return True
                if any(earlier_pred(p, name) for t in earlier for p in _parts(t, nodes.Or)):
                    return True
            child = parent
        return False

    def _head(self, node: nodes.If) -> tuple[nodes.If, list[nodes.Node]]:
        """The ``if`` an ``elif`` belongs to, and the tests of the branches before it."""
        up = self.unit.parent.get(id(node))
        if up is not None and isinstance(up[0], nodes.If) and up[1] == "elif_":
            head = up[0]
            k = next(i for i, e in enumerate(head.elif_) if e is node)
            return head, [head.test, *(e.test for e in head.elif_[:k])]
        return node, []

    def descends(self, call: nodes.Call, arg: nodes.Node) -> bool:
        """Whether passing ``arg`` at ``call`` hands the callee a strict part of this unit's parameters."""
        if self.strong_expr(arg):
            return True
        # a part that may be empty ({} from x.get('k', {})) descends where the branch excluded the empty value
        return (
            isinstance(arg, nodes.Name)
            and arg.name in self.partial
            and self._guarded(call, arg.name, _NOT_EMPTY)
        )

    def strong_expr(self, e: nodes.Node) -> bool:
        """Whether ``e`` is always a strict part of the parameters (or fails): recursion on it ends."""
        if isinstance(e, nodes.Name):
            return e.name in self.strong
        if isinstance(e, nodes.Getattr):
            if root_name(e.node) in self.namespaces or (self.cyclic and not self.strong_expr(e.node)):
                return False
            return self._base(e.node)
        if isinstance(e, nodes.Getitem):
            if isinstance(e.arg, nodes.Slice):
                return False
            if isinstance(e.arg, nodes.Const) and isinstance(e.arg.value, str):
                return self._base(e.node)
            return self.strong_expr(e.node)
        if isinstance(e, nodes.Filter):
            if e.node is None:
                return False
            if e.name in _STRICT_FILTERS:
                return self._base(e.node)
            return e.name in _PART_FILTERS and self.strong_expr(e.node)
        get = _getter(e)
        if get is not None:  # x.get('k'): a part or none; a part's .get('k', {}): a part or an empty value
            if len(get[1]) == 1:
                return self._base(get[0])
            return len(get[1]) == 2 and _is_empty_literal(get[1][1]) and self.strong_expr(get[0])
        if isinstance(e, (nodes.Or, nodes.And)):
            return self.strong_expr(e.left) and self.strong_expr(e.right)
        if isinstance(e, nodes.CondExpr):
            return self.strong_expr(e.expr1) and e.expr2 is not None and self.strong_expr(e.expr2)
        if isinstance(e, (nodes.Dict, nodes.List, nodes.Tuple)):  # see the module notes: a known gap
            values = [i.value for i in e.items] if isinstance(e, nodes.Dict) else list(e.items)
            return any(self.strong_expr(v) for v in values)
        return False


def _not_string_here(t: nodes.Node, name: str) -> bool:
    if isinstance(t, nodes.Not) and _is_test(t.node, name, ("string",)):
        return True
    return _is_test(t, name, ("mapping",))


def _string_before(t: nodes.Node, name: str) -> bool:
    return _is_test(t, name, ("string",))


_NOT_A_STRING = (_not_string_here, _string_before)
_NOT_EMPTY = (_says_nonempty, _says_empty)


def targets(target: nodes.Node) -> list[str]:
    if isinstance(target, nodes.Name):
        return [target.name]
    if isinstance(target, nodes.Tuple):
        return [n for t in target.items for n in targets(t)]
    return []


def walk_nodes(node: nodes.Node) -> Iterator[nodes.Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(c for _f, c in children(n))


__all__ = ["Scope", "Unit", "children", "collect_own", "root_name", "targets", "walk_nodes"]
