"""TorchScript archives (``torch.jit.save``): a torch zip that also carries code.

``torch.jit.load`` (and ``torch.load`` on such a file in torch <= 2.5.1,
CVE-2025-32434) compiles and runs the TorchScript in ``code/``; that code can
call any registered operator, including file access (``torch.from_file``) and
custom operators that need native libraries. The archive's pickles and storages
get the same checks as any torch zip; the code is listed as evidence.
"""

from __future__ import annotations

import re

from ...findings import Severity
from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext
from ..zip.listing import list_names, looks_like_zip
from ..zip.members import open_member
from .torch_zip import TorchZip, inspect_torch_zip, torch_roots

MAX_CODE_BYTES = 16 << 20  # per archive; the rest of the code is reported as not listed
# serialized TorchScript resolves `ops` and `torch.ops` alike (import_source.cpp's environment), and names
# custom classes `__torch__.torch.classes.NS.NAME`: a bare `ops.NS.NAME` must be seen too
_OPS = re.compile(r"(?:(?<![\w.])|(?<=__torch__\.))(?:torch\.)?(ops|classes)\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_TORCH_CALL = re.compile(r"\btorch\.((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\s*\(")
_BUILTIN_NAMESPACES = {"aten", "prim", "prims", "quantized", "_quantized", "quantized_decomposed", "profiler"}
# code whose operator calls all stay in these namespaces computes on tensors only: information, not a warning
_PLAIN_NAMESPACES = {"aten", "prim"}
# operators that reach the file system or load further serialized content
_DANGEROUS_FUNCS = {"from_file", "load", "save", "_load_for_mobile", "hub"}
_DANGEROUS_ATEN = {"from_file", "_load", "load", "save"}


def _sniff(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    names = list_names(reader)
    roots = torch_roots(names)
    return any(
        n.startswith(f"{r}/code/") or n == f"{r}/constants.pkl" or n == f"{r}/bytecode.pkl"
        for r in roots
        for n in names
    )


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    tz = inspect_torch_zip(reader, ctx, torchscript=True)
    if tz is not None:
        analyze_code(reader, tz, ctx)


def analyze_code(reader: Reader, tz: TorchZip, ctx: InspectContext) -> None:
    """TORCHSCRIPT-CODE once per archive (with the operator calls found) and TORCHSCRIPT-DANGEROUS-OP per risky call."""
    ops: dict[str, str] = {}  # call -> first file
    dangerous: dict[str, str] = {}
    budget = MAX_CODE_BYTES
    complete = True  # every code file was read: only then can the code be called plain
    files = [e for e in tz.code_entries if e.name.endswith(".py")]
    for e in files:
        if budget <= 0:
            ctx.partial("TorchScript code beyond the size cap was not listed")
            complete = False
            break
        sub = open_member(reader, e, ctx) if e.uncompressed_size <= budget else None
        if sub is None:
            complete = False
            continue
        text = sub.read(0, min(sub.size, budget)).decode("utf-8", "replace")
        budget -= sub.size
        for call, is_bad in _calls(text):
            ops.setdefault(call, e.name)
            if is_bad:
                dangerous.setdefault(call, e.name)
    plain = complete and not dangerous and all(_plain(call) for call in ops)
    ctx.add(
        "TORCHSCRIPT-CODE",
        f"TorchScript archive with {len(files)} code file(s) that run on load"
        + ("; only aten/prim operators" if plain else "")
        + (f"; operator calls: {', '.join(sorted(ops)[:10])}" if ops else ""),
        severity=Severity.INFO if plain else None,
        evidence={"code_files": [e.name[:200] for e in files[:20]], "calls": sorted(ops)[:50]},
    )
    for call, where in sorted(dangerous.items()):
        ctx.add(
            "TORCHSCRIPT-DANGEROUS-OP",
            f"TorchScript code in {where!r} calls {call} (file-system access or a custom native operator)",
            evidence={"call": call, "file": where[:200]},
        )


def _plain(call: str) -> bool:
    """A call TorchScript lowers to an aten/prim operator: `torch.NAME(...)` or `torch.ops.{aten,prim}.NAME`."""
    parts = call.split(".")
    if len(parts) < 2 or " " in call:
        return False
    if parts[1] in ("ops", "classes"):
        return parts[1] == "ops" and parts[2] in _PLAIN_NAMESPACES
    return True


# strings (kept), comments and line continuations (dropped): the TorchScript lexer skips whitespace and
# comments between tokens, so `torch . from_file(`, `torch.\\\n from_file(` and a comment inside brackets
# between `torch.` and `from_file` are the same call
_STRING_OR_COMMENT = re.compile(
    r"('''[\s\S]*?'''"
    r'|"""[\s\S]*?"""'
    r"|'(?:[^'\\\n]|\\[\s\S])*'"
    r'|"(?:[^"\\\n]|\\[\s\S])*")'
    r"|\#[^\n]*"
    r"|\\\r?\n"
)
_SPACE = re.compile(r"\s+")


def _close_dots(text: str) -> str:
    # one space per run first: `\s*\.` tried at every offset of a long blank run is quadratic
    return _SPACE.sub(" ", text).replace(" .", ".").replace(". ", ".")


def normalize(text: str) -> str:
    """Source with comments and continuations removed and the whitespace around dots closed up."""
    return _close_dots(_STRING_OR_COMMENT.sub(lambda m: m.group(1) or " ", text))


# Module values of serialized TorchScript's environment (import_source.cpp): `torch` (the aten builtins;
# `torch.autograd` is aten again), `ops`, `ops.NS`, `torch.ops[.NS]`, `torch.classes[.NS]`. Bound to a name or
# handed to getattr they reach any operator under another spelling (`T = torch; T.from_file(...)`,
# `getattr(ops.aten, "from_file")(...)`), and a function bound to a name (`f = torch.from_file; f(...)`) is called
# without `torch.from_file(` ever being written: every reference is judged, called or not, and a module used as a
# value is dangerous whatever it is used for.
_REF = re.compile(r"(?<![\w.])(torch|ops|__torch__)((?:\.[A-Za-z_]\w*)*)")
_ALIAS = re.compile(r"(?<![=!<>])=\s*(?:torch|ops)\b(?!\s*\.)|\bgetattr\s*\(\s*(?:torch|ops|__torch__)\b")


def _references(text: str) -> list[tuple[str, bool]]:
    """Every `torch`/`ops` reference of code with strings and comments blanked (see _REF)."""
    out: list[tuple[str, bool]] = []
    for m in _REF.finditer(text):
        root, rest = m.group(1), [p for p in m.group(2).split(".") if p]
        if root == "__torch__":
            if rest[:2] != ["torch", "classes"]:
                continue  # a class type of the archive itself
            parts = rest
        elif root == "ops":
            parts = ["torch", "ops", *rest]
        else:
            parts = ["torch", *rest]
        while len(parts) > 1 and parts[1] == "autograd":
            del parts[1]
        call = ".".join(parts)
        if len(parts) == 1 or (parts[1] in ("ops", "classes") and len(parts) < 4):
            out.append((f"{call} (module used as a value)", True))
        elif parts[1] in ("ops", "classes"):
            ns, name = parts[2], parts[3]
            bad = (
                parts[1] == "classes"
                or ns not in _BUILTIN_NAMESPACES
                or (ns == "aten" and name in _DANGEROUS_ATEN)
            )
            out.append((".".join(parts[:4]), bad))
        else:
            out.append((call, parts[1] in _DANGEROUS_FUNCS or parts[-1] in {"from_file", "load", "save"}))
    return out


def _calls(text: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    blanked = _close_dots(_STRING_OR_COMMENT.sub(lambda m: '""' if m.group(1) else " ", text))
    out.extend(_references(blanked))
    # the raw text too (a string this stripper misreads): a module bound to a name or handed to getattr
    for m in _ALIAS.finditer(_close_dots(text.replace("\\\n", " "))):
        out.append((f"{_SPACE.sub(' ', m.group(0)).lstrip('= ')[:40]} (module used as a value)", True))
    # both views: comments stripped (a comment between `torch.` and `from_file`), and only the blanks closed
    # up (so text this stripper takes for a comment but the TorchScript lexer does not is still read)
    text = normalize(text) + "\n" + _close_dots(text.replace("\\\n", " "))
    for m in _OPS.finditer(text):
        kind, ns, name = m.groups()
        call = f"torch.{kind}.{ns}.{name}"
        bad = kind == "classes" or ns not in _BUILTIN_NAMESPACES or (ns == "aten" and name in _DANGEROUS_ATEN)
        out.append((call, bad))
    for m in _TORCH_CALL.finditer(text):
        path = m.group(1)
        if path.startswith(("ops.", "classes.")):
            continue
        first = path.split(".")[0]
        last = path.split(".")[-1]
        bad = first in _DANGEROUS_FUNCS or last in {"from_file", "load", "save"}
        out.append((f"torch.{path}", bad))
    return out


TORCHSCRIPT = FormatHandler(
    "torchscript",
    _sniff,
    _inspect,
    family="pickle",
    claims=(".ptl", ".torchscript"),
    can_carry_code=True,
)
