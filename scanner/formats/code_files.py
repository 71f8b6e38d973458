"""Files that are code, not model data: native binaries, Python source, scripts, notebooks, LFS pointers.

Model repositories ship these next to weights. None is "unknown": each is
recognized by content so that a native library named ``.bin`` or a Python
dropper named ``.txt`` is judged as what it is. Python is analyzed with the
``ast`` module only (scanner.analysis.python_ast); nothing is imported or run.
"""

from __future__ import annotations

import json
import re
import struct
from typing import TYPE_CHECKING, Any

from ..findings import Severity
from ..io.reader import Reader
from .interface import FormatHandler, InspectContext

if TYPE_CHECKING:
    from ..analysis.python_ast import PyAnalysis

MAX_NOTEBOOK_BYTES = 64 << 20
MAX_SCRIPT_BYTES = 4 << 20
LFS_MAX_BYTES = 1024

# ---------------------------------------------------------------------------- native binaries

_MACHO = {
    b"\xfe\xed\xfa\xce": "Mach-O 32 BE",
    b"\xce\xfa\xed\xfe": "Mach-O 32",
    b"\xfe\xed\xfa\xcf": "Mach-O 64 BE",
    b"\xcf\xfa\xed\xfe": "Mach-O 64",
}
_ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core"}
_ELF_MACHINES = {3: "x86", 40: "arm", 62: "x86-64", 183: "aarch64", 243: "riscv", 8: "mips", 21: "ppc64"}
_PE_MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0xAA64: "arm64", 0x1C0: "arm"}


def native_kind(head: bytes, reader: Reader | None = None) -> dict[str, Any] | None:
    """Describe an ELF/PE/Mach-O header, or None. PE needs its 'PE\\0\\0' header to count (MZ alone is text-like)."""
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        bits = {1: 32, 2: 64}.get(head[4])
        endian = "<" if head[5] == 1 else ">"
        if bits is None or head[5] not in (1, 2):
            return None
        etype, machine = struct.unpack(endian + "HH", head[16:20])
        return {
            "kind": "ELF",
            "bits": bits,
            "type": _ELF_TYPES.get(etype, str(etype)),
            "machine": _ELF_MACHINES.get(machine, str(machine)),
        }
    if head[:2] == b"MZ" and len(head) >= 0x40:
        (pe_off,) = struct.unpack("<I", head[0x3C:0x40])
        if pe_off < 0x40 or pe_off > (1 << 20):
            return None
        sig = (
            head[pe_off : pe_off + 24]
            if pe_off + 24 <= len(head)
            else (reader.read(pe_off, 24) if reader else b"")
        )
        if sig[:4] != b"PE\x00\x00" or len(sig) < 24:
            return None
        machine, _n, _t, _p, _s, _o, chars = struct.unpack("<HHIIIHH", sig[4:24])
        return {"kind": "PE", "machine": _PE_MACHINES.get(machine, hex(machine)), "dll": bool(chars & 0x2000)}
    if head[:4] in _MACHO:
        return {"kind": _MACHO[head[:4]]}
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca") and len(head) >= 8:
        # fat Mach-O; a Java class file shares the magic but has its version (>= 45) where nfat_arch sits
        (n,) = struct.unpack(">I" if head[0] == 0xCA else "<I", head[4:8])
        if 0 < n <= 30:
            return {"kind": "Mach-O universal", "architectures": n}
    return None


def _sniff_native(head: bytes, reader: Reader) -> bool:
    return native_kind(head, reader) is not None


def _inspect_native(reader: Reader, ctx: InspectContext) -> None:
    info = native_kind(reader.head(4096), reader) or {}
    ctx.add(
        "HF-NATIVE-LIBRARY",
        f"native {info.get('kind', 'binary')} code ({info.get('type', 'binary')}): runs with full "
        "privileges when loaded; not statically judged",
        evidence=info,
    )
    # a self-extracting executable is also a zip: its members are what a zip loader would see
    from .interface import run_inspector
    from .zip.handler import ZIP_ARCHIVE
    from .zip.listing import central_listing

    if central_listing(reader) is not None:
        run_inspector(ZIP_ARCHIVE, reader, ctx)


# ---------------------------------------------------------------------------- Git LFS pointers

_LFS_HEAD = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")
_LFS_OID = re.compile(r"^oid (sha256):([0-9a-f]{64})$", re.M)
_LFS_SIZE = re.compile(r"^size (\d{1,20})$", re.M)


def parse_lfs_pointer(data: bytes) -> dict[str, Any] | None:
    """{'oid': hex, 'size': n} for a Git LFS pointer file, else None."""
    if len(data) > LFS_MAX_BYTES or not data.startswith(_LFS_HEAD):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    oid = _LFS_OID.search(text)
    size = _LFS_SIZE.search(text)
    return {"oid": oid.group(2) if oid else None, "size": int(size.group(1)) if size else None}


def _sniff_lfs(head: bytes, reader: Reader) -> bool:
    return reader.size <= LFS_MAX_BYTES and head.startswith(_LFS_HEAD)


def _inspect_lfs(reader: Reader, ctx: InspectContext) -> None:
    info = parse_lfs_pointer(reader.read(0, reader.size)) or {}
    ctx.add(
        "HF-LFS-POINTER",
        f"Git LFS pointer to an unfetched object (sha256 {str(info.get('oid'))[:16]}…, {info.get('size')} bytes); "
        "the real file was not scanned",
        evidence={k: v for k, v in info.items() if v is not None},
    )


# ---------------------------------------------------------------------------- Python source

_FENCE = re.compile(r"^```", re.M)
_PY_STMT = re.compile(
    r"^(?:import [A-Za-z_][\w.]*|from \.*[\w.]* import |def [A-Za-z_]\w*\s*\(|class [A-Za-z_]\w*\s*[(:])",
    re.M,
)


def _decode_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return head[: exc.start].decode("utf-8", "replace")
        return None


def _has_structure(tree_src: bytes) -> bool:
    import ast

    from ..analysis.python_ast import too_many_tokens

    if too_many_tokens(tree_src):  # parsing would break the memory bound: decide by the statement heuristic
        return False
    try:
        tree = ast.parse(tree_src)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return any(
        isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for n in tree.body
    )


def _sniff_python(head: bytes, reader: Reader) -> bool:
    from ..analysis.python_ast import MAX_SOURCE_BYTES, looks_like_python, too_many_tokens

    text = _decode_text(head)
    if text is not None and str(getattr(reader, "name", "")).lower().endswith(".py"):
        # too big to confirm by parsing: a .py text file is judged as code (and fails closed on the cap)
        if reader.size > MAX_SOURCE_BYTES or too_many_tokens(reader.read(0, reader.size)):
            return True
    if text is None or not looks_like_python(text.lstrip("\ufeff")):
        return False
    if text.startswith("#!") and "python" in text.split("\n", 1)[0]:
        return True
    if reader.size <= MAX_SOURCE_BYTES:
        data = reader.read(0, reader.size)
        if b"\x00" in data:
            return False
        if _has_structure(data):
            return True
        # does not parse here: still Python if it is plainly structured like it (and not markdown with code)
        full = data.decode("utf-8", "replace")
        return len(_PY_STMT.findall(full)) >= 3 and not _FENCE.search(full)
    return len(_PY_STMT.findall(text)) >= 3 and not _FENCE.search(text)


def report_python(
    ctx: InspectContext, analysis: PyAnalysis, what: str = "", *, executed: bool | None = None
) -> None:
    """Turn an AST analysis into findings on ``ctx``. Code a loader runs (``executed``; by default, whenever
    ``what`` names a packaged member) that cannot be parsed fails closed: high, and partially analyzed."""
    from ..analysis.python_ast import LOADED_ESCALATION

    if executed is None:
        executed = bool(what)
    if analysis.limit is not None:
        ctx.limit_hit(analysis.limit, f"{what}Python source not analyzed: {analysis.error}"[:400])
        return
    if not analysis.parsed:
        ctx.add(
            "PY-UNPARSEABLE",
            f"{what}Python source could not be parsed: {analysis.error}"[:400],
            severity=Severity.HIGH if executed else None,
            evidence={"error": (analysis.error or "")[:300]},
        )
        if executed:
            ctx.partial("code a loader runs could not be parsed")
        return
    for i in analysis.issues:
        ev = dict(i.evidence)
        if i.line is not None:
            ev["line"] = i.line
        sev = max(i.severity, LOADED_ESCALATION.get(i.rule_id, i.severity)) if executed else i.severity
        ctx.add(
            i.rule_id,
            f"{what}{i.message}" + (f" (line {i.line})" if i.line else ""),
            severity=sev,
            evidence=ev,
        )
    if analysis.truncated:
        ctx.partial("Python analysis stopped at its issue/node cap")


def _inspect_python(reader: Reader, ctx: InspectContext) -> None:
    from ..analysis.python_ast import MAX_SOURCE_BYTES, analyze_python

    if reader.size > MAX_SOURCE_BYTES:
        ctx.limit_hit(
            "python_source_bytes", f"Python source larger than {MAX_SOURCE_BYTES} bytes not analyzed"
        )
        return
    report_python(ctx, analyze_python(reader.read(0, reader.size)))


# ---------------------------------------------------------------------------- scripts (non-Python shebang)

_SHEBANG = re.compile(rb"^#![ \t]*(\S+)(?:[ \t]+(\S+))?")
_SHELL_DANGER = [
    (
        re.compile(r"\b(?:curl|wget)\b[^\n|;]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b"),
        "download piped into a shell",
    ),
    (re.compile(r"/dev/(?:tcp|udp)/"), "bash network redirection"),
    (re.compile(r"\b(?:nc|ncat|netcat)\b[^\n]*\s-[a-z]*e\b"), "netcat with -e"),
    (re.compile(r"\bbase64\b[^\n|]*-d[^\n]*\|\s*(?:ba)?sh\b"), "decoded data piped into a shell"),
    (re.compile(r"\brm\s+-[a-z]*r[a-z]*f?\s+(?:/|~)(?:\s|$)"), "recursive delete of / or ~"),
    (re.compile(r"\b(?:bash|sh)\s+-i\b"), "interactive shell (reverse shell idiom)"),
    (re.compile(r"\beval\s+\"?\$\("), "eval of command output"),
]


def _interpreter(head: bytes) -> str | None:
    m = _SHEBANG.match(head)
    if not m:
        return None
    prog = m.group(1).decode("utf-8", "replace").rsplit("/", 1)[-1]
    if prog == "env" and m.group(2):
        prog = m.group(2).decode("utf-8", "replace").rsplit("/", 1)[-1]
    return prog


def _sniff_script(head: bytes, reader: Reader) -> bool:
    interp = _interpreter(head)
    return interp is not None and "python" not in interp and _decode_text(head) is not None


def shell_dangers(text: str) -> list[str]:
    return [label for rx, label in _SHELL_DANGER if rx.search(text)]


def _inspect_script(reader: Reader, ctx: InspectContext) -> None:
    interp = _interpreter(reader.head(256)) or "?"
    n = min(reader.size, MAX_SCRIPT_BYTES)
    text = reader.read(0, n).decode("utf-8", "replace")
    dangers = shell_dangers(text)
    ev: dict[str, Any] = {"interpreter": interp}
    if dangers:
        ev["patterns"] = dangers
    ctx.add(
        "HF-SHELL-SCRIPT",
        f"{interp} script" + (f" with {', '.join(dangers)}" if dangers else ""),
        severity=Severity.HIGH if dangers else None,
        evidence=ev,
    )
    if reader.size > n:
        ctx.partial(f"script larger than {MAX_SCRIPT_BYTES} bytes only partly checked")


# ---------------------------------------------------------------------------- notebooks


def _sniff_notebook(head: bytes, reader: Reader) -> bool:
    s = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not s.startswith(b"{") or b'"cells"' not in head:
        return False
    return b'"nbformat"' in head or b'"nbformat"' in reader.tail(512)


_MAGIC_SHELL = re.compile(r"^\s*%%(?:bash|sh|script|system)\b")


def analyze_notebook(data: bytes) -> tuple[list[dict[str, Any]], Severity, str | None]:
    """(cells with issues, worst severity, error). Shell escapes ('!cmd', %%bash) count as process execution."""
    from ..analysis.python_ast import analyze_python

    try:
        nb = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return [], Severity.LOW, f"not valid JSON: {exc}"[:200]
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return [], Severity.LOW, "no cell list"
    worst = Severity.LOW
    flagged: list[dict[str, Any]] = []
    for idx, cell in enumerate(cells[:10_000]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        text = (
            "".join(x for x in src if isinstance(x, str))
            if isinstance(src, list)
            else src
            if isinstance(src, str)
            else ""
        )
        issues: list[str] = []
        py_lines: list[str] = []
        if _MAGIC_SHELL.match(text):
            issues.append("shell cell magic")
            dangers = shell_dangers(text)
            issues.extend(dangers)
            py_lines = []
        else:
            for line in text.splitlines():
                stripped = line.lstrip()
                if stripped.startswith("!") or stripped.startswith("%system") or stripped.startswith("%sx"):
                    issues.append(f"shell escape: {stripped[:120]}")
                    py_lines.append("")
                elif stripped.startswith("%"):
                    py_lines.append("")
                else:
                    py_lines.append(line)
        sev = Severity.HIGH if issues else Severity.LOW
        if py_lines:
            a = analyze_python("\n".join(py_lines))
            if a.limit is not None:  # not judged: fail closed
                issues.append(f"code cell not analyzed: {a.error}")
                sev = Severity.HIGH
            for i in a.issues:
                if i.severity >= Severity.HIGH:
                    issues.append(i.message.replace(" at import time", ""))
                    sev = Severity.HIGH
        if issues:
            worst = max(worst, sev, key=lambda s: s.rank)
            flagged.append({"cell": idx, "issues": issues[:5]})
    return flagged, worst, None


def _inspect_notebook(reader: Reader, ctx: InspectContext) -> None:
    if reader.size > MAX_NOTEBOOK_BYTES:
        ctx.limit_hit("notebook_bytes", f"notebook larger than {MAX_NOTEBOOK_BYTES} bytes not analyzed")
        return
    flagged, worst, error = analyze_notebook(reader.read(0, reader.size))
    if error:
        ctx.add("HF-NOTEBOOK", f"notebook could not be read ({error})", severity=Severity.MEDIUM)
        return
    msg = "Jupyter notebook" + (
        f": {len(flagged)} code cell(s) run processes or dynamic code" if flagged else ""
    )
    ctx.add("HF-NOTEBOOK", msg, severity=worst, evidence={"cells": flagged[:20]} if flagged else {})


NATIVE_BINARY = FormatHandler(
    "native-binary",
    _sniff_native,
    _inspect_native,
    family="native",
    claims=(".so", ".dll", ".dylib", ".pyd", ".exe"),
    can_carry_code=True,
)
LFS_POINTER = FormatHandler("lfs-pointer", _sniff_lfs, _inspect_lfs, family="lfs-pointer")
NOTEBOOK = FormatHandler(
    "notebook",
    _sniff_notebook,
    _inspect_notebook,
    family="notebook",
    claims=(".ipynb",),
    can_carry_code=True,
)
SCRIPT = FormatHandler("script", _sniff_script, _inspect_script, family="script", can_carry_code=True)
PYTHON_SOURCE = FormatHandler(
    "python-source",
    _sniff_python,
    _inspect_python,
    family="python",
    claims=(".py",),
    can_carry_code=True,
)
