"""torch.export ``.pt2`` archives (``torch.export.save`` / AOTInductor packages) and ExecuTorch ``.pte`` programs.

A ``.pt2`` is a zip (torch/export/pt2_archive/constants.py): ``<root>/archive_format``
says ``pt2``; ``models/<name>.json`` is the serialized ExportedProgram;
``data/weights/`` and ``data/constants/`` hold tensors described by
``<name>_weights_config.json`` / ``<name>_constants_config.json``: raw bytes when
``use_pickle`` is false, ``torch.load(weights_only=False)`` otherwise,
``custom_obj_*`` through the TorchScript unpickler, ``opaque_obj_*`` through
``pickle.loads``. Judged as the loader reads them:

- raw tensors are sized from their metadata and only checked for a disguised payload;
- pickled entries are analyzed (by content, or forced for ``pickle.loads``);
- graph node targets are resolved by ``getattr`` from ``torch``/``operator``/``math``
  (torch/_export/serde/serialize.py ``deserialize_operator``), so only operator
  namespaces (``torch.ops.*``) and plain arithmetic are allowed;
- ``guards_code`` strings are ``exec``-ed by ``ExportedProgram.module()``
  (torch/export/_unlift.py): allowed only in the grammar torch's shape-guard
  printer emits, anything else is code;
- any ``.py`` is code, AOTInductor shared objects are native code (by content).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Any

from ...findings import Severity
from ...io.reader import Reader
from .._pickle_bridge import analyze_pickles
from ..carrier_code import report_code_member, report_code_text
from ..data_files import is_text
from ..interface import FormatHandler, InspectContext
from ..zip.checks import read_zip
from ..zip.listing import ZipEntry, list_names, looks_like_zip
from ..zip.members import inspect_entry, inspect_extra_regions, member_head, open_member, unique_entries
from .torch_zip import head_looks_like_payload

LOADER = "torch.export.load"
MAX_JSON = 8 << 20  # json.loads needs ~6x the text; real ExportedProgram JSON of mid-size models fits
_ROOT = re.compile(r"^([^/]+)/archive_format$")
_CONFIG = re.compile(r"^data/(weights|constants)/(.+)_(weights|constants)_config\.json$")
_SKIP = {"archive_format", "archive_version", ".data/version", "byteorder", ".data/serialization_id"}
# torch/_export/serde/schema.py ScalarType -> bytes per element
SCALAR_BYTES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 2,
    7: 4,
    8: 8,
    9: 4,
    10: 8,
    11: 16,
    12: 1,
    13: 2,
    28: 2,
    29: 1,
    30: 1,
    31: 1,
    32: 1,
    33: 1,
    34: 4,
    35: 8,
}
OPERATOR_TARGETS = {
    "getitem",
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "neg",
    "pos",
    "abs",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
    "xor",
    "not_",
    "invert",
    "lshift",
    "rshift",
    "matmul",
    "index",
    "truth",
}
MATH_TARGETS = {
    "ceil",
    "floor",
    "sqrt",
    "trunc",
    "log",
    "exp",
    "sin",
    "cos",
    "tan",
    "fabs",
    "pow",
    "log2",
    "log10",
    "isnan",
    "isinf",
    "isfinite",
    "copysign",
    "fmod",
    "gcd",
    "factorial",
}
# names and methods torch's ShapeGuardPythonPrinter writes into guards_code
GUARD_NAMES = {
    "L",
    "math",
    "torch",
    "inf",
    "IsNonOverlappingAndDenseIndicator",
    "cast_symbool_to_symint_guardless",
}
GUARD_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_GUARD_NODES = (
    ast.Expression,
    ast.Compare,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.IfExp,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Load,
    ast.Subscript,
    ast.Call,
    ast.Attribute,
    ast.Name,
    ast.operator,
    ast.cmpop,
    ast.boolop,
    ast.unaryop,
)


def _sniff(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    return any(_ROOT.match(n) for n in list_names(reader))


def target_allowed(target: str) -> bool:
    """A graph node target the deserializer resolves to an operator, not to an arbitrary attribute of torch."""
    parts = target.split(".")
    if any(p.startswith("_") and p != "_operator" for p in parts[1:]) and not target.startswith("torch.ops."):
        return False
    if target.startswith("torch.ops.") and len(parts) >= 4:
        return not any(p.startswith("__") for p in parts)
    if parts[0] == "_operator" and len(parts) == 2:
        return parts[1] in OPERATOR_TARGETS
    if parts[0] == "math" and len(parts) == 2:
        return parts[1] in MATH_TARGETS
    if target.startswith("torch.sym_") and len(parts) == 2:
        return True
    return target.startswith("#")  # extension operators are looked up in registered handlers only


def guard_allowed(code: str) -> bool:
    """A guard expression in the shape-guard grammar (sizes, strides, arithmetic, comparisons)."""
    if len(code) > 4096:
        return False
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _GUARD_NODES):
            return False
        if isinstance(node, ast.Name) and node.id not in GUARD_NAMES:
            return False
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                return False
            base = node.value
            if isinstance(base, ast.Name) and base.id == "torch" and not node.attr.startswith("sym_"):
                return False
            if isinstance(base, ast.Name) and base.id == "math" and node.attr not in MATH_TARGETS:
                return False
            if not isinstance(base, ast.Name) and node.attr not in GUARD_METHODS:
                return False
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Constant):
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            return False
    return True


def _read_json(reader: Reader, e: ZipEntry, ctx: InspectContext) -> tuple[Any, str | None]:
    doc, problem, _ = _read_json_digest(reader, e, ctx)
    return doc, problem


def _read_json_digest(reader: Reader, e: ZipEntry, ctx: InspectContext) -> tuple[Any, str | None, str]:
    """(document, problem, sha256 of the member's bytes)."""
    if e.uncompressed_size > MAX_JSON:
        return None, f"{e.uncompressed_size} bytes exceed {MAX_JSON}", ""
    sub = open_member(reader, e, ctx)
    if sub is None:
        return None, "could not be read", ""
    raw = sub.read(0, sub.size)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        return json.loads(raw), None, digest
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"[:200], digest


def _nbytes(meta: Any) -> int | None:
    """Bytes a raw tensor needs: (max offset reached through sizes and strides + 1) x element size."""
    try:
        item = SCALAR_BYTES[meta["dtype"]]
        sizes = [d["as_int"] for d in meta["sizes"]]
        strides = [d["as_int"] for d in meta["strides"]]
        offset = meta.get("storage_offset", {}).get("as_int", 0)
    except (KeyError, TypeError, AttributeError):
        return None
    if any(not isinstance(x, int) or x < 0 for x in [*sizes, *strides, offset]) or len(sizes) != len(strides):
        return None
    if any(s == 0 for s in sizes):
        return 0
    return (offset + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True)) + 1) * item


def _invalid(ctx: InspectContext, message: str, **ev: Any) -> None:
    ctx.add("CARRIER-CONFIG-INVALID", message, evidence=ev)
    ctx.partial("torch.export archive metadata unreadable")


def _payload_configs(
    reader: Reader, root: str, entries: list[ZipEntry], ctx: InspectContext
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """member name -> payload meta (path_name, use_pickle, tensor_meta) from every weights/constants config."""
    metas: dict[str, dict[str, Any]] = {}
    configs: set[str] = set()
    for e in entries:
        rel = e.name[len(root) + 1 :]
        m = _CONFIG.match(rel)
        if not m:
            continue
        configs.add(e.name)
        doc, problem = _read_json(reader, e, ctx)
        cfg = doc.get("config") if isinstance(doc, dict) else None
        if problem or not isinstance(cfg, dict):
            _invalid(ctx, f"{e.name}: {problem or 'no config object'}", member=e.name[:300])
            continue
        for fqn, meta in cfg.items():
            path = meta.get("path_name") if isinstance(meta, dict) else None
            if not isinstance(path, str):
                _invalid(ctx, f"{e.name}: entry {str(fqn)[:100]!r} has no path_name", member=e.name[:300])
                continue
            metas[f"{root}/data/{m.group(1)}/{path}"] = {**meta, "fqn": str(fqn)[:200]}
    return metas, configs


def _check_model_json(reader: Reader, e: ZipEntry, ctx: InspectContext) -> None:
    doc, problem, digest = _read_json_digest(reader, e, ctx)
    child = ctx.child(e.name)
    if child is None:
        return
    if problem or not isinstance(doc, dict):
        _invalid(
            child, f"serialized ExportedProgram {e.name}: {problem or 'not an object'}", member=e.name[:300]
        )
        return
    bad: list[str] = []
    stack: list[Any] = [doc.get("graph_module")]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > ctx.limits.max_nodes:
            child.limit_hit(
                "max_nodes", f"ExportedProgram {e.name} has more than {ctx.limits.max_nodes} JSON nodes"
            )
            break
        if isinstance(node, dict):
            t = node.get("target")
            if isinstance(t, str) and "inputs" in node and not target_allowed(t):
                bad.append(t)
            op = node.get("as_operator")  # callables passed as arguments resolve the same way
            if isinstance(op, str) and not target_allowed(op):
                bad.append(op)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    for t in sorted(set(bad))[:20]:
        child.add(
            "CODE-EXECUTED-BY-LOADER",
            f"graph node target {t[:200]!r} is not an operator: the deserializer "
            "resolves it by getattr and running the program calls it",
            severity=Severity.CRITICAL,
            evidence={"target": t[:300], "loader": LOADER, "sha256": digest, "file": e.name[:300]},
        )
    guards = doc.get("guards_code")
    if guards is None:
        return
    if not isinstance(guards, list) or not all(isinstance(g, str) for g in guards):
        _invalid(child, f"guards_code of {e.name} is not a list of strings", member=e.name[:300])
        return
    odd = [g for g in guards if not guard_allowed(g)]
    if odd:
        report_code_text(
            child,
            "\n".join(odd).encode("utf-8", "surrogateescape"),
            what=f"{e.name} guards_code",
            loader=f"{LOADER}(...).module()",
            role="guard expressions exec()-ed",
            extra={"guards": [g[:200] for g in odd[:10]]},
        )


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    listing = read_zip(reader, ctx)
    if listing is None:
        return
    inspect_extra_regions(reader, listing, ctx)
    entries = [e for e in unique_entries(listing) if not e.is_dir]
    roots = {m.group(1) for m in map(_ROOT.match, listing.names()) if m}
    root = sorted(roots)[0]
    metas, configs = _payload_configs(reader, root, entries, ctx)
    raw = 0
    for e in entries:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting torch.export archive members")
            return
        rel = e.name[len(root) + 1 :] if e.name.startswith(root + "/") else None
        if rel in _SKIP or e.name in configs:
            continue
        if e.name.endswith(".py"):
            sub = open_member(reader, e, ctx)
            if sub is not None:
                report_code_member(ctx, sub, e.name, loader=LOADER, role="archive source")
            continue
        if rel is not None and rel.startswith("models/") and rel.endswith(".json"):
            _check_model_json(reader, e, ctx)
            continue
        meta = metas.get(e.name)
        if meta is not None and not meta.get("use_pickle") and "tensor_meta" in meta:
            raw += 1
            _check_raw(reader, e, meta, ctx)
            continue
        if meta is not None and e.name.rsplit("/", 1)[-1].startswith("opaque_obj_"):
            sub = open_member(reader, e, ctx)
            if sub is not None:
                analyze_pickles(sub, ctx, member=e.name)  # pickle.loads
            continue
        inspect_entry(reader, e, ctx)  # pickled tensors, custom objects, sample inputs, AOTI code: by content
    ctx.add(
        "CARRIER-MODEL",
        f"torch.export archive: {raw} raw tensor(s) sized from the archive's metadata",
        evidence={"kind": "pt2", "root": root[:200], "raw_tensors": raw},
    )


def _check_raw(reader: Reader, e: ZipEntry, meta: dict[str, Any], ctx: InspectContext) -> None:
    need = _nbytes(meta.get("tensor_meta"))
    if need is None:
        _invalid(
            ctx, f"tensor {meta['fqn']!r} ({e.name}) has unreadable tensor metadata", member=e.name[:300]
        )
    elif need > e.uncompressed_size:
        ctx.add(
            "TORCH-STORAGE-INVALID",
            f"tensor {meta['fqn']!r} needs {need} bytes but {e.name} holds "
            f"{e.uncompressed_size} (out-of-bounds read on load)",
            evidence={"member": e.name[:300]},
        )
    if head_looks_like_payload(member_head(reader, e, 512)):
        inspect_entry(reader, e, ctx)


# ------------------------------------------------------------------------------------------ ExecuTorch
# A .pte is a flatbuffer with file identifier "ET<nn>" at offset 4: operator names resolved against the
# runtime's registered kernels and delegate blobs for its backends; no Python runs.

_PTE = re.compile(rb"^.{4}ET[0-9]{2}", re.S)


def _sniff_pte(head: bytes, reader: Reader) -> bool:
    if not _PTE.match(head) or len(head) < 16 or is_text(head):
        return False
    root = int.from_bytes(head[:4], "little")  # flatbuffers: offset of the root table, which starts with its
    if root < 8 or root % 4 or root + 4 > reader.size:  # (signed) offset back to its vtable
        return False
    table = reader.read(root, 4)
    vtable = root - int.from_bytes(table, "little", signed=True)
    return len(table) == 4 and 0 <= vtable and vtable + 4 <= reader.size


def _inspect_pte(reader: Reader, ctx: InspectContext) -> None:
    ctx.add(
        "CARRIER-MODEL",
        "ExecuTorch program: operators run from the runtime's registered kernels, no Python; "
        "the flatbuffer is not walked",
        evidence={"kind": "executorch", "identifier": reader.read(4, 4).decode("ascii", "replace")},
    )


TORCH_EXPORT_PT2 = FormatHandler(
    "torch-export-pt2", _sniff, _inspect, family="pt2", claims=(".pt2",), can_carry_code=True
)
EXECUTORCH_PTE = FormatHandler(
    "executorch-pte", _sniff_pte, _inspect_pte, family="executorch", claims=(".pte",)
)
