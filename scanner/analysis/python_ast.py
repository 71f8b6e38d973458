"""Static analysis of Python source with ``ast``: what would importing or calling this code do?

Repository code runs with ``trust_remote_code=True`` as soon as transformers
imports it, and loaders then call ``__init__``/``from_pretrained``; effects
there (process execution, network, file writes) matter more than the same calls
in other functions. Names are resolved the way Python would bind them, not by
spelling: import aliases, assignments (``_r = os.system``), re-exports
(``shutil.os``), lookups (``os.__dict__[...]``, ``sys.modules[...]``,
``getattr`` with names folded from constants) and callables handed to other
callables (``functools.partial``, ``Thread(target=...)``, ``atexit.register``).
The source is parsed, never imported, compiled or executed; the walk is
iterative so hostile nesting cannot exhaust the interpreter stack.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..findings import Severity

MAX_SOURCE_BYTES = 1 << 20  # parsing costs ~75 bytes of AST per byte of dense code: ~100 MB peak at the cap
MAX_ISSUES = 60
MAX_NODES = 2_000_000
# ast.parse needs up to ~750 bytes per token (a 1 MiB 'a,a,a,...' list takes 720 MB): count tokens first
MAX_TOKENS = 120_000
MAX_EXEC_STRING_DEPTH = 2
MAX_RESOLVE_DEPTH = 16
MAX_FOLD_CHARS = 4096

# qualified-name prefixes -> category. Categories decide rule and severity below.
_PROCESS = (
    "os.system",
    "os.popen",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.forkpty",
    "os.startfile",
    "os.fork",
    "subprocess.",
    "pty.spawn",
    "commands.",
    "popen2.",
    "platform.popen",
    "_posixsubprocess.",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
    "asyncio.subprocess.",
    "multiprocessing.util.spawnv_passfds",
    "posix.system",
    "nt.system",
    "posix.exec",
    "posix.spawn",
    "posix.popen",
)
_DYNAMIC = (
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.execfile",
    "builtins.__import__",
    "builtins.breakpoint",
    "sys.breakpointhook",
    "importlib.import_module",
    "importlib.__import__",
    "importlib.util.spec_from_file_location",
    "importlib.util.module_from_spec",
    "importlib.machinery.SourceFileLoader",
    "importlib.machinery.SourcelessFileLoader",
    "importlib.machinery.ExtensionFileLoader",
    "importlib.util.spec_from_loader",
    "importlib.reload",
    "runpy.",
    "torch.hub.load",
    "pkgutil.resolve_name",
    "pydoc.locate",
    "zipimport.",
    "types.CodeType",
    "types.FunctionType",
    "code.InteractiveInterpreter",
    "code.InteractiveConsole",
    "code.interact",
    "code.compile_command",
    "codeop.",
    "imp.load_source",
    "imp.load_module",
    "timeit.timeit",
    "timeit.repeat",
    "timeit.Timer",
    "cProfile.run",
    "cProfile.runctx",
    "profile.run",
    "profile.runctx",
    "pdb.run",
    "pdb.runeval",
    "pdb.runctx",
    "bdb.Bdb.run",
    "trace.Trace",
    "doctest.run_docstring_examples",
    "doctest.testmod",
    "doctest.testfile",
    "doctest.DocTestRunner",
    "logging.config.fileConfig",
    "logging.config.listen",
    "pickle.Unpickler.find_class",
)
_NATIVE = ("ctypes", "_ctypes.", "cffi.")
_DESER = (
    "marshal.load",
    "pickle.load",
    "pickle.Unpickler",
    "_pickle.",
    "cPickle.",
    "dill.load",
    "dill.Unpickler",
    "cloudpickle.load",
    "joblib.load",
    "shelve.open",
    "yaml.unsafe_load",
    "yaml.UnsafeLoader",
    "jsonpickle.decode",
    "jsonpickle.loads",
    "pandas.read_pickle",
    "torch.package.PackageImporter",
    "numpy.lib.format.read_array",
    "sklearn.externals.joblib.load",
    "keras.saving.legacy",
    "tensorflow.keras.models.load_model",
)
_NETWORK = (
    "socket.",
    "requests.get",
    "requests.post",
    "requests.put",
    "requests.patch",
    "requests.delete",
    "requests.head",
    "requests.request",
    "requests.api.",
    "requests.Session",
    "requests.session",
    "urllib.request.",
    "urllib.urlopen",
    "urllib.urlretrieve",
    "urllib2.",
    "http.client.",
    "httplib.",
    "ftplib.",
    "smtplib.",
    "telnetlib.",
    "aiohttp.",
    "httpx.",
    "paramiko.",
    "websocket.",
    "websockets.",
    "xmlrpc.client.",
    "ssl.get_server_certificate",
    "webbrowser.",
    "torch.hub.load_state_dict_from_url",
    "torch.hub.download_url_to_file",
    "urllib3.",
    "asyncio.open_connection",
    "pycurl.",
    "dns.resolver.",
)
_FILE_WRITE = (
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.rename",
    "os.renames",
    "os.replace",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.write",
    "os.mkfifo",
    "os.putenv",
    "os.unsetenv",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copy",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.copy2",
    "shutil.copyfileobj",
    "shutil.unpack_archive",
    "shutil.make_archive",
    "tarfile.open",
    "zipfile.ZipFile",
    "pathlib.Path.write_text",
    "pathlib.Path.write_bytes",
    "pathlib.Path.unlink",
    "pathlib.Path.touch",
)
_OPENERS = (
    "builtins.open",
    "io.open",
    "codecs.open",
    "os.open",
    "os.fdopen",
    "io.FileIO",
    "_io.FileIO",
    "_io.open",
    "gzip.open",
    "bz2.open",
    "lzma.open",
    "pathlib.Path.open",
)
_WRITE_METHODS = {
    "write_text",
    "write_bytes",
    "unlink",
    "rmdir",
    "symlink_to",
    "hardlink_to",
    "extractall",
    "touch",
    "chmod",
}
_DYNAMIC_METHODS = {
    "exec_module",
    "load_module",
    "runsource",
    "runcode",
    "run_path",
    "run_module",
    "runctx",
    "runeval",
    "find_class",
}
_DECODERS = (
    "base64.",
    "codecs.decode",
    "binascii.",
    "zlib.decompress",
    "gzip.decompress",
    "bz2.decompress",
    "lzma.decompress",
    "bytes.fromhex",
    "bytearray.fromhex",
    "marshal.loads",
    "builtins.chr",
)
_DECODER_METHODS = {
    "fromhex",
    "b64decode",
    "decodebytes",
    "decompress",
    "unhexlify",
    "a2b_base64",
    "urlsafe_b64decode",
}
_OBFUSCATED_DECODE_ARGS = {
    "rot13",
    "rot_13",
    "base64",
    "hex",
    "zlib",
    "bz2",
    "uu",
    "base64_codec",
    "hex_codec",
}
_SENSITIVE_MODULES = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "importlib",
    "pty",
    "socket",
    "ctypes",
    "marshal",
    "pickle",
    "shutil",
    "runpy",
    "code",
    "io",
    "_io",
    "_posixsubprocess",
}
_DANGEROUS_IMPORT_TARGETS = _SENSITIVE_MODULES | {"requests", "urllib", "http", "cffi", "dill", "cloudpickle"}
# modules that other modules re-export (shutil.os, os.path.os, torch.os ...): a chain passing through one is that module
_REEXPORTED = (
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "sys",
    "importlib",
    "pty",
    "shutil",
    "pickle",
    "marshal",
    "socket",
    "ctypes",
    "runpy",
    "_posixsubprocess",
    "io",
)
_SAFE_YAML_LOADERS = {
    "yaml.SafeLoader",
    "yaml.CSafeLoader",
    "yaml.BaseLoader",
    "yaml.CBaseLoader",
    "yaml.loader.SafeLoader",
    "yaml.cyaml.CSafeLoader",
}
_RISKY_ENV = re.compile(
    r"^(?:PYTHON\w*|LD_\w+|DYLD_\w+|PATH|BROWSER|PAGER|EDITOR|VISUAL|SHELL|PERL5OPT|NODE_OPTIONS|"
    r"BASH_ENV|ENV|GIT_\w+|HF_\w+|HUGGINGFACE\w*|TRANSFORMERS\w*)$"
)
# methods loaders call on repository classes (and what those call): effects there happen on load, not later
_LOADER_METHODS = {
    "__init__",
    "__new__",
    "__post_init__",
    "__init_subclass__",
    "__set_name__",
    "__prepare__",
    "__class_getitem__",
    "__call__",
    "__getattr__",
    "__getattribute__",
    "__setstate__",
    "__reduce__",
    "__reduce_ex__",
    "__del__",
    "__enter__",
    "__exit__",
    "__instancecheck__",
    "__subclasscheck__",
    "__missing__",
    "from_pretrained",
    "_from_pretrained",
    "from_config",
    "_from_config",
    "from_dict",
    "post_init",
    "_init_weights",
    "init_weights",
    "tie_weights",
    "_load_pretrained_model",
    "load_state_dict",
    "_load_from_state_dict",
    "register_for_auto_class",
    "forward",
    "generate",
    "prepare_inputs_for_generation",
    "_tokenize",
    "tokenize",
    "encode",
    "decode",
    "apply_chat_template",
    "preprocess",
    "postprocess",
    "_forward",
    "_sanitize_parameters",
}
# decorators that arrange for the function to be called (at exit, on fork, on a signal)
_CALLBACK_DECORATORS = {"atexit.register", "os.register_at_fork", "signal.signal"}
# used as values, these are not calls (isinstance checks, annotations)
_REF_EXEMPT = (
    "types.FunctionType",
    "types.CodeType",
    "pickle.Unpickler",
    "pickle.PickleError",
    "pickle.HIGHEST_PROTOCOL",
    "pickle.DEFAULT_PROTOCOL",
    "subprocess.PIPE",
    "subprocess.DEVNULL",
    "subprocess.STDOUT",
    "subprocess.CalledProcessError",
    "subprocess.TimeoutExpired",
    "subprocess.SubprocessError",
    "subprocess.CompletedProcess",
    "pickle.UnpicklingError",
    "pickle.PicklingError",
)
_HOOKS = {
    "sys.breakpointhook",
    "sys.excepthook",
    "sys.displayhook",
    "sys.meta_path",
    "sys.path_hooks",
    "sys.modules",
    "sys.unraisablehook",
    "sys.audit",
    "sys.settrace",
    "sys.setprofile",
}
# attributes that reach interpreter internals (sandbox-escape chains); the milder ones have benign uses
_INTROSPECTION = {
    "__subclasses__": Severity.HIGH,
    "__globals__": Severity.HIGH,
    "__code__": Severity.HIGH,
    "__builtins__": Severity.HIGH,
    "f_globals": Severity.HIGH,
    "f_builtins": Severity.HIGH,
    "f_locals": Severity.MEDIUM,
    "gi_frame": Severity.MEDIUM,
    "tb_frame": Severity.MEDIUM,
    "f_back": Severity.MEDIUM,
    "__closure__": Severity.MEDIUM,
    "__func__": Severity.LOW,
    "__loader__": Severity.MEDIUM,
}
_BUILTIN_NAMES = set(dir(builtins))
_PY_LINE = re.compile(
    r"^(?:import [A-Za-z_][\w.]*|from \.*[\w.]* import |def [A-Za-z_]\w*\s*\(|class [A-Za-z_]\w*\s*[(:]|async def )",
    re.M,
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
    # functions of sibling modules that run on load here: (level, dotted module, function name)
    external_calls: set[tuple[int, str, str]] = field(default_factory=set)
    imports: set[str] = field(default_factory=set)
    classes: list[str] = field(default_factory=list)
    truncated: bool = False
    limit: str | None = (
        None  # a resource limit stopped the analysis (report LIMIT-EXCEEDED, not a parse error)
    )

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
        elif qual.startswith(p) and (qual == p or "." not in qual[len(p) :] or qual[len(p)] == "."):
            return True
    return False


def _canonical(qual: str) -> str:
    """``shutil.os.system`` -> ``os.system``: the last re-exported sensitive module in the chain names the target."""
    parts = qual.split(".")
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] in _REEXPORTED:
            return ".".join(parts[i:])
    if parts[0] in ("posix", "nt") and len(parts) > 1:
        return ".".join(["os", *parts[1:]])
    if parts[0] == "__builtin__":
        return ".".join(["builtins", *parts[1:]])
    return qual


_DANGER = (_PROCESS, _DYNAMIC, _NATIVE, _DESER, _NETWORK)
_DANGEROUS_METHOD_NAMES = tuple(
    sorted(
        {p.rsplit(".", 1)[-1] for p in (*_PROCESS, *_DYNAMIC, *_DESER) if "." in p and not p.endswith(".")}
        | {"run", "call", "check_output", "Popen"}
    )
)
_CALLABLE_DANGER = (_PROCESS, _DYNAMIC, _DESER)


@dataclass
class _Ctx:
    func_depth: int = 0
    main_guard: bool = False
    loader: bool = False  # inside a function loaders call (or that runs at import)

    @property
    def import_time(self) -> bool:
        return self.func_depth == 0 and not self.main_guard

    @property
    def on_load(self) -> bool:
        return self.import_time or self.loader


_NS_ROOT = "<modules>"  # sys.modules: the key is a module name
_NS_GLOBALS = "<globals>"  # globals()/vars()/locals(): the key is a name of this module


class _Analyzer:
    def __init__(self, tree: ast.Module, exec_depth: int, roots: frozenset[str] = frozenset()) -> None:
        self.tree = tree
        self.exec_depth = exec_depth
        self.extra_roots = roots  # functions other modules call on load
        self.rel_names: dict[str, tuple[int, str, str]] = {}  # local name -> (level, module, name)
        self.aliases: dict[str, str] = {}
        self.consts: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.shadowed: set[str] = set()
        self.tainted: set[str] = set()
        self.blobs: set[str] = set()  # names bound to bytes that ship in the source
        self.reached: set[str] = set()
        self.out = PyAnalysis(parsed=True)
        self._seen: dict[tuple[str, str], PyIssue] = {}
        self._skip: set[int] = set()
        self._callees: set[int] = set()
        self._args: dict[int, str] = {}  # argument node -> qualified callee receiving it

    # -- name resolution -------------------------------------------------
    def _collect_bindings(self) -> None:
        assigns: list[tuple[str, ast.AST]] = []
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
                    for a in node.names:
                        if a.name != "*":
                            self.rel_names[a.asname or a.name] = (node.level, mod, a.name)
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
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    assigns.extend(_pairs(t, node.value))
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                assigns.extend(_pairs(node.target, node.value))
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                # 'for f in (os.system,)': the loop variable takes each element
                if isinstance(node.target, ast.Name) and isinstance(
                    node.iter, (ast.Tuple, ast.List, ast.Set)
                ):
                    assigns.extend((node.target.id, e) for e in node.iter.elts)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        assigns.append((item.optional_vars.id, item.context_expr))
        for _ in range(6):  # alias chains: a = os; b = a.system
            grew = False
            for name, value in assigns:
                s = self.fold(value)
                if s is not None and name not in self.consts:
                    self.consts[name] = s
                    grew = True
                q = self.resolve(value)
                if q is None or self.aliases.get(name) == q:
                    continue
                prev = self.aliases.get(name)
                # keep the most dangerous binding when a name is bound several times
                if prev is None or (_danger_rank(q) > _danger_rank(prev)):
                    self.aliases[name] = q
                    grew = True
            if not grew:
                break

    def fold(self, node: ast.AST | None, depth: int = 0) -> str | None:
        """The string an expression always evaluates to, when it is built from constants only."""
        if node is None or depth > 40:
            return None
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.Name):
            return self.consts.get(node.id)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add):
                a, b = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
                return (
                    a + b if a is not None and b is not None and len(a) + len(b) <= MAX_FOLD_CHARS else None
                )
            if isinstance(node.op, ast.Mod):
                fmt = self.fold(node.left, depth + 1)
                vals = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
                parts = [self.fold(v, depth + 1) if not _int_const(v) else chr(v.value) for v in vals]  # type: ignore[attr-defined]
                if fmt is not None and all(p is not None for p in parts):
                    try:
                        return (fmt % tuple(parts))[:MAX_FOLD_CHARS]
                    except (TypeError, ValueError, OverflowError):
                        return None
            return None
        if isinstance(node, ast.JoinedStr):
            out = []
            for v in node.values:
                s = self.fold(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1)
                if s is None:
                    return None
                out.append(s)
            return "".join(out)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            s = self.fold(node.value, depth + 1)
            sl = node.slice
            bounds = [None if x is None else _signed_int(x) for x in (sl.lower, sl.upper, sl.step)]
            if s is None or any(b is False for b in bounds):
                return None
            try:
                return s[slice(*bounds)]
            except (TypeError, ValueError):
                return None
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "join" and len(node.args) == 1:
                sep = self.fold(f.value, depth + 1)
                items = node.args[0]
                if sep is not None and isinstance(items, (ast.List, ast.Tuple)):
                    parts = [self.fold(e, depth + 1) for e in items.elts]
                    if all(p is not None for p in parts):
                        return sep.join(parts)  # type: ignore[arg-type]
                if (
                    sep is not None
                    and isinstance(items, ast.Call)
                    and self.resolve(items.func) == "builtins.reversed"
                ):
                    inner = self.fold(items.args[0], depth + 1) if items.args else None
                    return sep.join(reversed(inner)) if inner is not None else None
            if (
                isinstance(f, ast.Attribute)
                and f.attr in ("lower", "upper", "strip", "replace", "format")
                and (base := self.fold(f.value, depth + 1)) is not None
            ):
                args = [self.fold(a, depth + 1) for a in node.args]
                if any(a is None for a in args) or node.keywords:
                    return None
                try:
                    return str(getattr(base, f.attr)(*args))[:MAX_FOLD_CHARS]
                except (TypeError, ValueError, IndexError, KeyError):
                    return None
            q = self.resolve(f)
            if q == "builtins.chr" and node.args and _int_const(node.args[0]):
                v = node.args[0].value  # type: ignore[attr-defined]
                return chr(v) if 0 <= v < 0x110000 else None
            if q == "builtins.str" and node.args:
                return self.fold(node.args[0], depth + 1)
        return None

    def _namespace(self, node: ast.AST, depth: int) -> str | None:
        """What a mapping expression is a view of: a module's namespace, sys.modules, or this module's globals."""
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self.resolve(node.value, depth + 1)
        if isinstance(node, ast.Call):
            q = self.resolve(node.func, depth + 1)
            if q in ("builtins.vars", "builtins.globals", "builtins.locals", "builtins.dir"):
                if node.args:
                    return self.resolve(node.args[0], depth + 1)
                return _NS_GLOBALS
            if q in ("inspect.getmembers",) and node.args:
                return self.resolve(node.args[0], depth + 1)
        q = self.resolve(node, depth + 1)
        if q is None:
            return None
        q = _canonical(q)
        if q == "sys.modules":
            return _NS_ROOT
        if q in ("builtins", "builtins.__dict__"):
            return "builtins"
        return None

    def _lookup(self, ns: str, key: str) -> str:
        if ns == _NS_ROOT:
            return key
        if ns == _NS_GLOBALS:
            return self.resolve(ast.Name(id=key, ctx=ast.Load())) or f"builtins.{key}"
        return f"{ns}.{key}"

    def resolve(self, node: ast.AST, depth: int = 0) -> str | None:
        """Dotted name an expression refers to, following imports, assignments, re-exports and lookups."""
        if depth > MAX_RESOLVE_DEPTH:
            return None
        attrs: list[str] = []
        cur = node
        for _ in range(64):
            if isinstance(cur, ast.Attribute) and cur.attr != "__dict__":
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
                    cand = _canonical(f"{mod}.{name}")
                    if any(_match(cand, p) for p in _DANGER):
                        base = cand
                        break
        elif isinstance(cur, ast.Subscript) and not isinstance(cur.slice, ast.Slice):
            ns = self._namespace(cur.value, depth)
            key = self.fold(cur.slice)
            if ns is not None and key is not None:
                base = self._lookup(ns, key)
        elif isinstance(cur, ast.Call):
            base = self._resolve_call_result(cur, depth)
        elif isinstance(cur, (ast.IfExp, ast.BoolOp)):  # 'a if c else b', 'a or b': either may be the value
            options = [cur.body, cur.orelse] if isinstance(cur, ast.IfExp) else cur.values
            found = [q for q in (self.resolve(o, depth + 1) for o in options[:8]) if q]
            base = max(found, key=_danger_rank) if found else None
        elif isinstance(cur, ast.NamedExpr):
            base = self.resolve(cur.value, depth + 1)
        if base is None:
            return None
        return _canonical(".".join([base, *reversed(attrs)]))

    def _resolve_call_result(self, call: ast.Call, depth: int) -> str | None:
        """Calls that return a module or attribute by name: __import__, import_module, getattr, attrgetter, .get."""
        f = call.func
        arg0 = self.fold(call.args[0]) if call.args else None
        if (
            isinstance(f, ast.Attribute)
            and f.attr in ("get", "__getitem__", "pop", "setdefault")
            and arg0 is not None
        ):
            ns = self._namespace(f.value, depth)
            if ns is not None:
                return self._lookup(ns, arg0)
        if (
            isinstance(f, ast.Attribute)
            and f.attr in ("__getattribute__", "__getattr__")
            and arg0 is not None
        ):
            obj = self.resolve(f.value, depth + 1)  # os.__getattribute__('system')
            return f"{obj}.{arg0}" if obj else None
        if isinstance(f, ast.Call):  # operator.attrgetter('system')(os)
            inner = self.resolve(f.func, depth + 1)
            name = self.fold(f.args[0]) if f.args else None
            if inner == "operator.attrgetter" and name and call.args:
                obj = self.resolve(call.args[0], depth + 1)
                return f"{obj}.{name}" if obj else None
        q = self.resolve(f, depth + 1)
        if q in ("builtins.__import__", "importlib.import_module", "importlib.__import__") and arg0:
            return arg0
        if q == "builtins.getattr" and len(call.args) >= 2:
            obj = self.resolve(call.args[0], depth + 1)
            attr = self.fold(call.args[1])
            if obj and attr:
                return f"{obj}.{attr}"
        if q in ("builtins.vars", "builtins.globals", "builtins.locals") and not call.args:
            return None
        return None

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
        issue = PyIssue(
            rule, sev, msg, getattr(node, "lineno", None), {k2: v for k2, v in ev.items() if v is not None}
        )
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
                if any(
                    isinstance(n, ast.Call) and self.resolve(n.func) == "builtins.chr"
                    for n in ast.walk(call.args[0])
                ):
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

    def _embedded_blob(self, expr: ast.AST) -> bool:
        """Bytes that ship inside the source (literals, decoded strings): a payload, not a file the model owns."""
        if self._tainted_expr(expr):
            return True
        return any(
            (isinstance(n, ast.Constant) and isinstance(n.value, bytes) and len(n.value) > 0)
            or (isinstance(n, ast.Name) and n.id in self.blobs)
            for n in ast.walk(expr)
        )

    def _collect_taint(self) -> None:
        assigns = [
            n
            for n in ast.walk(self.tree)
            if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr))
        ]
        for _ in range(4):  # a few rounds of propagation through variables
            grew = False
            for a in assigns:
                value = a.value
                if value is None:
                    continue
                bucket = (
                    self.tainted
                    if self._tainted_expr(value)
                    else self.blobs
                    if self._embedded_blob(value)
                    else None
                )
                if bucket is None:
                    continue
                targets = a.targets if isinstance(a, ast.Assign) else [a.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in bucket:
                            bucket.add(n.id)
                            grew = True
            if not grew:
                break

    # -- what loaders reach ---------------------------------------------------
    def _collect_reach(self) -> None:
        """Functions run on load: loader-called methods, what import-time code calls or registers, transitively."""
        defs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        for n in ast.walk(self.tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs.setdefault(n.name, []).append(n)
        roots = {name for name in defs if name in _LOADER_METHODS or name in self.extra_roots}
        for n in ast.walk(self.tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for d in n.decorator_list:
                    q = self.resolve(d.func if isinstance(d, ast.Call) else d) or ""
                    if q in _CALLBACK_DECORATORS:
                        roots.add(n.name)
        roots |= _called_names(_import_time_nodes(self.tree), defs)
        for n in ast.walk(self.tree):  # '@deco' calls deco at import time
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for deco in n.decorator_list:
                    name = (
                        deco.id
                        if isinstance(deco, ast.Name)
                        else deco.attr
                        if isinstance(deco, ast.Attribute)
                        else None
                    )
                    if name in defs:
                        roots.add(name)
        queue = list(roots)
        self.reached = set(roots)
        while queue and len(self.reached) < 10_000:
            name = queue.pop()
            for fn in defs.get(name, []):
                for callee in _called_names(fn.body, defs):
                    if callee not in self.reached:
                        self.reached.add(callee)
                        queue.append(callee)
        if self.rel_names:
            on_load = [
                *_import_time_nodes(self.tree),
                *[b for n in self.reached for d in defs.get(n, []) for b in d.body],
            ]
            self._external_calls(on_load)

    def _external_calls(self, nodes: list[ast.AST]) -> None:
        """Sibling-module functions called (or handed as callbacks) by code that runs on load."""
        for root in nodes:
            for n in ast.walk(root):
                if not isinstance(n, ast.Call) or len(self.out.external_calls) >= 500:
                    continue
                for ref in (n.func, *n.args, *[k.value for k in n.keywords]):
                    if isinstance(ref, ast.Name) and ref.id in self.rel_names:
                        level, mod, name = self.rel_names[ref.id]
                        self.out.external_calls.add((level, mod, name))
                    elif (
                        isinstance(ref, ast.Attribute)
                        and isinstance(ref.value, ast.Name)
                        and ref.value.id in self.rel_names
                    ):
                        level, mod, name = self.rel_names[ref.value.id]  # 'from . import utils; utils.f()'
                        self.out.external_calls.add((level, f"{mod}.{name}" if mod else name, ref.attr))

    # -- the walk -----------------------------------------------------------
    def run(self) -> PyAnalysis:
        self._collect_bindings()
        self._collect_taint()
        self._collect_reach()
        stack: list[tuple[ast.AST, _Ctx]] = [(self.tree, _Ctx())]
        visited = 0
        while stack:
            node, ctx = stack.pop()
            visited += 1
            if visited > MAX_NODES:
                self.out.truncated = True
                break
            if isinstance(node, ast.Call):
                self._callees.add(id(node.func))
                for a in (*node.args, *[k.value for k in node.keywords]):
                    self._args[id(a.value if isinstance(a, ast.Starred) else a)] = (
                        self.resolve(node.func) or "a call"
                    )
                self._check_call(node, ctx)
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                self._check_assign(node, ctx)
            for ann in _annotations(node):  # annotations name types; they do not call them
                self._skip.add(id(ann))
            if isinstance(node, (ast.Attribute, ast.Subscript, ast.Name)) and isinstance(node.ctx, ast.Load):
                self._check_reference(node, ctx)
            if isinstance(node, ast.Attribute) and node.attr in _INTROSPECTION:
                self.add(
                    "PY-DANGEROUS-CALL",
                    _INTROSPECTION[node.attr],
                    f"introspection escape via {node.attr}",
                    node,
                    f"attr:{node.attr}",
                    category="introspection",
                )
            stack.extend(self._children(node, ctx))
        return self.out

    def _children(self, node: ast.AST, ctx: _Ctx) -> Iterator[tuple[ast.AST, _Ctx]]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = _Ctx(ctx.func_depth + 1, ctx.main_guard, ctx.loader or node.name in self.reached)
            for d in node.decorator_list:
                yield d, ctx
            for d in (*node.args.defaults, *[x for x in node.args.kw_defaults if x is not None]):
                yield d, ctx
            for b in node.body:
                yield b, inner
            return
        if isinstance(node, ast.Lambda):
            yield node.body, _Ctx(ctx.func_depth + 1, ctx.main_guard, ctx.loader)
            return
        if isinstance(node, ast.If) and ctx.func_depth == 0 and _is_main_guard(node.test):
            guarded = _Ctx(ctx.func_depth, True, ctx.loader)
            for b in node.body:
                yield b, guarded
            for b in node.orelse:
                yield b, ctx
            return
        for child in ast.iter_child_nodes(node):
            yield child, ctx

    def _where(self, ctx: _Ctx) -> str:
        if ctx.import_time:
            return "at import time"
        if ctx.main_guard and not ctx.func_depth:
            return "under the __main__ guard"
        return "in a function loaders call" if ctx.loader else "in a function"

    def _on_load(self, ctx: _Ctx, what: str, node: ast.AST, key: str, **ev: Any) -> None:
        """An effect that happens when the module is imported or the model loaded."""
        if ctx.import_time:
            self.add(
                "PY-IMPORT-TIME-SIDE-EFFECT",
                Severity.HIGH,
                f"{what} when the module is imported",
                node,
                key,
                **ev,
            )
        elif ctx.loader:  # medium here; high once the file is known to be run by a loader (escalate_loaded)
            self.add(
                "PY-LOAD-TIME-SIDE-EFFECT", Severity.MEDIUM, f"{what} in code loaders call", node, key, **ev
            )

    def _check_reference(self, node: ast.AST, ctx: _Ctx) -> None:
        """A dangerous callable used as a value: stored, aliased, or handed to partial/map/Thread/atexit/..."""
        inner = getattr(node, "value", None)
        if inner is not None:
            self._skip.add(id(inner))
        if id(node) in self._skip or id(node) in self._callees:
            return
        q = self.resolve(node)
        if q is None or _match(q, _REF_EXEMPT) or not any(_match(q, p) for p in _CALLABLE_DANGER):
            if (
                isinstance(node, ast.Subscript)
                and not isinstance(node.slice, ast.Slice)
                and self.fold(node.slice) is None
            ):
                self._check_computed_lookup(node, ctx)
            return
        receiver = self._args.get(id(node))
        if _is_module_name(q):
            return
        sev = Severity.CRITICAL if receiver is not None and ctx.on_load else Severity.HIGH
        how = f"passed to {receiver}()" if receiver else "used as a value"
        self.add(
            "PY-DANGEROUS-CALL",
            sev,
            f"{q} {how} {self._where(ctx)}: called indirectly",
            node,
            f"ref:{q}",
            category="indirect-call",
            call=q,
            receiver=receiver,
        )

    def _check_computed_lookup(self, node: ast.Subscript, ctx: _Ctx) -> None:
        ns = self._namespace(node.value, 0)
        if ns is None or _is_own_name(node.slice):
            return
        sev = Severity.MEDIUM if ns == _NS_GLOBALS else Severity.HIGH
        shown = {"<modules>": "sys.modules", "<globals>": "globals()"}.get(ns, f"{ns} namespace")
        self.add(
            "PY-DANGEROUS-CALL",
            sev,
            f"computed lookup in {shown} {self._where(ctx)}",
            node,
            f"lookup:{ns}",
            category="obfuscation",
        )

    def _check_assign(self, node: ast.AST, ctx: _Ctx) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
        for t in targets:
            if isinstance(t, ast.Subscript) and _canonical(self.resolve(t.value) or "") == "os.environ":
                self._env_write(t.slice, node, ctx)
            elif isinstance(t, ast.Subscript):
                ns = self._namespace(t.value, 0)
                if ns in (_NS_ROOT, "builtins"):
                    key = self.fold(t.slice)
                    shown = "sys.modules" if ns == _NS_ROOT else "builtins"
                    self.add(
                        "PY-DANGEROUS-CALL",
                        Severity.MEDIUM if _is_own_name(t.slice) else Severity.HIGH,
                        f"installs {key or '<computed>'} into {shown} "
                        f"{self._where(ctx)} (shadows what later imports get)",
                        node,
                        f"patch:{shown}:{key}",
                        category="monkeypatch",
                        target=key,
                    )
            elif isinstance(t, ast.Attribute):
                q = self.resolve(t)
                if q and q.split(".")[0] in ("sys", "builtins", "os") and q not in ("sys.path",):
                    high = q.startswith(("builtins.", "os.")) or q in _HOOKS
                    self.add(
                        "PY-DANGEROUS-CALL",
                        Severity.HIGH if high else Severity.MEDIUM,
                        f"replaces {q} {self._where(ctx)}",
                        node,
                        f"patch:{q}",
                        category="monkeypatch",
                        target=q,
                    )

    def _env_write(self, key_node: ast.AST | None, node: ast.AST, ctx: _Ctx) -> None:
        key = self.fold(key_node)
        risky = key is None or bool(_RISKY_ENV.match(key))
        sev = Severity.HIGH if risky else Severity.LOW
        self.add(
            "PY-DANGEROUS-CALL",
            sev,
            f"sets environment variable {key or '<computed>'} {self._where(ctx)}",
            node,
            f"env:{key}",
            category="environment",
            variable=key,
        )
        if risky:
            self._on_load(
                ctx,
                f"sets environment variable {key or '<computed>'}",
                node,
                f"env:{key}",
                category="environment",
            )

    def _check_call(self, call: ast.Call, ctx: _Ctx) -> None:
        q = self.resolve(call.func)
        where = self._where(ctx)
        trc = next((k.value for k in call.keywords if k.arg == "trust_remote_code"), None)
        if trc is not None and _truthy(trc):
            literal = isinstance(trc, ast.Constant)  # a passed-through flag may be True at run time: medium
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.HIGH if literal else Severity.MEDIUM,
                f"{q or 'a call'}(trust_remote_code={'True' if literal else '<passed through>'}) {where}: "
                "may run code from another repository, unscanned",
                call,
                "remote-code",
                category="remote-code",
                call=q,
            )
        if q is None:
            self._check_method(call, ctx)
            return
        decoded = any(self._tainted_expr(a) for a in (*call.args, *[k.value for k in call.keywords]))
        if _match(q, _PROCESS):
            sev = Severity.CRITICAL if (ctx.on_load or decoded) else Severity.HIGH
            self.add(
                "PY-DANGEROUS-CALL",
                sev,
                f"process execution {q}() {where}",
                call,
                f"proc:{q}",
                category="process",
                call=q,
                argument=_arg_preview(call),
                decoded=decoded or None,
            )
            self._on_load(ctx, f"runs {q}()", call, f"proc:{q}", category="process", call=q)
            return
        if q in ("yaml.load", "yaml.load_all"):
            loader = (
                call.args[1]
                if len(call.args) >= 2
                else next((k.value for k in call.keywords if k.arg == "Loader"), None)
            )
            lq = self.resolve(loader) if loader is not None else None
            if lq not in _SAFE_YAML_LOADERS:
                self.add(
                    "PY-DANGEROUS-CALL",
                    Severity.HIGH,
                    f"{q}() with {lq or 'a default or computed'} Loader "
                    f"constructs arbitrary Python objects {where}",
                    call,
                    f"deser:{q}",
                    category="deserialization",
                    call=q,
                    loader=lq,
                )
            return
        if q == "yaml.full_load" or q == "yaml.full_load_all":
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.MEDIUM,
                f"{q}() (FullLoader) {where}",
                call,
                f"deser:{q}",
                category="deserialization",
                call=q,
            )
            return
        if q == "logging.config.dictConfig":
            arg = call.args[0] if call.args else None
            literal = isinstance(arg, ast.Dict) and not any(
                _const_str(k) == "()" for n in ast.walk(arg) if isinstance(n, ast.Dict) for k in n.keys
            )
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.MEDIUM if literal else Severity.HIGH,
                f"logging.config.dictConfig() {'' if literal else 'with factories or a computed config '}{where}"
                " (its '()' keys call arbitrary callables)",
                call,
                "dyn:dictConfig",
                category="dynamic-code",
                call=q,
            )
            return
        if _match(q, _DYNAMIC):
            self._check_dynamic(call, q, ctx, decoded, where)
            return
        if _match(q, _NATIVE):
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.HIGH,
                f"native code access {q}() {where}",
                call,
                f"native:{q}",
                category="native",
                call=q,
            )
            return
        blob = any(self._embedded_blob(a) for a in (*call.args, *[k.value for k in call.keywords]))
        if _match(q, _DESER):
            sev = Severity.CRITICAL if blob else Severity.HIGH
            self.add(
                "PY-DANGEROUS-CALL",
                sev,
                f"deserializer {q}() can execute code {where}"
                + ("; its input ships inside the source (embedded payload)" if blob else ""),
                call,
                f"deser:{q}",
                category="deserialization",
                call=q,
                embedded=blob or None,
            )
            return
        if q in ("numpy.load",) and any(k.arg == "allow_pickle" and _truthy(k.value) for k in call.keywords):
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.CRITICAL if blob else Severity.HIGH,
                f"numpy.load(allow_pickle=True) {where}",
                call,
                "deser:numpy",
                category="deserialization",
                call=q,
            )
            return
        if q in ("torch.load", "torch.serialization.load"):
            wo = next((k.value for k in call.keywords if k.arg == "weights_only"), None)
            if wo is not None and _truthy(wo):
                return
            sev = Severity.CRITICAL if blob else (Severity.HIGH if wo is not None else Severity.LOW)
            self.add(
                "PY-DANGEROUS-CALL",
                sev,
                f"torch.load {'of an embedded payload ' if blob else ''}"
                f"{'with weights_only=False ' if wo is not None and not _truthy(wo) else 'without weights_only=True '}"
                f"{where} (unpickles arbitrary objects)",
                call,
                "deser:torch",
                category="deserialization",
                call=q,
            )
            return
        if _match(q, _NETWORK):
            if ctx.on_load:
                self._on_load(ctx, f"network access {q}()", call, f"net:{q}", category="network", call=q)
            else:
                self.add(
                    "PY-NETWORK-CALL",
                    Severity.MEDIUM,
                    f"network access {q}() {where}",
                    call,
                    f"net:{q}",
                    category="network",
                    call=q,
                )
            return
        if q == "builtins.getattr" and len(call.args) >= 2 and self.fold(call.args[1]) is None:
            obj = self.resolve(call.args[0])
            if obj and obj.split(".")[0] in _SENSITIVE_MODULES:
                self.add(
                    "PY-DANGEROUS-CALL",
                    Severity.HIGH,
                    f"computed attribute lookup on {obj} {where}",
                    call,
                    f"getattr:{obj}",
                    category="obfuscation",
                    call=q,
                )
            return
        if q == "builtins.setattr" and len(call.args) >= 2:
            obj = self.resolve(call.args[0])
            if obj and obj.split(".")[0] in ("sys", "builtins", "os"):
                self.add(
                    "PY-DANGEROUS-CALL",
                    Severity.HIGH,
                    f"setattr on {obj} {where}",
                    call,
                    f"patch:{obj}",
                    category="monkeypatch",
                )
            return
        if q == "operator.methodcaller" and call.args:
            name = self.fold(call.args[0])
            if name is None or name.startswith(_DANGEROUS_METHOD_NAMES) or name in _DYNAMIC_METHODS:
                self.add(
                    "PY-DANGEROUS-CALL",
                    Severity.HIGH,
                    f"operator.methodcaller({name or '<computed>'!r}) {where}",
                    call,
                    f"methodcaller:{name}",
                    category="indirect-call",
                    call=q,
                )
            return
        if q in ("os.environ.update", "os.environ.setdefault", "os.environ.__setitem__", "os.putenv"):
            key = call.args[0] if call.args and not isinstance(call.args[0], ast.Dict) else None
            if call.args and isinstance(call.args[0], ast.Dict):
                for k in call.args[0].keys:
                    self._env_write(k, call, ctx)
            elif key is not None:
                self._env_write(key, call, ctx)
            for kw in call.keywords:
                self._env_write(ast.Constant(kw.arg) if kw.arg else None, call, ctx)
            return
        if ctx.on_load:
            if _match(q, _OPENERS) and _write_mode(call, 1):
                self._on_load(
                    ctx, f"opens a file for writing ({q})", call, f"write:{q}", category="file-write", call=q
                )
            elif _match(q, _FILE_WRITE):
                self._on_load(
                    ctx, f"file-system change {q}()", call, f"write:{q}", category="file-write", call=q
                )

    def _check_method(self, call: ast.Call, ctx: _Ctx) -> None:
        """Methods on values we cannot name (Path(...).write_text, loader.exec_module, console.runsource)."""
        if not isinstance(call.func, ast.Attribute):
            return
        attr = call.func.attr
        if attr in _DYNAMIC_METHODS:
            decoded = any(self._tainted_expr(a) for a in call.args)
            self.add(
                "PY-DANGEROUS-CALL",
                Severity.CRITICAL if decoded else Severity.HIGH,
                f".{attr}() runs code {self._where(ctx)}",
                call,
                f"dyn:.{attr}",
                category="dynamic-code",
                call=attr,
            )
            return
        if not ctx.on_load:
            return
        if attr in _WRITE_METHODS:
            self._on_load(ctx, f"file-system write (.{attr})", call, f"write:{attr}", category="file-write")
        elif attr == "open" and _write_mode(call, 0):
            self._on_load(ctx, "opens a file for writing (.open)", call, "write:open", category="file-write")

    def _check_dynamic(self, call: ast.Call, q: str, ctx: _Ctx, decoded: bool, where: str) -> None:
        name = q.rsplit(".", 1)[-1]
        arg0 = call.args[0] if call.args else None
        const = self.fold(arg0) if arg0 is not None else None
        if name in ("import_module", "__import__"):
            if const is not None and const.startswith("."):  # importlib.import_module(".evil", __package__)
                level = len(const) - len(const.lstrip("."))
                self.out.relative_imports.append((level, const[level:]))
            if const is not None and const.split(".")[0] not in _DANGEROUS_IMPORT_TARGETS and not decoded:
                self.add(
                    "PY-DANGEROUS-CALL",
                    Severity.LOW,
                    f"dynamic import of {const!r} {where}",
                    call,
                    f"dyn:{q}:{const}",
                    category="dynamic-import",
                    call=q,
                    module=const,
                )
                return
            sev = Severity.CRITICAL if decoded else Severity.HIGH
            self.add(
                "PY-DANGEROUS-CALL",
                sev,
                f"dynamic import {q}({const or '<computed>'}) {where}",
                call,
                f"dyn:{q}:{const}",
                category="dynamic-import",
                call=q,
                module=const,
            )
            return
        sev = (
            Severity.CRITICAL
            if decoded or (ctx.on_load and name in ("eval", "exec", "execfile"))
            else Severity.HIGH
        )
        msg = f"{'decoded data passed to ' if decoded else ''}{q}() {where}"
        nested: list[str] = []
        if const is not None and self.exec_depth < MAX_EXEC_STRING_DEPTH:
            inner = analyze_python(const, _exec_depth=self.exec_depth + 1)
            for i in inner.issues:
                nested.append(i.message)
                if i.severity > sev:
                    sev = i.severity
        self.add(
            "PY-DANGEROUS-CALL",
            sev,
            msg,
            call,
            f"dyn:{q}",
            category="dynamic-code",
            call=q,
            decoded=decoded or None,
            argument=_arg_preview(call),
            inner=nested[:5] or None,
        )
        if name in (
            "eval",
            "exec",
            "execfile",
            "run_path",
            "run_module",
            "timeit",
            "run",
            "runctx",
            "breakpoint",
        ):
            self._on_load(ctx, f"runs {q}()", call, f"dyn:{q}", category="dynamic-code", call=q)


def _pairs(target: ast.AST, value: ast.AST) -> list[tuple[str, ast.AST]]:
    """(name, value) bindings of one assignment, pairing tuple targets with tuple values."""
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if (
        isinstance(target, (ast.Tuple, ast.List))
        and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts)
    ):
        out: list[tuple[str, ast.AST]] = []
        for t, v in zip(target.elts, value.elts, strict=True):
            out.extend(_pairs(t, v))
        return out
    return []


def _annotations(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.AnnAssign):
        return [node.annotation]
    if isinstance(node, ast.arg) and node.annotation is not None:
        return [node.annotation]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
        return [node.returns]
    return []


def _is_own_name(node: ast.AST) -> bool:
    """``sys.modules[__name__]``: the module itself (lazy-module idiom), not a lookup by a hidden name."""
    return isinstance(node, ast.Name) and node.id in ("__name__", "__package__", "__spec__")


def _danger_rank(q: str) -> int:
    for rank, cats in ((3, _PROCESS), (3, _DYNAMIC), (2, _DESER), (2, _NATIVE), (1, _NETWORK)):
        if _match(q, cats):
            return rank
    return 0


def _is_module_name(q: str) -> bool:
    return q in _SENSITIVE_MODULES or q in ("subprocess", "runpy", "ctypes")


def _import_time_nodes(tree: ast.Module) -> list[ast.AST]:
    """Statements that run on import: module and class bodies, decorators and defaults; not function bodies."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(n.decorator_list)
            stack.extend(n.args.defaults)
            stack.extend(x for x in n.args.kw_defaults if x is not None)
            continue
        if isinstance(n, ast.ClassDef):
            stack.extend(n.decorator_list)
            stack.extend(n.bases)
            stack.extend(k.value for k in n.keywords)
            stack.extend(n.body)
            continue
        if isinstance(n, ast.If) and _is_main_guard(n.test):
            stack.extend(n.orelse)
            continue
        if isinstance(n, ast.Lambda):
            continue
        out.append(n)
        stack.extend(c for c in ast.iter_child_nodes(n) if isinstance(c, ast.stmt))
    return out


_Def = TypeVar("_Def", bound=ast.AST)


def _called_names(nodes: Iterable[ast.AST], defs: dict[str, list[_Def]]) -> set[str]:
    """Names of this file's functions that ``nodes`` call or hand to another callable (callbacks, targets)."""
    out: set[str] = set()
    for root in nodes:
        for n in ast.walk(root):
            if isinstance(n, ast.Call):
                f = n.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name in defs:
                    out.add(name)
                for a in (*n.args, *[k.value for k in n.keywords]):
                    ref = (
                        a.id if isinstance(a, ast.Name) else a.attr if isinstance(a, ast.Attribute) else None
                    )
                    if ref in defs:
                        out.add(ref)
            elif isinstance(n, ast.ClassDef):
                out.update(m for m in ("__init_subclass__", "__set_name__", "__prepare__") if m in defs)
    return out


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _int_const(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool)


def _int_literal(node: ast.AST) -> int | None:
    """The value of an integer literal (not a bool), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    return None


def _signed_int(node: ast.AST) -> int | bool:
    """The value of an integer literal, or of a negated one (``-1``); False when it is neither."""
    value = _int_literal(node)
    return value if value is not None else _neg_int(node)


def _neg_int(node: ast.AST) -> int | bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _int_const(node.operand):
        return -node.operand.value  # type: ignore[attr-defined]
    return False


def _truthy(node: ast.AST) -> bool:
    return not (isinstance(node, ast.Constant) and not node.value)


def _is_reverse(s: ast.Slice) -> bool:
    step = s.step
    return (
        isinstance(step, ast.UnaryOp)
        and isinstance(step.op, ast.USub)
        and isinstance(step.operand, ast.Constant)
    )


def _is_main_guard(test: ast.AST) -> bool:
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__":
        return any(_const_str(c) == "__main__" for c in test.comparators)
    return False


def _write_mode(call: ast.Call, index: int) -> bool:
    """Does this open() create, truncate or append? ``index``: where the mode/flags argument sits
    (second for open/io.FileIO/os.open, first for Path(...).open)."""
    mode: ast.AST | None = call.args[index] if len(call.args) > index else None
    for k in call.keywords:
        if k.arg in ("mode", "flags"):
            mode = k.value
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return not isinstance(mode, ast.Constant)  # computed mode or os.O_* flags: assume the worst


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


def analyze_python(
    source: bytes | str,
    *,
    max_bytes: int = MAX_SOURCE_BYTES,
    roots: frozenset[str] = frozenset(),
    _exec_depth: int = 0,
) -> PyAnalysis:
    """Parse ``source`` (never executing it) and report dangerous calls and import-time effects."""
    if len(source) > max_bytes:
        return PyAnalysis(
            parsed=False,
            error=f"source larger than {max_bytes} bytes not analyzed",
            limit="python_source_bytes",
        )
    if too_many_tokens(source):
        return PyAnalysis(
            parsed=False,
            error=f"more than {MAX_TOKENS} tokens; not parsed (memory bound)",
            limit="python_tokens",
        )
    try:
        tree = ast.parse(source, type_comments=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return PyAnalysis(parsed=False, error=f"{type(exc).__name__}: {exc}"[:300])
    try:
        return _Analyzer(tree, _exec_depth, roots).run()
    except RecursionError:
        return PyAnalysis(parsed=False, error="syntax tree too deeply nested to analyze")


# model code a loader imports has no business opening connections, wherever in the file
LOADED_ESCALATION = {"PY-LOAD-TIME-SIDE-EFFECT": Severity.HIGH, "PY-NETWORK-CALL": Severity.HIGH}


def escalate_loaded(findings: Iterable[Any]) -> None:
    """Findings of a file a loader runs: effects in the functions loaders call happen on load, so they block."""
    for f in findings:
        sev = LOADED_ESCALATION.get(f.rule_id)
        if sev is not None and f.severity < sev:
            f.severity = sev


def too_many_tokens(source: bytes | str, limit: int = MAX_TOKENS) -> bool:
    """Would parsing this source exceed the memory bound? Streams the tokenizer (no tree) and stops at ``limit``."""
    if len(source) < limit // 2:  # every token but INDENT/DEDENT takes a byte; DEDENTs are fewer than lines
        return False
    tokens: Iterator[tokenize.TokenInfo]
    if isinstance(source, bytes):
        tokens = tokenize.tokenize(io.BytesIO(source).readline)
    else:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    n = 0
    try:
        for _ in tokens:
            n += 1
            if n > limit:
                return True
    except (tokenize.TokenError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return False  # not Python the tokenizer accepts: ast.parse reports the error
    return False


def looks_like_python(text: str) -> bool:
    """Cheap pre-check before parsing: Python statements at the start of lines, or a python shebang."""
    return bool(_PY_LINE.search(text)) or (text.startswith("#!") and "python" in text.split("\n", 1)[0])
