"""Static analysis of Jinja chat templates: parse to an AST, never render.

Chat templates ship inside GGUF files, tokenizer_config.json and
chat_template.jinja. Several loaders rendered them with an unsandboxed Jinja
environment (CVE-2024-34359 and successors), so a template that walks Python
object internals is remote code execution at model load. Real templates only
loop over messages, compare roles and concatenate strings; anything reaching
dunders, interpreter-exposing globals or the template loader stands out.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment

from ..findings import Severity
from ..limits import Limits

MAX_TEMPLATE_CHARS = 1 << 20  # real chat templates are a few KB; GGUF rules cap templates at 1 MiB
MAX_AST_NODES = 500_000
MAX_STATIC_STRING = 4096  # strings built by constant folding are capped; payload names are short
MAX_HITS_IN_EVIDENCE = 10

_DUNDER = re.compile(r"__[A-Za-z_][A-Za-z0-9_]*__")
# attributes that reach frames, code or globals without being dunders
_INTERNAL_ATTRS = frozenset({
    "mro", "func_globals", "func_code", "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "gi_code",
    "cr_frame", "cr_code", "ag_frame", "tb_frame", "tb_next", "im_func", "co_code", "environment", "_module",
})
# names that expose the interpreter, the renderer or a web framework's objects in some Jinja setups
_DANGEROUS_NAMES = frozenset({
    "cycler", "joiner", "lipsum", "self", "config", "request", "session", "url_for", "get_flashed_messages",
    "os", "popen", "subprocess", "sys", "eval", "exec", "compile", "open", "getattr", "globals", "builtins",
    "__builtins__", "__import__", "importlib",
})
_DANGEROUS_CALL_ATTRS = frozenset({"popen", "system", "spawn", "exec", "eval", "import_module", "load_module"})


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


@dataclass
class _Hit:
    severity: Severity
    kind: str
    detail: str
    line: int | None


class _Walker:
    def __init__(self) -> None:
        self.ssti: list[_Hit] = []
        self.includes: list[_Hit] = []
        self.bound: set[str] = set()
        self.loaded: dict[str, int | None] = {}
        self.uses_namespace = False
        self.nodes_seen = 0
        self.truncated = False

    # --- constant folding: the strings an expression certainly evaluates to -------------------------
    def static_str(self, node: nodes.Node, depth: int = 0) -> str | None:
        if depth > 50:
            return None
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
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
            return _percent_format(fmt, [self.static_any(a, depth + 1) for a in args]) if fmt is not None else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
            s = self.static_str(node.node, depth + 1)
            sl = node.arg
            try:
                bounds = [None if p is None else _static_int(p) for p in (sl.start, sl.stop, sl.step)]
            except TypeError:
                return None
            if s is None or any(p is None and q is not None for p, q in zip(bounds, (sl.start, sl.stop, sl.step), strict=True)):
                return None
            if bounds[2] == 0:
                return None
            return s[slice(*bounds)]
        if isinstance(node, nodes.Filter) and node.node is not None:
            return self._static_filter(node, depth)
        return None

    def static_any(self, node: nodes.Node, depth: int = 0) -> str | None:
        """A static value rendered as a string (ints count: '%c' and '~' turn them into text)."""
        if isinstance(node, nodes.Const) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return str(node.value)
        return self.static_str(node, depth)

    def _static_filter(self, node: nodes.Filter, depth: int) -> str | None:
        name = node.name
        if name == "join" and isinstance(node.node, (nodes.List, nodes.Tuple)):
            parts = [self.static_any(n, depth + 1) for n in node.node.items]
            sep = self.static_str(node.args[0], depth + 1) if node.args else ""
            if sep is None or any(p is None for p in parts):
                return None
            return _cap(sep.join(parts))  # type: ignore[arg-type]
        base = self.static_str(node.node, depth + 1)  # type: ignore[arg-type]
        if base is None:
            return None
        if name in ("lower", "upper", "trim", "string", "e", "escape", "safe", "capitalize", "title"):
            return {"lower": base.lower(), "upper": base.upper(), "trim": base.strip()}.get(name, base)
        if name == "reverse":
            return base[::-1]
        if name == "replace" and len(node.args) >= 2:
            old, new = self.static_str(node.args[0], depth + 1), self.static_str(node.args[1], depth + 1)
            if old is None or new is None or not old:
                return None
            return _cap(base.replace(old, new))
        if name == "format":
            return _percent_format(base, [self.static_any(a, depth + 1) for a in node.args])
        return None

    # --- the walk -------------------------------------------------------------------------------------
    def check_name(self, value: str, where: str, line: int | None) -> None:
        if _DUNDER.search(value):
            self.ssti.append(_Hit(Severity.CRITICAL, where, value[:200], line))

    def check_attr(self, attr: str, where: str, line: int | None) -> None:
        if _DUNDER.fullmatch(attr) or attr in _INTERNAL_ATTRS:
            self.ssti.append(_Hit(Severity.CRITICAL, where, attr[:200], line))
        elif attr.startswith("_"):
            self.ssti.append(_Hit(Severity.HIGH, f"{where} (private attribute)", attr[:200], line))

    def visit(self, node: nodes.Node) -> None:
        line = getattr(node, "lineno", None)
        if isinstance(node, nodes.Name):
            if node.ctx in ("store", "param"):
                self.bound.add(node.name)
            else:
                self.loaded.setdefault(node.name, line)
                if node.name == "namespace":
                    self.uses_namespace = True
            self.check_name(node.name, "name", line)
        elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
            if isinstance(node, nodes.Macro):
                self.bound.add(node.name)
        elif isinstance(node, nodes.NSRef):
            self.check_attr(node.attr, "namespace attribute", line)
        elif isinstance(node, nodes.Getattr):
            self.check_attr(node.attr, "attribute access", line)
        elif isinstance(node, nodes.Getitem):
            key = self.static_str(node.arg) if not isinstance(node.arg, nodes.Slice) else None
            if key is not None:
                self.check_attr(key, "item access", line)
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            key = self.static_str(node.args[0]) if node.args else None
            if key is None:
                self.ssti.append(_Hit(Severity.HIGH, "attr() filter with a computed name", "attr(...)", line))
            else:
                self.check_attr(key, "attr() filter", line)
        elif isinstance(node, nodes.Keyword):
            self.check_name(node.key, "keyword argument", line)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            if node.node.attr in _DANGEROUS_CALL_ATTRS:
                self.ssti.append(_Hit(Severity.HIGH, "call of a process/eval method", node.node.attr, line))
        elif isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            target = self.static_str(node.template) if hasattr(node, "template") else None
            self.includes.append(_Hit(Severity.HIGH, type(node).__name__.lower(), str(target)[:200], line))
        if isinstance(node, (nodes.Const, nodes.Concat, nodes.Add, nodes.Mul, nodes.Mod, nodes.Filter)):
            s = self.static_str(node)
            if s is not None:
                self.check_name(s, "string that names a Python internal", line)

    def walk(self, root: nodes.Node) -> None:
        stack: list[nodes.Node] = [root]
        while stack:
            node = stack.pop()
            self.nodes_seen += 1
            if self.nodes_seen > MAX_AST_NODES:
                self.truncated = True
                return
            self.visit(node)
            stack.extend(node.iter_child_nodes())


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


def analyze_template(source: str, limits: Limits | None = None, *, max_chars: int = MAX_TEMPLATE_CHARS) -> list[TemplateIssue]:
    """Issues in one Jinja template; never renders it. An empty list means nothing suspicious was found."""
    issues: list[TemplateIssue] = []
    if len(source) > max_chars:
        issues.append(TemplateIssue(
            "TEMPLATE-OVERSIZE", None,
            f"chat template of {len(source)} characters exceeds {max_chars}; only scanned for dunder names",
            {"chars": len(source), "limit": max_chars},
        ))
        m = _DUNDER.search(source)
        if m:
            issues.append(TemplateIssue("TEMPLATE-SSTI", Severity.CRITICAL,
                                        f"oversized template contains the Python internal name {m.group(0)!r}",
                                        {"match": m.group(0)[:100], "offset": m.start()}))
        return issues
    try:
        with warnings.catch_warnings():  # Jinja decodes string literals with unicode-escape and warns on odd escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            ast = _environment().parse(source)
    except TemplateSyntaxError as exc:
        issues.append(TemplateIssue("TEMPLATE-INVALID", None, f"template does not parse: {exc.message} (line {exc.lineno})"[:300],
                                    {"line": exc.lineno}))
        m = _DUNDER.search(source)
        if m:
            issues.append(TemplateIssue("TEMPLATE-SSTI", Severity.CRITICAL,
                                        f"unparseable template contains the Python internal name {m.group(0)!r}",
                                        {"match": m.group(0)[:100], "offset": m.start()}))
        return issues
    except (RecursionError, MemoryError):
        return [TemplateIssue("TEMPLATE-INVALID", Severity.HIGH, "template nests too deeply to parse", {})]

    w = _Walker()
    w.walk(ast)
    for name in sorted(_DANGEROUS_NAMES & (set(w.loaded) - w.bound)):
        w.ssti.append(_Hit(Severity.HIGH, "dangerous global", name, w.loaded[name]))
    if w.ssti:
        w.ssti.sort(key=lambda h: (-h.severity.rank, h.line or 0))
        worst = w.ssti[0].severity
        first = next(h for h in w.ssti if h.severity is worst)
        ev = _summarize(w.ssti)
        if w.uses_namespace:
            ev["uses_namespace"] = True
        issues.append(TemplateIssue(
            "TEMPLATE-SSTI", worst,
            f"template reaches Python internals or dangerous globals: {first.kind} {first.detail!r}"
            + (f" (+{len(w.ssti) - 1} more)" if len(w.ssti) > 1 else ""),
            ev,
        ))
    if w.includes:
        issues.append(TemplateIssue("TEMPLATE-INCLUDE", None,
                                    f"template uses {w.includes[0].kind} of {w.includes[0].detail}", _summarize(w.includes)))
    if w.truncated:
        issues.append(TemplateIssue("TEMPLATE-OVERSIZE", None, f"template AST larger than {MAX_AST_NODES} nodes; rest not analysed",
                                    {"nodes": MAX_AST_NODES}))
    return issues
