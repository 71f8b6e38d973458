"""PyTorch zip checkpoints (``torch.save`` since 1.6) and the shared storage checks.

torch.load unpickles ``<archive>/data.pkl`` and reads raw tensor bytes from
``<archive>/data/<key>``. The judgement needs the central directory, every
pickle member and the first bytes of each storage: scan time and bytes read grow
with pickle bytes, not tensor bytes. Every member that is not a referenced
storage is inspected by content whatever its name (pickles hidden as
``constants.bin`` or extensionless members), and every storage reference is
checked against the archive (missing key, more elements than bytes, unknown
storage type).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...io.reader import Reader
from .._pickle_bridge import analyze_pickles
from ..interface import FormatHandler, InspectContext
from ..zip.checks import read_zip
from ..zip.listing import ZipEntry, ZipListing, list_names, looks_like_zip
from ..zip.members import inspect_entry, inspect_extra_regions, member_head, open_member, unique_entries

# element sizes of the storage types torch pickles ('module:name' as the pickle analyzer reports globals)
_TYPED = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}
STORAGE_ITEMSIZE: dict[str, int] = {f"{m}:{n}": s for n, s in _TYPED.items() for m in ("torch", "torch.cuda")}
STORAGE_ITEMSIZE.update({"torch:UntypedStorage": 1, "torch.storage:UntypedStorage": 1})

# records torch itself writes, relative to the archive folder
KNOWN_RECORDS = {
    "data.pkl",
    "constants.pkl",
    "bytecode.pkl",
    "version",
    ".format_version",
    ".storage_alignment",
    "byteorder",
    ".data/serialization_id",
    ".data/version",
    "mobile_info.json",
    "producer_info.json",
}
PICKLE_RECORDS = {"data.pkl", "constants.pkl", "bytecode.pkl"}
STORAGE_DIRS = ("data", "constants")  # data.pkl -> data/<key>, constants.pkl -> constants/<key>
_STORAGE_RE = re.compile(r"^(data|constants|\.data)/([^/]+)$")
_ROOT_RE = re.compile(r"^([^/]+)/(data\.pkl|constants\.pkl|bytecode\.pkl)$")
HEAD_CHECK = 64

_PICKLE_NEXT = set(b"c}](q)\x8aX\x95\x8c\x80KJMN\x88\x89\x85\x86\x87tUVh\x94\x93\x81RG")
_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"7z\xbc\xaf\x27\x1c",
    b"\x04\x22\x4d\x18",
    b"\x93NUMPY",
    b"\x89HDF\r\n\x1a\n",
    b"ustar",
)


def head_looks_like_payload(head: bytes) -> bool:
    """Cheap test for a pickle, archive or compressed stream disguised as raw tensor bytes."""
    if len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] in _PICKLE_NEXT:
        return True
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return True
    return head.startswith(_MAGIC) or head[257:262] == b"ustar"


def torch_roots(names: Iterable[str]) -> set[str]:
    """Archive folders that hold a torch pickle record (``<archive>/data.pkl`` and friends)."""
    roots = set()
    for n in names:
        m = _ROOT_RE.match(n)
        if m:
            roots.add(m.group(1))
    return roots


def _sniff(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    return bool(torch_roots(list_names(reader)))


@dataclass
class _Member:
    entry: ZipEntry
    root: str | None
    rel: str  # name relative to its archive folder (the whole name when outside every folder)
    storage_key: tuple[str, str] | None = None  # (storage dir, key)


@dataclass
class TorchZip:
    """What a torch zip inspection learned (TorchScript analysis builds on it)."""

    listing: ZipListing
    members: list[_Member] = field(default_factory=list)
    code_entries: list[ZipEntry] = field(default_factory=list)
    torchscript: bool = False


def _classify(listing: ZipListing) -> list[_Member]:
    roots = torch_roots(listing.names())
    out = []
    for e in unique_entries(listing):
        root = next((r for r in roots if e.name.startswith(r + "/")), None)
        rel = e.name[len(root) + 1 :] if root is not None else e.name
        m = _Member(e, root, rel)
        sm = _STORAGE_RE.match(rel) if root is not None else None
        if sm and sm.group(1) in STORAGE_DIRS:
            m.storage_key = (sm.group(1), sm.group(2))
        out.append(m)
    return out


def inspect_torch_zip(reader: Reader, ctx: InspectContext, *, torchscript: bool = False) -> TorchZip | None:
    listing = read_zip(reader, ctx)
    if listing is None:
        return None
    tz = TorchZip(listing, _classify(listing), torchscript=torchscript)
    inspect_extra_regions(reader, listing, ctx)  # a pickle before the zip runs first in torch.load

    storages: dict[tuple[str, str], _Member] = {}
    for m in tz.members:
        if m.storage_key is not None and m.storage_key not in storages:  # torch reads the first of duplicates
            storages[m.storage_key] = m

    refs: list[tuple[str, Any]] = []  # (storage dir, persistent id)
    refs_known = True
    for m in tz.members:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting torch archive members")
            return tz
        e = m.entry
        if e.is_dir or m.storage_key is not None:
            continue
        if m.root is not None and m.rel.startswith("code/"):
            tz.code_entries.append(e)
        if m.root is not None and (m.rel in PICKLE_RECORDS or m.rel.endswith(".debug_pkl")):
            sub = open_member(reader, e, ctx)
            if sub is None:
                refs_known = False
                continue
            summary = analyze_pickles(sub, ctx, member=e.name)
            if m.rel in ("data.pkl", "constants.pkl"):
                if summary is None or not getattr(summary, "complete", False):
                    refs_known = False  # which storages are used is unknown: every one gets the head check
                else:
                    group = "data" if m.rel == "data.pkl" else "constants"
                    refs.extend((group, pid) for pid in getattr(summary, "persistent_ids", ()) or ())
            continue
        known = m.root is not None and (
            m.rel in KNOWN_RECORDS or m.rel.startswith(("code/", "extra/", ".data/"))
        )
        if not known:
            ctx.add(
                "TORCH-UNEXPECTED-MEMBER",
                f"{e.name!r} is not a record PyTorch writes; inspected by content",
                evidence={"member": e.name[:300]},
            )
        inspect_entry(reader, e, ctx)

    referenced = _check_references(ctx, refs, storages)
    for key, m in storages.items():
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out checking torch storages")
            break
        if refs_known and key not in referenced:
            ctx.add(
                "TORCH-UNEXPECTED-MEMBER",
                f"storage member {m.entry.name!r} is referenced by no tensor; inspected by content",
                evidence={"member": m.entry.name[:300]},
            )
            inspect_entry(reader, m.entry, ctx)
            continue
        _check_storage_head(reader, m.entry, ctx)
    for m in tz.members:  # later duplicates of a storage name: torch never reads them, Python does
        if m.storage_key is not None and storages.get(m.storage_key) is not m:
            inspect_entry(reader, m.entry, ctx)
    return tz


def _check_storage_head(reader: Reader, e: ZipEntry, ctx: InspectContext) -> None:
    """Raw tensor bytes are not inspected; only a hidden pickle, archive or compressed stream is looked for."""
    if head_looks_like_payload(member_head(reader, e, 512)):
        inspect_entry(reader, e, ctx)


def _check_references(
    ctx: InspectContext, refs: list[tuple[str, Any]], storages: dict[tuple[str, str], _Member]
) -> set[tuple[str, str]]:
    referenced: set[tuple[str, str]] = set()
    problems = 0
    for group, pid in refs:
        problem, key = _reference_problem(pid, group, storages)
        if key is not None:
            referenced.add(key)
        if problem:
            problems += 1
            if problems <= 20:
                ctx.add("TORCH-STORAGE-INVALID", problem, evidence={"persistent_id": _short(pid)})
    if problems > 20:
        ctx.add(
            "TORCH-STORAGE-INVALID",
            f"... and {problems - 20} more invalid storage references",
            evidence={"suppressed": problems - 20},
        )
    return referenced


def _reference_problem(
    pid: Any, group: str, storages: dict[tuple[str, str], _Member]
) -> tuple[str | None, tuple[str, str] | None]:
    if not isinstance(pid, (tuple, list)) or len(pid) < 5 or pid[0] != "storage":
        return f"persistent id {_short(pid)} is not a storage reference", None
    stype, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
    if not isinstance(key, str):
        return f"storage key {_short(key)} is not a string", None
    found = next(((g, key) for g in (group, *STORAGE_DIRS) if (g, key) in storages), None)
    itemsize = STORAGE_ITEMSIZE.get(stype) if isinstance(stype, str) else None
    if itemsize is None:
        return f"storage {key!r} has unknown storage type {_short(stype)}", found
    if found is None:
        return f"tensor references storage {key!r} but the archive has no {group}/{key} record", None
    if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
        return f"storage {key!r} declares an invalid element count {_short(numel)}", found
    size = storages[found].entry.uncompressed_size
    if numel * itemsize > size:
        return (
            f"storage {key!r} declares {numel} x {itemsize} bytes but its record holds {size} bytes "
            "(out-of-bounds read on load)"
        ), found
    return None, found


def _short(v: Any) -> str:
    return repr(v)[:200]


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    inspect_torch_zip(reader, ctx)


PYTORCH_ZIP = FormatHandler(
    "pytorch-zip",
    _sniff,
    _inspect,
    family="pickle",
    claims=(".pt", ".pth", ".bin", ".ckpt"),
    can_carry_code=True,
)
