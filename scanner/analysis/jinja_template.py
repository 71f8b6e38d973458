"""Static analysis of Jinja chat templates: parse to an AST, never render.

Chat templates ship inside GGUF files, tokenizer_config.json and
chat_template.jinja. Several loaders rendered them with an unsandboxed Jinja
environment (CVE-2024-34359 and successors), so a template that walks Python
object internals is remote code execution at model load.

Allowlist first: the node types, filters, tests, globals and attribute names a
template uses must be in the language measured from real chat templates
(``template_language``); anything else is TEMPLATE-UNLISTED. Jinja's ``obj[key]``
falls back to ``getattr``, so every lookup key must be a constant (judged like an
attribute name), a number, or data the renderer passed in; a key the template
built itself (concatenation, ``format``, ``join``, ``reverse``, ``%c``, ``{% set %}``
blocks, macro arguments ...) is a finding. Names of Python internals stay critical.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeGuard

from jinja2 import TemplateSyntaxError, nodes
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment

from ..findings import Severity
from ..limits import Limits
from ..rules import RuleDB
from .template_language import (  # noqa: F401 - MAX_TEMPLATE_CHARS re-exported for the GGUF handler
    FORMAT_METHODS,
    MAX_TEMPLATE_CHARS,
    RENDERER_GLOBALS,
    TemplateLanguage,
    template_language,
)

MAX_AST_NODES = 500_000
MAX_STATIC_STRING = 4096  # strings built by constant folding are capped; payload names are short
MAX_HITS_IN_EVIDENCE = 10
MAX_VALUES = 64  # possible values of one name followed through {% set %} / for loops
MAX_DEPTH = 60

_DUNDER = re.compile(r"__[A-Za-z_][A-Za-z0-9_]*__")
# attributes that reach frames, code or globals without being dunders
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "im_func",
        "co_code",
        "environment",
        "_module",
    }
)
# names that expose the interpreter, the renderer or a web framework's objects in some Jinja setups
_DANGEROUS_NAMES = frozenset(
    {
        "cycler",
        "joiner",
        "lipsum",
        "self",
        "config",
        "request",
        "session",
        "url_for",
        "get_flashed_messages",
        "os",
        "popen",
        "subprocess",
        "sys",
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "globals",
        "builtins",
        "__builtins__",
        "__import__",
        "importlib",
    }
)
_DANGEROUS_CALL_ATTRS = frozenset(
    {"popen", "system", "spawn", "exec", "eval", "import_module", "load_module"}
)
_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault"})
_LOOP_NUMBERS = frozenset({"index", "index0", "revindex", "revindex0", "length", "depth", "depth0"})
_NUMERIC_FILTERS = frozenset({"length", "count", "int", "float", "round", "abs", "sum", "wordcount"})
# filters that select from their input without building new strings
_SELECT_FILTERS = frozenset(
    {
        "first",
        "last",
        "list",
        "items",
        "dictsort",
        "selectattr",
        "rejectattr",
        "select",
        "reject",
        "map",
        "sort",
        "unique",
        "default",
        "d",
        "min",
        "max",
        "batch",
        "slice",
        "groupby",
        "from_json",
        "random",
    }
)
# filters whose named or positional argument is an attribute path (environment.getattr on every item)
_ATTRIBUTE_ARG_FILTERS = {
    "map": None,
    "selectattr": 0,
    "rejectattr": 0,
    "sort": None,
    "unique": None,
    "groupby": 0,
    "sum": None,
    "min": None,
    "max": None,
}
_FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")


class Prov(IntEnum):
    """Where a value can come from, least to most attacker-shaped."""

    NUM = 0  # numbers and booleans
    DATA = 1  # items of the data the renderer passes in (messages, tools, loop targets over them)
    FREE = 2  # a context variable used as is (its value may come from the same attacker-written config)
    BUILT = 3  # a string the template builds itself


@dataclass(frozen=True)
class TemplateIssue:
    """One problem in a template; ``severity`` None means the rule's default."""

    rule_id: str
    severity: Severity | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


class _GenerationTag(Extension):
    """transformers' ``{% generation %}...{% endgeneration %}`` block; parsed so such templates are not 'invalid'."""

    tags = {"generation"}

    def parse(self, parser):  # type: ignore[no-untyped-def]
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _environment() -> SandboxedEnvironment:
    # Only used to parse. loopcontrols/do/generation are what HF and llama.cpp-style renderers accept.
    return SandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _GenerationTag])


def parse_template(source: str) -> nodes.Template:
    """jinja2's own parser; raises TemplateSyntaxError, RecursionError or MemoryError."""
    with (
        warnings.catch_warnings()
    ):  # Jinja decodes string literals with unicode-escape and warns on odd escapes
        warnings.simplefilter("ignore", DeprecationWarning)
        return _environment().parse(source)


@dataclass
class _Hit:
    severity: Severity
    kind: str
    detail: str
    line: int | None


_BUILT_MARK = nodes.Output([])  # stands for "a string the template produced" where a node is needed


class _Bindings:
    """Every expression a name (or namespace attribute, or macro parameter) can be bound to, template-wide."""

    def __init__(self, root: nodes.Node) -> None:
        self.names: dict[str, list[tuple[str, Any]]] = {}
        self.ns_attrs: dict[str, list[nodes.Node]] = {}
        self.macros: dict[str, nodes.Macro] = {}
        # values added to a name's list/dict by append/extend ..., and to anything else (messages[0].x.append)
        self.mutations: dict[str, list[nodes.Node]] = {}
        self.mutated_other: list[nodes.Node] = []
        calls: dict[str, list[nodes.Call]] = {}
        for n in root.find_all(
            (nodes.Assign, nodes.AssignBlock, nodes.For, nodes.Macro, nodes.Call, nodes.With)
        ):
            if isinstance(n, nodes.Assign):
                self._target(n.target, ("expr", n.node))
            elif isinstance(n, nodes.AssignBlock):
                self._target(n.target, ("built", None))
            elif isinstance(n, nodes.For):
                self._target(n.target, ("iter", n.iter))
            elif isinstance(n, nodes.With):
                for t, v in zip(n.targets, n.values, strict=False):
                    self._target(t, ("expr", v))
            elif isinstance(n, nodes.Macro):
                self.macros[n.name] = n
                self.names.setdefault(n.name, []).append(("built", None))
            elif isinstance(n, nodes.Call):
                if isinstance(n.node, nodes.Name):
                    calls.setdefault(n.node.name, []).append(n)
                self._mutation(n)
                if isinstance(n.node, nodes.Name) and n.node.name == "namespace":
                    for kw in n.kwargs:
                        self.ns_attrs.setdefault(kw.key, []).append(kw.value)
                    for a in [*n.args, *(x for x in (n.dyn_args, n.dyn_kwargs) if x is not None)]:
                        self.ns_attrs.setdefault("*", []).append(a)  # attributes from a mapping argument
        # macro parameters take the arguments of every call site, and their defaults
        for name, macro in self.macros.items():
            params = [a.name for a in macro.args]
            defaults = dict(zip(params[len(params) - len(macro.defaults) :], macro.defaults, strict=False))
            for p in params:
                self.names.setdefault(p, [])
                if p in defaults:
                    self.names[p].append(("expr", defaults[p]))
            for c in calls.get(name, []):
                for p, a in zip(params, c.args, strict=False):
                    self.names[p].append(("expr", a))
                for kw in c.kwargs:
                    if kw.key in params:
                        self.names[kw.key].append(("expr", kw.value))
                if c.dyn_args or c.dyn_kwargs or len(c.args) > len(params):
                    for p in params:
                        self.names[p].append(("built", None))

    def _mutation(self, n: nodes.Call) -> None:
        """x.append(v), ns.items.extend(v) ...: v becomes part of what x holds."""
        fn = n.node
        if not (isinstance(fn, nodes.Getattr) and fn.attr in _MUTATORS):
            return
        added = [
            *n.args,
            *(kw.value for kw in n.kwargs),
            *(x for x in (n.dyn_args, n.dyn_kwargs) if x is not None),
        ]
        recv = fn.node
        if isinstance(recv, nodes.Name):
            self.mutations.setdefault(recv.name, []).extend(added)
        elif isinstance(recv, nodes.Getattr) and isinstance(recv.node, nodes.Name):
            self.ns_attrs.setdefault(recv.attr, []).extend(added)
            self.mutations.setdefault(recv.node.name, []).extend(added)
        else:
            self.mutated_other.extend(added)

    def _target(self, t: nodes.Node, how: tuple[str, Any]) -> None:
        if isinstance(t, nodes.Name):
            self.names.setdefault(t.name, []).append(how)
        elif isinstance(t, nodes.NSRef):
            self.ns_attrs.setdefault(t.attr, []).append(how[1] if how[0] == "expr" else _BUILT_MARK)
        elif isinstance(t, nodes.Tuple):
            src = how[1]
            rows = src.items if how[0] == "iter" and isinstance(src, (nodes.List, nodes.Tuple)) else None
            for i, item in enumerate(t.items):
                if rows is not None and _literal_rows(rows, len(t.items)):
                    # for a, b in [("x", "X"), ...]: each name takes the i-th column of the literal rows
                    self._target(item, ("iter", nodes.List([r.items[i] for r in rows])))
                else:  # unpacking data: each part is an element of the value
                    self._target(item, ("iter", src) if how[0] in ("expr", "iter") else how)


def _literal_rows(rows: list[nodes.Expr], width: int) -> TypeGuard[list[nodes.List | nodes.Tuple]]:
    """Every row is a list or tuple literal of ``width`` items."""
    return all(isinstance(r, (nodes.List, nodes.Tuple)) and len(r.items) == width for r in rows)


class _Walker:
    def __init__(self, lang: TemplateLanguage, root: nodes.Node) -> None:
        self.lang = lang
        self.b = _Bindings(root)
        self.ssti: list[_Hit] = []
        self.unlisted: list[_Hit] = []
        self.includes: list[_Hit] = []
        self.nodes_seen = 0
        self.truncated = False
        self._prov_memo: dict[int, Prov] = {}
        self._name_prov: dict[str, Prov] = {}
        self._name_vals: dict[str, frozenset[str] | None] = {}
        self._busy: set[str] = set()
        self._format_ok: set[int] = set()
        self._callees: set[int] = set()

    # --- possible string values -----------------------------------------------------------------------
    def values(self, node: nodes.Node, depth: int = 0) -> frozenset[str] | None:
        """Every string ``node`` can evaluate to, when the template alone decides it; None when it cannot tell."""
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return self._values_of_name(node.name, depth)
        if isinstance(node, nodes.CondExpr):
            a = self.values(node.expr1, depth + 1)
            b = self.values(node.expr2, depth + 1) if node.expr2 is not None else frozenset()
            return a | b if a is not None and b is not None and len(a | b) <= MAX_VALUES else None
        s = self.static_str(node, depth)
        return frozenset({s}) if s is not None else None

    def _values_of_name(self, name: str, depth: int) -> frozenset[str] | None:
        if name in self._name_vals:
            return self._name_vals[name]
        binds = self.b.names.get(name)
        if not binds or name in self._busy or name in self.b.mutations:
            return None
        self._busy.add(name)
        out: set[str] = set()
        try:
            for how, expr in binds:
                if how == "expr":
                    v = self.values(expr, depth + 1)
                elif how == "iter" and isinstance(expr, (nodes.List, nodes.Tuple)):
                    parts = [self.values(i, depth + 1) for i in expr.items]
                    v = frozenset().union(*parts) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
                else:
                    v = None
                if v is None or len(out | v) > MAX_VALUES:
                    self._name_vals[name] = None
                    return None
                out |= v
        finally:
            self._busy.discard(name)
        self._name_vals[name] = frozenset(out)
        return self._name_vals[name]

    # --- constant folding: the strings an expression certainly evaluates to -------------------------
    def static_str(self, node: nodes.Node, depth: int = 0) -> str | None:
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, nodes.Name) and node.ctx == "load":
            v = self._values_of_name(node.name, depth + 1)
            return next(iter(v)) if v is not None and len(v) == 1 else None
        if isinstance(node, nodes.Concat):
            parts = [self.static_any(n, depth + 1) for n in node.nodes]
            return _cap("".join(parts)) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
        if isinstance(node, nodes.Add):
            a, b = self.static_str(node.left, depth + 1), self.static_str(node.right, depth + 1)
            return _cap(a + b) if a is not None and b is not None else None
        if isinstance(node, nodes.Mul):
            s, n = self.static_str(node.left, depth + 1), _static_int(node.right)
            if s is None:
                s, n = self.static_str(node.right, depth + 1), _static_int(node.left)
            if s is not None and n is not None and 0 <= n and len(s) * n <= MAX_STATIC_STRING:
                return s * n
            return None
        if isinstance(node, nodes.Mod):
            fmt = self.static_str(node.left, depth + 1)
            args = node.right.items if isinstance(node.right, nodes.Tuple) else [node.right]
            return (
                _percent_format(fmt, [self.static_any(a, depth + 1) for a in args])
                if fmt is not None
                else None
            )
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
            s = self.static_str(node.node, depth + 1)
            sl = node.arg
            bounds = [None if p is None else _static_int(p) for p in (sl.start, sl.stop, sl.step)]
            if s is None or any(
                p is None and q is not None for p, q in zip(bounds, (sl.start, sl.stop, sl.step), strict=True)
            ):
                return None
            if bounds[2] == 0:
                return None
            return s[slice(*bounds)]
        if isinstance(node, nodes.Filter) and node.node is not None:
            return self._static_filter(node, depth)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr) and not node.kwargs:
            return self._static_method(node, depth)
        return None

    def static_any(self, node: nodes.Node, depth: int = 0) -> str | None:
        """A static value rendered as a string (ints count: '%c' and '~' turn them into text)."""
        if (
            isinstance(node, nodes.Const)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return str(node.value)
        return self.static_str(node, depth)

    def _static_method(self, node: nodes.Call, depth: int) -> str | None:
        attr = node.node.attr  # type: ignore[attr-defined]
        base = self.static_str(node.node.node, depth + 1)  # type: ignore[attr-defined]
        if base is None:
            return None
        seq = self._literal_seq(node.args[0]) if attr == "join" and len(node.args) == 1 else None
        if seq is not None:
            parts = [self.static_any(i, depth + 1) for i in seq.items]
            return _cap(base.join(parts)) if all(p is not None for p in parts) else None  # type: ignore[arg-type]
        args = [self.static_any(a, depth + 1) for a in node.args]
        if any(a is None for a in args):
            return None
        simple: dict[str, Callable[[str], str]] = {
            "lower": str.lower,
            "upper": str.upper,
            "strip": str.strip,
            "lstrip": str.lstrip,
            "rstrip": str.rstrip,
            "title": str.title,
            "capitalize": str.capitalize,
            "swapcase": str.swapcase,
            "casefold": str.casefold,
        }
        if attr in simple and not args:
            return _cap(simple[attr](base))
        if attr == "replace" and len(args) == 2 and args[0]:
            return _cap(base.replace(args[0], args[1]))  # type: ignore[arg-type]
        if attr == "format" and "{" in base:
            try:
                return (
                    _cap(base.format(*args))
                    if all(f.strip().isdigit() or not f.strip() for f in _FORMAT_FIELD.findall(base))
                    else None
                )
            except (IndexError, ValueError):
                return None
        return None

    def _literal_seq(self, node: nodes.Node | None) -> nodes.List | nodes.Tuple | None:
        """A list literal, also when reached through a name set once to it."""
        if isinstance(node, nodes.Name) and node.ctx == "load":
            binds = self.b.names.get(node.name, [])
            node = binds[0][1] if len(binds) == 1 and binds[0][0] == "expr" else None
        return node if isinstance(node, (nodes.List, nodes.Tuple)) else None

    def _static_filter(self, node: nodes.Filter, depth: int) -> str | None:
        name = node.name
        seq = self._literal_seq(node.node)
        if name == "join" and seq is not None:
            parts = [self.static_any(n, depth + 1) for n in seq.items]
            sep = self.static_str(node.args[0], depth + 1) if node.args else ""
            if sep is None or any(p is None for p in parts):
                return None
            return _cap(sep.join(parts))  # type: ignore[arg-type]
        if name in ("first", "last") and isinstance(node.node, (nodes.List, nodes.Tuple)) and node.node.items:
            return self.static_str(node.node.items[0 if name == "first" else -1], depth + 1)
        base = self.static_str(node.node, depth + 1)  # type: ignore[arg-type]
        if base is None:
            return None
        if name in ("lower", "upper", "trim", "string", "e", "escape", "safe", "capitalize", "title"):
            return {
                "lower": base.lower(),
                "upper": base.upper(),
                "trim": base.strip(),
                "capitalize": base.capitalize(),
                "title": base.title(),
            }.get(name, base)
        if name == "reverse":
            return base[::-1]
        if name in ("first", "last"):
            return base[:1] if name == "first" else base[-1:]
        if name == "replace" and len(node.args) >= 2:
            old, new = self.static_str(node.args[0], depth + 1), self.static_str(node.args[1], depth + 1)
            if old is None or new is None or not old:
                return None
            return _cap(base.replace(old, new))
        if name == "format":
            return _percent_format(base, [self.static_any(a, depth + 1) for a in node.args])
        return None

    # --- provenance -------------------------------------------------------------------------------------
    def prov(self, node: nodes.Node, depth: int = 0) -> Prov:
        key = id(node)
        if key in self._prov_memo:
            return self._prov_memo[key]
        p = self._prov(node, depth) if depth <= MAX_DEPTH else Prov.BUILT
        self._prov_memo[key] = p
        return p

    def _prov(self, node: nodes.Node, depth: int) -> Prov:
        d = depth + 1
        if isinstance(node, nodes.Const):
            return Prov.BUILT if isinstance(node.value, str) else Prov.NUM
        if isinstance(node, nodes.Name):
            return self._prov_of_name(node.name, d)
        if isinstance(node, nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == "loop" and node.attr in _LOOP_NUMBERS:
                return Prov.NUM
            if isinstance(node.node, nodes.Name) and self._is_namespace(node.node.name):
                return self._prov_of_ns_attr(node.attr, d)
            return Prov.BUILT if self.prov(node.node, d) is Prov.BUILT else Prov.DATA
        if isinstance(node, nodes.Getitem):
            base = self.prov(node.node, d)
            if isinstance(node.arg, nodes.Slice):
                return base if base is not Prov.FREE else Prov.BUILT
            return Prov.BUILT if base is Prov.BUILT else Prov.DATA
        if isinstance(node, nodes.Filter):
            if node.name in _NUMERIC_FILTERS:
                return Prov.NUM
            if node.name in _SELECT_FILTERS and node.node is not None:
                parts = [self.prov(node.node, d)] + (
                    [self.prov(a, d) for a in node.args[:1]] if node.name in ("default", "d") else []
                )
                return max(parts)  # selecting from a context variable keeps its provenance
            return Prov.BUILT
        if isinstance(node, nodes.Call):
            if isinstance(node.node, nodes.Name) and node.node.name == "range":
                return Prov.DATA
            if isinstance(node.node, nodes.Name) and node.node.name == "namespace":
                return Prov.DATA
            if isinstance(node.node, nodes.Getattr) and node.node.attr in (
                "split",
                "items",
                "keys",
                "values",
                "get",
                "pop",
                "rsplit",
                "splitlines",
            ):
                base = self.prov(node.node.node, d)
                if base is Prov.FREE and node.node.attr in ("split", "rsplit", "splitlines"):
                    return Prov.BUILT  # pieces the template cuts from a context string (bos_token.split)
                return Prov.BUILT if base is Prov.BUILT else Prov.DATA
            return Prov.BUILT
        if isinstance(
            node, (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow)
        ):
            if isinstance(node, nodes.Add) and (
                isinstance(node.left, (nodes.List, nodes.Tuple))
                or isinstance(node.right, (nodes.List, nodes.Tuple))
            ):
                return max(self.prov(node.left, d), self.prov(node.right, d))
            if self.prov(node.left, d) is Prov.NUM and self.prov(node.right, d) is Prov.NUM:
                return Prov.NUM
            return Prov.BUILT
        if isinstance(node, (nodes.Neg, nodes.Pos)):
            return Prov.NUM if self.prov(node.node, d) is Prov.NUM else Prov.BUILT
        if isinstance(node, (nodes.Not, nodes.Compare, nodes.Test)):
            return Prov.NUM
        if isinstance(node, (nodes.And, nodes.Or)):
            return max(self.prov(node.left, d), self.prov(node.right, d))
        if isinstance(node, nodes.CondExpr):
            return max(
                self.prov(node.expr1, d), self.prov(node.expr2, d) if node.expr2 is not None else Prov.NUM
            )
        if isinstance(node, (nodes.List, nodes.Tuple)):
            return max((self.prov(i, d) for i in node.items), default=Prov.NUM)
        if isinstance(node, nodes.Dict):
            return max((self.prov(i.value, d) for i in node.items), default=Prov.NUM)
        return Prov.BUILT

    def _prov_of_ns_attr(self, attr: str, depth: int) -> Prov:
        busy = "ns." + attr
        if busy in self._busy:
            return Prov.NUM  # least fixpoint: the other assignments decide
        self._busy.add(busy)
        try:
            ns = [*self.b.ns_attrs.get(attr, []), *self.b.ns_attrs.get("*", [])]
            return max(
                (Prov.BUILT if e is _BUILT_MARK else self.prov(e, depth) for e in ns), default=Prov.NUM
            )
        finally:
            self._busy.discard(busy)

    def _is_namespace(self, name: str) -> bool:
        return any(
            how == "expr"
            and isinstance(e, nodes.Call)
            and isinstance(e.node, nodes.Name)
            and e.node.name == "namespace"
            for how, e in self.b.names.get(name, [])
        )

    def _prov_of_name(self, name: str, depth: int) -> Prov:
        if name == "loop":
            return Prov.DATA
        if name in self._name_prov:
            return self._name_prov[name]
        binds = self.b.names.get(name)
        added = self.b.mutations.get(name, [])
        if binds is None and not added:
            return Prov.FREE
        if name in self._busy:
            return Prov.NUM  # least fixpoint: the other bindings decide
        self._busy.add(name)
        try:
            p = Prov.FREE if binds is None else Prov.NUM
            for expr in added:
                p = max(p, self.prov(expr, depth))
            binds = binds or []
            for how, expr in binds:
                if how == "built":
                    q = Prov.BUILT
                elif how == "expr":
                    q = self.prov(expr, depth)
                elif (
                    isinstance(expr, nodes.Call)
                    and isinstance(expr.node, nodes.Name)
                    and expr.node.name == "range"
                ):
                    q = Prov.NUM
                elif isinstance(expr, (nodes.List, nodes.Tuple)):
                    q = max((self.prov(i, depth) for i in expr.items), default=Prov.NUM)
                else:  # an element of what is iterated: data stays data, a built string gives built characters
                    q = self.prov(expr, depth)
                    if q is Prov.FREE:
                        q = Prov.DATA  # items of a list the caller passed (messages, tools)
                p = max(p, q)
        finally:
            self._busy.discard(name)
        self._name_prov[name] = p
        return p

    # --- judging names -------------------------------------------------------------------------------
    def check_name(self, value: str, where: str, line: int | None) -> None:
        if _DUNDER.search(value):
            self.ssti.append(_Hit(Severity.CRITICAL, where, value[:200], line))

    def check_attr(self, attr: str, where: str, line: int | None, mode: str = "attr") -> None:
        """An attribute name (``attr``), a constant lookup key (``key``) or the name of what is called (``call``).

        Jinja's getitem falls back to getattr, so keys naming internals are as bad as attributes; a key that
        merely spells a method name ('format', 'items') reads a data field unless the result is called.
        """
        if _DUNDER.search(attr) or attr in _INTERNAL_ATTRS:
            self.ssti.append(_Hit(Severity.CRITICAL, where, attr[:200], line))
        elif attr.startswith("_"):
            self.ssti.append(_Hit(Severity.HIGH, f"{where} (private attribute)", attr[:200], line))
        elif mode == "call" and attr in _DANGEROUS_CALL_ATTRS:
            self.ssti.append(_Hit(Severity.CRITICAL, "call of a process/eval method", attr, line))
        elif mode == "call" and attr in FORMAT_METHODS:
            self.ssti.append(
                _Hit(Severity.HIGH, f"{where} (str.format walks attributes of its arguments)", attr, line)
            )
        elif mode != "key" and attr not in FORMAT_METHODS and self.lang.allows_attribute(attr) is False:
            self.unlisted.append(
                _Hit(
                    Severity.HIGH,
                    f"{where} of a Python object attribute real templates do not use",
                    attr[:200],
                    line,
                )
            )

    def check_key(self, key: nodes.Node, where: str, line: int | None, mode: str = "key") -> None:
        """A computed lookup key must be a known constant, a number or the renderer's data."""
        vals = self.values(key)
        if vals is not None:
            for v in sorted(vals)[:MAX_VALUES]:
                for part in v.split(".") if where.startswith("attribute path") else [v]:
                    if not part.isdigit():
                        self.check_attr(part, where, line, mode)
            return
        if isinstance(key, nodes.Const):  # numbers, None, booleans
            return
        p = self.prov(key)
        if p is Prov.BUILT:
            self.ssti.append(
                _Hit(Severity.HIGH, f"{where} with a key the template builds itself", _expr_text(key), line)
            )
        elif p is Prov.FREE:
            self.ssti.append(
                _Hit(Severity.HIGH, f"{where} with a context variable as the key", _expr_text(key), line)
            )

    # --- the walk -------------------------------------------------------------------------------------
    def visit(self, node: nodes.Node) -> None:
        line = getattr(node, "lineno", None)
        kind = type(node).__name__
        if isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            target = self.static_str(node.template)
            self.includes.append(_Hit(Severity.HIGH, kind.lower(), str(target)[:200], line))
        elif kind not in self.lang.node_types:
            self.unlisted.append(_Hit(Severity.HIGH, "construct", kind, line))
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in self.b.names and node.name != "loop":
                if node.name in _DANGEROUS_NAMES:
                    self.ssti.append(_Hit(Severity.HIGH, "dangerous global", node.name, line))
                elif node.name in RENDERER_GLOBALS and node.name not in self.lang.globals:
                    self.unlisted.append(_Hit(Severity.HIGH, "renderer global", node.name, line))
            self.check_name(node.name, "name", line)
        elif isinstance(node, nodes.Macro):
            self.check_name(node.name, "macro name", line)
        elif isinstance(node, nodes.NSRef):
            self.check_attr(node.attr, "namespace attribute", line)
        elif isinstance(node, nodes.Getattr):
            if id(node) not in self._format_ok:
                self.check_attr(
                    node.attr, "attribute access", line, "call" if id(node) in self._callees else "attr"
                )
        elif isinstance(node, nodes.Getitem):
            if not isinstance(node.arg, nodes.Slice):
                self.check_key(node.arg, "item access", line, "call" if id(node) in self._callees else "key")
        elif isinstance(node, nodes.Filter):
            self._visit_filter(node, line)
        elif isinstance(node, nodes.Test):
            if node.name not in self.lang.tests:
                self.unlisted.append(_Hit(Severity.HIGH, "test", node.name, line))
        elif isinstance(node, nodes.Keyword):
            self.check_name(node.key, "keyword argument", line)
        elif isinstance(node, nodes.Call):
            self._visit_call(node, line)
        if isinstance(
            node, (nodes.Const, nodes.Concat, nodes.Add, nodes.Mul, nodes.Mod, nodes.Filter, nodes.Call)
        ):
            s = self.static_str(node)
            if s is not None:
                self.check_name(s, "string that names a Python internal", line)

    def _visit_filter(self, node: nodes.Filter, line: int | None) -> None:
        name = node.name
        if name not in self.lang.filters:
            self.unlisted.append(_Hit(Severity.HIGH, "filter", name, line))
        if name == "attr":
            if node.args:
                self.check_key(node.args[0], "attr() filter", line)
            else:
                self.ssti.append(_Hit(Severity.HIGH, "attr() filter without a name", "attr", line))
        if name in _ATTRIBUTE_ARG_FILTERS:
            pos = _ATTRIBUTE_ARG_FILTERS[name]
            attrs = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            if pos is not None and node.args:
                attrs.append(node.args[pos])
            for a in attrs:
                self.check_key(a, "attribute path", line)
        # filters and tests named by a string argument run by name: map('upper'), select('odd'), selectattr('x', 'eq')
        named: list[tuple[nodes.Node, frozenset[str], str]] = []
        if name == "map" and node.args and not any(kw.key == "attribute" for kw in node.kwargs):
            named.append((node.args[0], self.lang.filters, "filter"))
        elif name in ("select", "reject") and node.args:
            named.append((node.args[0], self.lang.tests, "test"))
        elif name in ("selectattr", "rejectattr") and len(node.args) > 1:
            named.append((node.args[1], self.lang.tests, "test"))
        for arg, allowed, what in named:
            vals = self.values(arg)
            if vals is None:
                self.ssti.append(
                    _Hit(Severity.HIGH, f"{name}() with a computed {what} name", _expr_text(arg), line)
                )
            else:
                for v in vals:
                    if v not in allowed or v == "attr":
                        self.unlisted.append(_Hit(Severity.HIGH, f"{what} named in {name}()", v[:200], line))
                        if v == "attr" and len(node.args) > 1:
                            self.check_key(node.args[1], "attr() via map", line)

    def _visit_call(self, node: nodes.Call, line: int | None) -> None:
        fn = node.node
        if isinstance(fn, nodes.Name) and fn.name in self.b.names and fn.name not in self.b.macros:
            self.unlisted.append(
                _Hit(Severity.HIGH, "call of a value bound with set/for (not a macro)", fn.name, line)
            )
        elif not isinstance(fn, (nodes.Name, nodes.Getattr, nodes.Getitem)):
            self.unlisted.append(_Hit(Severity.HIGH, "call of a computed value", _expr_text(fn), line))
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.unlisted.append(_Hit(Severity.HIGH, "call with *args/**kwargs", _expr_text(fn), line))

    def walk(self, root: nodes.Node) -> None:
        # a constant '<tok{}>'.format(x) with only plain fields walks no attributes (tencent Hy3 builds tokens so)
        for call in root.find_all(nodes.Call):
            fn = call.node
            self._callees.add(id(fn))
            if isinstance(fn, nodes.Getattr) and fn.attr == "format":
                fmt = self.static_str(fn.node)
                if fmt is not None and all(_simple_field(f) for f in _FORMAT_FIELD.findall(fmt)):
                    self._format_ok.add(id(fn))
        for added in self.b.mutated_other:
            if self.prov(added) is Prov.BUILT:
                self.ssti.append(
                    _Hit(
                        Severity.HIGH,
                        "adds a value the template built to the caller's data",
                        _expr_text(added),
                        getattr(added, "lineno", None),
                    )
                )
        stack: list[nodes.Node] = [root]
        while stack:
            node = stack.pop()
            self.nodes_seen += 1
            if self.nodes_seen > MAX_AST_NODES:
                self.truncated = True
                return
            self.visit(node)
            stack.extend(node.iter_child_nodes())


def _simple_field(f: str) -> bool:
    """'{}', '{0}' or '{name}': no attribute or index walk, no conversion or format spec."""
    return re.fullmatch(r"\s*(?:\d+|[A-Za-z_][A-Za-z0-9_]*)?\s*", f) is not None and "__" not in f


def _expr_text(node: nodes.Node) -> str:
    return type(node).__name__ + (f" {node.name}" if isinstance(node, nodes.Name) else "")


def _cap(s: str) -> str:
    return s[:MAX_STATIC_STRING]


def _static_int(node: nodes.Node) -> int | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, nodes.Neg):
        v = _static_int(node.node)
        return -v if v is not None else None
    return None


def _percent_format(fmt: str | None, args: list[str | None]) -> str | None:
    """Only %s, %c and %%: enough to see names spelled with character codes, without running printf."""
    if fmt is None:
        return None
    out: list[str] = []
    it = iter(args)
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        spec = fmt[i + 1 : i + 2]
        i += 2
        if spec == "%":
            out.append("%")
            continue
        arg = next(it, None)
        if arg is None or spec not in ("s", "c"):
            return None
        if spec == "c":
            try:
                code = int(arg)
                out.append(chr(code) if 0 <= code < 0x110000 else "?")
            except ValueError:
                out.append(arg[:1])
        else:
            out.append(arg)
    return _cap("".join(out))


def _summarize(hits: list[_Hit]) -> dict[str, Any]:
    return {
        "count": len(hits),
        "hits": [{"kind": h.kind, "detail": h.detail, "line": h.line} for h in hits[:MAX_HITS_IN_EVIDENCE]],
    }


def _dunder_scan(source: str, what: str) -> list[TemplateIssue]:
    m = _DUNDER.search(source)
    if not m:
        return []
    return [
        TemplateIssue(
            "TEMPLATE-SSTI",
            Severity.CRITICAL,
            f"{what} template contains the Python internal name {m.group(0)!r}",
            {"match": m.group(0)[:100], "offset": m.start()},
        )
    ]


def analyze_template(
    source: str,
    limits: Limits | None = None,
    *,
    max_chars: int = MAX_TEMPLATE_CHARS,
    rules: RuleDB | None = None,
) -> list[TemplateIssue]:
    """Issues in one Jinja template; never renders it. An empty list means it stays inside the measured language.

    TEMPLATE-OVERSIZE and TEMPLATE-INVALID mean the template was not judged in full: callers mark coverage partial.
    """
    issues: list[TemplateIssue] = []
    if len(source) > max_chars:
        issues.append(
            TemplateIssue(
                "TEMPLATE-OVERSIZE",
                None,
                f"chat template of {len(source)} characters exceeds {max_chars}; only scanned for dunder names",
                {"chars": len(source), "limit": max_chars},
            )
        )
        return issues + _dunder_scan(source, "oversized")
    try:
        ast = parse_template(source)
    except TemplateSyntaxError as exc:
        issues.append(
            TemplateIssue(
                "TEMPLATE-INVALID",
                None,
                f"template does not parse: {exc.message} (line {exc.lineno})"[:300],
                {"line": exc.lineno},
            )
        )
        return issues + _dunder_scan(source, "unparseable")
    except (RecursionError, MemoryError):
        return [
            TemplateIssue("TEMPLATE-INVALID", None, "template nests too deeply to parse", {}),
            *_dunder_scan(source, "unparseable"),
        ]

    try:
        w = _Walker(template_language(rules), ast)
    except RecursionError:  # name bindings are collected recursively: x.a.a.a... thousands deep
        return [
            TemplateIssue("TEMPLATE-INVALID", None, "template nests too deeply to analyse", {}),
            *_dunder_scan(source, "unparseable"),
        ]
    try:
        w.walk(ast)
    except RecursionError:
        w.truncated = True
    if not w.truncated:
        from .template_cost import CostHit, cost_hits

        try:
            costs = cost_hits(ast)
        except RecursionError:
            costs = [CostHit("expressions nest too deeply to bound their cost", None)]
        for c in costs:  # the sandbox bounds neither work nor memory: constants multiplied into a DoS
            w.unlisted.append(_Hit(Severity.HIGH, "resource amplification:", c.detail, c.line))
    if w.ssti:
        w.ssti.sort(key=lambda h: (-h.severity.rank, h.line or 0))
        worst = w.ssti[0].severity
        first = w.ssti[0]
        issues.append(
            TemplateIssue(
                "TEMPLATE-SSTI",
                worst,
                f"template reaches Python internals or dangerous globals: {first.kind} {first.detail!r}"
                + (f" (+{len(w.ssti) - 1} more)" if len(w.ssti) > 1 else ""),
                _summarize(w.ssti),
            )
        )
    if w.unlisted:
        first = w.unlisted[0]
        issues.append(
            TemplateIssue(
                "TEMPLATE-UNLISTED",
                None,
                f"template uses {first.kind} {first.detail!r}, outside the language measured from real chat templates"
                + (f" (+{len(w.unlisted) - 1} more)" if len(w.unlisted) > 1 else ""),
                _summarize(w.unlisted),
            )
        )
    if w.includes:
        issues.append(
            TemplateIssue(
                "TEMPLATE-INCLUDE",
                None,
                f"template uses {w.includes[0].kind} of {w.includes[0].detail}",
                _summarize(w.includes),
            )
        )
    if w.truncated:
        issues.append(
            TemplateIssue(
                "TEMPLATE-OVERSIZE",
                None,
                f"template AST larger than {MAX_AST_NODES} nodes or too deep; rest not analysed",
                {"nodes": MAX_AST_NODES},
            )
        )
    return issues
