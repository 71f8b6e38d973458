"""TorchServe model archives (``.mar``): a zip whose ``MAR-INF/MANIFEST.json`` names the handler and model files.

TorchServe extracts the archive, puts its folder first on ``sys.path`` and
imports the handler (``handler.py``, ``module:function`` or a built-in name that
an archive file of the same name shadows) and the ``modelFile``; any ``.py`` of
the archive is importable from there, so every one is code the server runs.
The ``serializedFile`` and other members are inspected by content;
``requirementsFile`` is pip-installed when per-model dependencies are on.
The ``tgz`` archive format holds the same files in a (gzip-compressed) tar.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from ..findings import Severity
from ..io.reader import Reader
from . import tar_archive
from .carrier_code import report_code_member, risky_requirements
from .interface import FormatHandler, InspectContext
from .torch_legacy import tar_members
from .zip.checks import read_zip
from .zip.listing import ZipEntry, list_names, looks_like_zip
from .zip.members import inspect_entry, inspect_extra_regions, open_member, unique_entries

LOADER = "TorchServe (ts.model_loader)"
MANIFEST = "MAR-INF/MANIFEST.json"
MAX_MANIFEST = 1 << 20
MAX_REQUIREMENTS = 1 << 20
# ts/torch_handler/*: the names TorchServe resolves when the archive has no module of that name
BUILTIN_HANDLERS = {
    "image_classifier",
    "image_segmenter",
    "object_detector",
    "text_classifier",
    "base_handler",
    "vision_handler",
    "text_handler",
    "dense",
}


def _sniff(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    return MANIFEST in list_names(reader)


def _manifest(
    reader: Reader, entry: ZipEntry, ctx: InspectContext
) -> tuple[dict[str, Any] | None, str | None]:
    if entry.uncompressed_size > MAX_MANIFEST:
        return None, f"{entry.uncompressed_size}-byte manifest exceeds {MAX_MANIFEST} bytes"
    sub = open_member(reader, entry, ctx)
    if sub is None:
        return None, "manifest could not be read"
    try:
        doc = json.loads(sub.read(0, sub.size))
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"[:200]
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        return None, "no 'model' object"
    return doc, None


def _handler_module(handler: str) -> str:
    module = handler.split(":", 1)[0].strip()
    return module[:-3] if module.endswith(".py") else module


def _check_manifest(
    ctx: InspectContext, model: dict[str, Any], names: set[str], py_modules: dict[str, str]
) -> None:
    handler = model.get("handler")
    if not isinstance(handler, str) or not handler.strip():
        ctx.add(
            "CARRIER-CONFIG-INVALID", "TorchServe manifest names no handler", evidence={"member": MANIFEST}
        )
        ctx.partial("TorchServe handler unknown")
    else:
        module = _handler_module(handler)
        builtin = module in BUILTIN_HANDLERS or module.startswith("ts.torch_handler.")
        if module not in py_modules and not builtin:
            ctx.add(
                "CARRIER-CODE-MISSING",
                f"TorchServe handler {handler[:200]!r} is neither in the archive nor a "
                "built-in handler: code from elsewhere runs",
                evidence={"handler": handler[:300]},
            )
    for key in ("serializedFile", "modelFile", "requirementsFile"):
        v = model.get(key)
        if isinstance(v, str) and v and v not in names:
            ctx.add(
                "CARRIER-CONFIG-INVALID",
                f"TorchServe manifest {key} {v[:200]!r} is not in the archive",
                severity=Severity.MEDIUM,
                evidence={"key": key, "value": v[:300]},
            )


def _py_name(name: str) -> str:
    return name.split("\x00", 1)[0]


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    listing = read_zip(reader, ctx)
    if listing is None:
        return
    inspect_extra_regions(reader, listing, ctx)
    entries = [e for e in unique_entries(listing) if not e.is_dir]
    # Python's zipfile (TorchServe's extraction) cuts member names at the first NUL: match names as it reads them
    manifests = [e for e in listing.entries if _py_name(e.name) == MANIFEST]
    doc, problem = _manifest(reader, manifests[-1], ctx)  # Python's zipfile (TorchServe) reads the last copy
    model: dict[str, Any] = doc["model"] if doc else {}
    names = {_py_name(e.name) for e in entries}
    py_modules = {
        _py_name(e.name)[:-3].replace("/", "."): e.name for e in entries if _py_name(e.name).endswith(".py")
    }
    if problem:
        ctx.add(
            "CARRIER-CONFIG-INVALID",
            f"TorchServe {MANIFEST}: {problem}; which handler runs is unknown",
            evidence={"member": MANIFEST},
        )
        ctx.partial("TorchServe manifest unreadable")
    else:
        _check_manifest(ctx, model, names, py_modules)
    handler = model.get("handler")
    roles: dict[str, str] = {}
    if isinstance(handler, str):
        roles[py_modules.get(_handler_module(handler), "")] = "handler"
    if isinstance(model.get("modelFile"), str):
        roles[model["modelFile"]] = "model file"
    req = model.get("requirementsFile") if isinstance(model.get("requirementsFile"), str) else None
    code = 0
    for e in entries:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting TorchServe archive members")
            return
        if _py_name(e.name).endswith(".py"):
            sub = open_member(reader, e, ctx)
            if sub is not None:
                code += 1
                report_code_member(
                    ctx, sub, e.name, loader=LOADER, role=roles.get(e.name, "importable module")
                )
            continue
        if e.name == req:
            _requirements(reader, e, ctx)
        inspect_entry(reader, e, ctx)
    ctx.add(
        "CARRIER-MODEL",
        f"TorchServe archive: handler {str(handler)[:100]!r}, {code} Python file(s)",
        evidence={
            "kind": "torchserve-mar",
            "handler": str(handler)[:200],
            "serializedFile": str(model.get("serializedFile"))[:200],
            "python_files": code,
        },
    )


def _requirements(reader: Reader, e: ZipEntry, ctx: InspectContext) -> None:
    sub = open_member(reader, e, ctx) if e.uncompressed_size <= MAX_REQUIREMENTS else None
    if sub is None:
        return
    risky = risky_requirements(sub.read(0, sub.size).decode("utf-8", "replace"))
    ctx.add(
        "CARRIER-ENVIRONMENT",
        f"TorchServe per-model requirements {e.name!r}"
        + (f": {len(risky)} install from URLs, VCS or other indexes" if risky else ""),
        severity=Severity.MEDIUM if risky else None,
        evidence={"member": e.name[:300], "risky": risky[:10]},
    )


# ------------------------------------------------------------------------------------------ tgz archives
# torch-model-archiver --archive-format tgz: the same files in a (gzip-compressed) tar, extracted the same way.

SNIFF_MEMBERS = 64


class _CodeMembers(InspectContext):
    """The tar walk's view: members named .py are code the server imports, everything else goes to detection."""

    def __init__(self, ctx: InspectContext, roles: dict[str, str]) -> None:
        super().__init__(ctx.state, ctx.path, ctx.depth, ctx.member_name, dispatch=ctx.dispatch)
        self.roles = roles
        self.code = 0

    def inspect_member(self, reader: Reader, member: str, *, charge: bool = False) -> None:
        if member.endswith(".py"):
            self.code += 1
            report_code_member(
                self, reader, member, loader=LOADER, role=self.roles.get(member, "importable module")
            )
            return
        super().inspect_member(reader, member, charge=charge)


def _tar_manifest(reader: Reader, limit: int) -> tuple[list, object | None]:  # type: ignore[type-arg]
    members, _ = tar_members(reader, limit)
    found = [m for m in members if m.name.lstrip("./") == MANIFEST or m.name.endswith("/" + MANIFEST)]
    return members, found[-1] if found else None  # tarfile extraction leaves the last copy


def _sniff_tar(head: bytes, reader: Reader) -> bool:
    if not tar_archive.looks_like_tar_header(head):
        return False
    return _tar_manifest(reader, SNIFF_MEMBERS)[1] is not None


def _inspect_tar(reader: Reader, ctx: InspectContext) -> None:
    members, man = _tar_manifest(reader, ctx.limits.max_members)
    base = posixpath.dirname(posixpath.dirname(man.name)) if man is not None else ""  # type: ignore[attr-defined]
    rel = {m.name: posixpath.relpath(m.name.lstrip("./") or ".", base.lstrip("./") or ".") for m in members}
    model: dict[str, Any] = {}
    if man is None or man.size > MAX_MANIFEST:  # type: ignore[attr-defined]
        problem: str | None = "manifest missing or too large"
    else:
        try:
            doc = json.loads(reader.read(man.offset, man.size))  # type: ignore[attr-defined]
            problem = (
                None if isinstance(doc, dict) and isinstance(doc.get("model"), dict) else "no 'model' object"
            )
            model = doc["model"] if problem is None else {}
        except (ValueError, RecursionError) as exc:
            problem = f"not valid JSON: {exc}"[:200]
    py_modules = {r[:-3].replace("/", "."): r for r in rel.values() if r.endswith(".py")}
    if problem:
        ctx.add(
            "CARRIER-CONFIG-INVALID",
            f"TorchServe {MANIFEST}: {problem}; which handler runs is unknown",
            evidence={"member": MANIFEST},
        )
        ctx.partial("TorchServe manifest unreadable")
    else:
        _check_manifest(ctx, model, set(rel.values()), py_modules)
    handler = model.get("handler")
    roles = {}
    by_rel = {r: n for n, r in rel.items()}
    if isinstance(handler, str) and _handler_module(handler) in py_modules:
        roles[by_rel[py_modules[_handler_module(handler)]]] = "handler"
    if isinstance(model.get("modelFile"), str) and model["modelFile"] in by_rel:
        roles[by_rel[model["modelFile"]]] = "model file"
    walk = _CodeMembers(ctx, roles)
    tar_archive.TAR_ARCHIVE.inspect(reader, walk)
    ctx.add(
        "CARRIER-MODEL",
        f"TorchServe tgz archive: handler {str(handler)[:100]!r}, {walk.code} Python file(s)",
        evidence={"kind": "torchserve-tgz", "handler": str(handler)[:200], "python_files": walk.code},
    )


TORCHSERVE_MAR = FormatHandler(
    "torchserve-mar",
    _sniff,
    _inspect,
    family="torchserve",
    claims=(".mar",),
    can_carry_code=True,
)
TORCHSERVE_TGZ = FormatHandler(
    "torchserve-tgz", _sniff_tar, _inspect_tar, family="archive", can_carry_code=True
)
