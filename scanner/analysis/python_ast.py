"""Static analysis of Python source with ``ast``: what would importing or calling this code do?

Repository code runs with ``trust_remote_code=True`` as soon as transformers
imports it, so module-level effects (process execution, network, file writes)
matter more than the same calls inside functions. The source is parsed, never
imported, compiled or executed; the walk is iterative so hostile nesting cannot
exhaust the interpreter stack.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..findings import Severity

MAX_SOURCE_BYTES = 8 << 20
MAX_ISSUES = 60
MAX_NODES = 2_000_000
MAX_EXEC_STRING_DEPTH = 2

# qualified-name prefixes -> category. Categories decide rule and severity below.
_PROCESS = (
    "os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "os.forkpty", "os.startfile",
    "subprocess.", "pty.spawn", "commands.", "popen2.", "platform.popen",
    "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell", "asyncio.subprocess.",
    "multiprocessing.util.spawnv_passfds", "posix.system", "nt.system", "posix.exec", "posix.spawn",
)
_DYNAMIC = (
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.execfile", "builtins.__import__",
    "importlib.import_module", "importlib.__import__", "importlib.util.spec_from_file_location",
    "importlib.machinery.SourceFileLoader", "runpy.", "pkgutil.resolve_name", "pydoc.locate",
    "types.CodeType", "types.FunctionType", "code.InteractiveInterpreter", "code.InteractiveConsole",
    "code.interact", "codeop.", "imp.load_source", "imp.load_module",
)
_NATIVE = ("ctypes", "_ctypes.", "cffi.")
_DESER = (
    "marshal.load", "pickle.load", "pickle.Unpickler", "_pickle.", "cPickle.", "dill.load", "dill.Unpickler",
    "cloudpickle.load", "joblib.load", "shelve.open",
)
_NETWORK = (
    "socket.", "requests.get", "requests.post", "requests.put", "requests.patch", "requests.delete", "requests.head",
    "requests.request", "requests.api.", "urllib.request.", "urllib.urlopen", "urllib2.", "http.client.", "httplib.",
    "ftplib.", "smtplib.", "telnetlib.", "aiohttp.", "httpx.", "paramiko.", "websocket.", "websockets.",
    "xmlrpc.client.", "ssl.get_server_certificate", "webbrowser.", "urllib3.",
)
_FILE_WRITE = (
    "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename", "os.replace", "os.chmod", "os.chown",
    "os.symlink", "os.link", "os.truncate", "shutil.rmtree", "shutil.move", "shutil.copy", "shutil.copyfile",
    "shutil.copytree", "shutil.copy2", "shutil.unpack_archive", "tarfile.open", "zipfile.ZipFile",
)
_WRITE_METHODS = {"write_text", "write_bytes", "unlink", "rmdir", "symlink_to", "hardlink_to", "extractall"}
_DECODERS = (
    "base64.", "codecs.decode", "binascii.", "zlib.decompress", "gzip.decompress", "bz2.decompress",
    "lzma.decompress", "bytes.fromhex", "bytearray.fromhex", "marshal.loads", "builtins.chr",
)
_DECODER_METHODS = {"fromhex", "b64decode", "decodebytes", "decompress", "unhexlify", "a2b_base64", "urlsafe_b64decode"}
_OBFUSCATED_DECODE_ARGS = {"rot13", "rot_13", "base64", "hex", "zlib", "bz2", "uu", "base64_codec", "hex_codec"}
_SENSITIVE_MODULES = {"os", "posix", "nt", "subprocess", "builtins", "__builtin__", "sys", "importlib", "pty",
                      "socket", "ctypes", "marshal", "pickle", "shutil", "runpy", "code"}
_DANGEROUS_IMPORT_TARGETS = _SENSITIVE_MODULES | {"requests", "urllib", "http", "cffi", "dill", "cloudpickle"}
_BUILTIN_NAMES = set(dir(builtins))
_PY_LINE = re.compile(
    r"^(?:import [A-Za-z_][\w.]*|from \.*[\w.]* import |def [A-Za-z_]\w*\s*\(|class [A-Za-z_]\w*\s*[(:]|async def )", re.M
)


@dataclass
class PyIssue:
    rule_id: str
    severity: Severity
    message: str
    line: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class PyAnalysis:
    parsed: bool = False
    error: str | None = None
    issues: list[PyIssue] = field(default_factory=list)
    relative_imports: list[tuple[int, str]] = field(default_factory=list)  # (level, dotted module)
    imports: set[str] = field(default_factory=set)
    classes: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def max_severity(self) -> Severity | None:
        return max((i.severity for i in self.issues), default=None, key=lambda s: s.rank)


def _match(qual: str, prefixes: Iterable[str]) -> bool:
    """'mod.' matches the module and everything in it; 'mod.name' also matches longer last components
    (os.exec -> os.execv, pickle.load -> pickle.loads) and attributes of the name."""
    for p in prefixes:
        if p.endswith("."):
            if qual.startswith(p) or qual == p[:-1]:
                return True
        elif qual.startswith(p) and (qual == p or "." not in qual[len(p):] or qual[len(p)] == "."):
            return True
    return False


@dataclass
class _Ctx:
    func_depth: int = 0
    main_guard: bool = False

    @property
    def import_time(self) -> bool:
        return self.func_depth == 0 and not self.main_guard


class _Analyzer:
    def __init__(self, tree: ast.Module, exec_depth: int) -> None:
        self.tree = tree
        self.exec_depth = exec_depth
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.shadowed: set[str] = set()
        self.tainted: set[str] = set()
        self.out = PyAnalysis(parsed=True)
        self._seen: dict[tuple[str, str], PyIssue] = {}

    # -- name resolution -------------------------------------------------
    def _collect_bindings(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.out.imports.add(a.name)
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    self.out.relative_imports.append((node.level, mod))
                    if not mod:
                        for a in node.names:
                            self.out.relative_imports.append((node.level, a.name))
                    continue
                self.out.imports.add(mod)
                for a in node.names:
                    if a.name == "*":
                        self.star_modules.append(mod)
                    else:
                        self.aliases[a.asname or a.name] = f"{mod}.{a.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.shadowed.add(node.name)
                if isinstance(node, ast.ClassDef) and node.col_offset == 0:
                    self.out.classes.append(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.shadowed.add(node.id)
            elif isinstance(node, ast.arg):
                self.shadowed.add(node.arg)

    def resolve(self, node: ast.AST) -> str | None:
        """Dotted name a call target refers to, following import aliases; None if not a module path."""
        attrs: list[str] = []
        cur = node
        for _ in range(64):
            if isinstance(cur, ast.Attribute):
                attrs.append(cur.attr)
                cur = cur.value
                continue
            break
        base: str | None = None
        if isinstance(cur, ast.Name):
            name = cur.id
            if name in self.aliases:
                base = self.aliases[name]
            elif name in ("__builtins__", "builtins"):
                base = "builtins"
            elif name in _BUILTIN_NAMES and name not in self.shadowed:
                base = f"builtins.{name}"
            else:
                for mod in self.star_modules:
                    cand = f"{mod}.{name}"
                    if any(_match(cand, p) for p in (_PROCESS, _DYNAMIC, _NATIVE, _DESER, _NETWORK)):
                        base = cand
                        break
        elif isinstance(cur, ast.Call):
            inner = self.resolve(cur.func)
            arg = _const_str(cur.args[0]) if cur.args else None
            if inner in ("builtins.__import__", "importlib.import_module") and arg:
                base = arg
            elif inner == "builtins.getattr" and len(cur.args) >= 2:
                obj = self.resolve(cur.args[0])
                attr = _const_str(cur.args[1])
                if obj and attr:
                    base = f"{obj}.{attr}"
        if base is None:
            return None
        return ".".join([base, *reversed(attrs)])

    # -- reporting ---------------------------------------------------------
    def add(self, rule: str, sev: Severity, msg: str, node: ast.AST | None, key: str, **ev: Any) -> None:
        k = (rule, key)
        prev = self._seen.get(k)
        if prev is not None:
            prev.evidence["count"] = prev.evidence.get("count", 1) + 1
            if sev > prev.severity:
                prev.severity = sev
                prev.message = msg
            return
        if len(self.out.issues) >= MAX_ISSUES:
            self.out.truncated = True
            return
        issue = PyIssue(rule, sev, msg, getattr(node, "lineno", None), {k2: v for k2, v in ev.items() if v is not None})
        self._seen[k] = issue
        self.out.issues.append(issue)

    # -- taint: data decoded at run time -------------------------------------
    def _is_decoder_call(self, call: ast.Call) -> bool:
        q = self.resolve(call.func)
        if q and _match(q, _DECODERS):
            return True
        if isinstance(call.func, ast.Attribute):
            if call.func.attr in _DECODER_METHODS:
                return True
            if call.func.attr == "decode" and call.args:
                arg = _const_str(call.args[0])
                if arg and arg.lower().replace("-", "_") in _OBFUSCATED_DECODE_ARGS:
                    return True
            if call.func.attr == "join" and call.args:
                # "".join(chr(c) for c in ...) / [::-1] string assembly
                if any(isinstance(n, ast.Call) and self.resolve(n.func) == "builtins.chr" for n in ast.walk(call.args[0])):
                    return True
        return False

    def _tainted_expr(self, expr: ast.AST) -> bool:
        for n in ast.walk(expr):
            if isinstance(n, ast.Call) and self._is_decoder_call(n):
                return True
            if isinstance(n, ast.Name) and n.id in self.tainted:
                return True
            if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Slice) and _is_reverse(n.slice):
                return True
        return False

    def _collect_taint(self) -> None:
        assigns = [n for n in ast.walk(self.tree) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr))]
        for _ in range(4):  # a few rounds of propagation through variables
            grew = False
            for a in assigns:
                value = a.value
                if value is None or not self._tainted_expr(value):
                    continue
                targets = a.targets if isinstance(a, ast.Assign) else [a.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in self.tainted:
                            self.tainted.add(n.id)
                            grew = True
            if not grew:
                break

    # -- the walk -----------------------------------------------------------
    def run(self) -> PyAnalysis:
        self._collect_bindings()
        self._collect_taint()
        stack: list[tuple[ast.AST, _Ctx]] = [(self.tree, _Ctx())]
        visited = 0
        while stack:
            node, ctx = stack.pop()
            visited += 1
            if visited > MAX_NODES:
                self.out.truncated = True
                break
            if isinstance(node, ast.Call):
                self._check_call(node, ctx)
            elif isinstance(node, ast.Attribute) and node.attr in ("__subclasses__", "__globals__", "__code__", "__builtins__"):
                self.add("PY-DANGEROUS-CALL", Severity.HIGH, f"introspection escape via {node.attr}", node,
                         f"attr:{node.attr}", category="introspection")
            stack.extend(self._children(node, ctx))
        return self.out

    def _children(self, node: ast.AST, ctx: _Ctx) -> Iterator[tuple[ast.AST, _Ctx]]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = _Ctx(ctx.func_depth + 1, ctx.main_guard)
            for d in node.decorator_list:
                yield d, ctx
            for d in (*node.args.defaults, *[x for x in node.args.kw_defaults if x is not None]):
                yield d, ctx
            for b in node.body:
                yield b, inner
            return
        if isinstance(node, ast.Lambda):
            yield node.body, _Ctx(ctx.func_depth + 1, ctx.main_guard)
            return
        if isinstance(node, ast.If) and ctx.func_depth == 0 and _is_main_guard(node.test):
            guarded = _Ctx(ctx.func_depth, True)
            for b in node.body:
                yield b, guarded
            for b in node.orelse:
                yield b, ctx
            return
        for child in ast.iter_child_nodes(node):
            yield child, ctx

    def _check_call(self, call: ast.Call, ctx: _Ctx) -> None:
        q = self.resolve(call.func)
        where = "at import time" if ctx.import_time else ("under the __main__ guard" if ctx.main_guard and not ctx.func_depth
                                                            else "in a function")
        if q is None:
            if isinstance(call.func, ast.Attribute) and call.func.attr in _WRITE_METHODS and ctx.import_time:
                self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH,
                         f"module-level file-system write (.{call.func.attr}) when imported", call,
                         f"write:{call.func.attr}", category="file-write")
            return
        decoded = any(self._tainted_expr(a) for a in (*call.args, *[k.value for k in call.keywords]))
        if _match(q, _PROCESS):
            sev = Severity.CRITICAL if (ctx.import_time or decoded) else Severity.HIGH
            self.add("PY-DANGEROUS-CALL", sev, f"process execution {q}() {where}", call, f"proc:{q}",
                     category="process", call=q, argument=_arg_preview(call), decoded=decoded or None)
            if ctx.import_time:
                self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH, f"runs {q}() as soon as the module is imported",
                         call, f"proc:{q}", category="process", call=q)
            return
        if _match(q, _DYNAMIC):
            self._check_dynamic(call, q, ctx, decoded, where)
            return
        if _match(q, _NATIVE):
            self.add("PY-DANGEROUS-CALL", Severity.HIGH, f"native code access {q}() {where}", call, f"native:{q}",
                     category="native", call=q)
            return
        if _match(q, _DESER):
            self.add("PY-DANGEROUS-CALL", Severity.HIGH, f"deserializer {q}() can execute code {where}", call,
                     f"deser:{q}", category="deserialization", call=q)
            return
        if q in ("numpy.load",) and any(k.arg == "allow_pickle" and _truthy(k.value) for k in call.keywords):
            self.add("PY-DANGEROUS-CALL", Severity.HIGH, f"numpy.load(allow_pickle=True) {where}", call, "deser:numpy",
                     category="deserialization", call=q)
            return
        if q == "torch.load" and not any(k.arg == "weights_only" and _truthy(k.value) for k in call.keywords):
            self.add("PY-DANGEROUS-CALL", Severity.LOW, f"torch.load without weights_only=True {where}", call,
                     "deser:torch", category="deserialization", call=q)
            return
        if _match(q, _NETWORK):
            if ctx.import_time:
                self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH, f"network access {q}() when the module is imported",
                         call, f"net:{q}", category="network", call=q)
            else:
                self.add("PY-NETWORK-CALL", Severity.MEDIUM, f"network access {q}() {where}", call, f"net:{q}",
                         category="network", call=q)
            return
        if q == "builtins.getattr" and len(call.args) >= 2 and _const_str(call.args[1]) is None:
            obj = self.resolve(call.args[0])
            if obj and obj.split(".")[0] in _SENSITIVE_MODULES:
                self.add("PY-DANGEROUS-CALL", Severity.HIGH, f"computed attribute lookup on {obj} {where}", call,
                         f"getattr:{obj}", category="obfuscation", call=q)
            return
        if q in ("builtins.globals", "builtins.vars", "builtins.locals"):
            return
        if ctx.import_time:
            if q in ("builtins.open", "io.open", "codecs.open", "os.open") and _write_mode(call):
                self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH, f"opens a file for writing ({q}) when imported",
                         call, f"write:{q}", category="file-write", call=q)
            elif _match(q, _FILE_WRITE):
                self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH, f"file-system change {q}() when imported", call,
                         f"write:{q}", category="file-write", call=q)

    def _check_dynamic(self, call: ast.Call, q: str, ctx: _Ctx, decoded: bool, where: str) -> None:
        name = q.rsplit(".", 1)[-1]
        arg0 = call.args[0] if call.args else None
        const = _const_str(arg0) if arg0 is not None else None
        if name in ("import_module", "__import__"):
            if const is not None and const.split(".")[0] not in _DANGEROUS_IMPORT_TARGETS and not decoded:
                self.add("PY-DANGEROUS-CALL", Severity.LOW, f"dynamic import of {const!r} {where}", call,
                         f"dyn:{q}:{const}", category="dynamic-import", call=q, module=const)
                return
            sev = Severity.CRITICAL if decoded else Severity.HIGH
            self.add("PY-DANGEROUS-CALL", sev, f"dynamic import {q}({const or '<computed>'}) {where}", call,
                     f"dyn:{q}:{const}", category="dynamic-import", call=q, module=const)
            return
        sev = Severity.CRITICAL if decoded else Severity.HIGH
        msg = f"{'decoded data passed to ' if decoded else ''}{q}() {where}"
        nested: list[str] = []
        if const is not None and name in ("eval", "exec", "compile") and self.exec_depth < MAX_EXEC_STRING_DEPTH:
            inner = analyze_python(const, _exec_depth=self.exec_depth + 1)
            for i in inner.issues:
                nested.append(i.message)
                if i.severity > sev:
                    sev = i.severity
        self.add("PY-DANGEROUS-CALL", sev, msg, call, f"dyn:{q}", category="dynamic-code", call=q,
                 decoded=decoded or None, argument=_arg_preview(call), inner=nested[:5] or None)
        if ctx.import_time and name in ("eval", "exec"):
            self.add("PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH, f"runs {q}() when the module is imported", call,
                     f"dyn:{q}", category="dynamic-code", call=q)


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _truthy(node: ast.AST) -> bool:
    return not (isinstance(node, ast.Constant) and not node.value)


def _is_reverse(s: ast.Slice) -> bool:
    step = s.step
    return isinstance(step, ast.UnaryOp) and isinstance(step.op, ast.USub) and isinstance(step.operand, ast.Constant)


def _is_main_guard(test: ast.AST) -> bool:
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__":
        return any(_const_str(c) == "__main__" for c in test.comparators)
    return False


def _write_mode(call: ast.Call) -> bool:
    mode: ast.AST | None = call.args[1] if len(call.args) >= 2 else None
    for k in call.keywords:
        if k.arg in ("mode", "flags"):
            mode = k.value
    m = _const_str(mode)
    if m is None:
        return mode is not None and not isinstance(mode, ast.Constant)  # computed mode: assume the worst
    return any(c in m for c in "wax+")


def _arg_preview(call: ast.Call) -> str | None:
    if not call.args:
        return None
    a = call.args[0]
    s = _const_str(a)
    if s is not None:
        return s[:200]
    try:
        return ast.unparse(a)[:200]
    except Exception:  # unparse of exotic trees is best effort
        return None


def analyze_python(source: bytes | str, *, max_bytes: int = MAX_SOURCE_BYTES, _exec_depth: int = 0) -> PyAnalysis:
    """Parse ``source`` (never executing it) and report dangerous calls and import-time effects."""
    if len(source) > max_bytes:
        return PyAnalysis(parsed=False, error=f"source larger than {max_bytes} bytes not analyzed")
    try:
        tree = ast.parse(source, type_comments=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return PyAnalysis(parsed=False, error=f"{type(exc).__name__}: {exc}"[:300])
    try:
        return _Analyzer(tree, _exec_depth).run()
    except RecursionError:
        return PyAnalysis(parsed=False, error="syntax tree too deeply nested to analyze")


def looks_like_python(text: str) -> bool:
    """Cheap pre-check before parsing: Python statements at the start of lines, or a python shebang."""
    return bool(_PY_LINE.search(text)) or (text.startswith("#!") and "python" in text.split("\n", 1)[0])
