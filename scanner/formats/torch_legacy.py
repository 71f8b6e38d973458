"""Legacy PyTorch files: the stacked-pickle format (torch < 1.6) and the older tar format.

``torch.load`` on a non-zip file unpickles FIVE pickles in a row (magic number,
protocol version, sys_info, the data, the storage keys) before it reads raw
storages, and on a tar it unpickles the ``sys_info``, ``pickle``, ``storages``
and ``tensors`` members. Scanners that stopped after the magic pickle, or gave
up when the magic was computed by REDUCE instead of written as a literal
(GHSA-97f8-7cmv-76j2), or skipped the tar branch, passed payloads in the others.
Every pickle is analyzed here; the raw storage section is walked with bounds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..io.reader import Reader, SliceReader
from ._pickle_bridge import analyze_pickles
from .interface import FormatHandler, InspectContext
from .pickle import NOT_LITERAL, PickleStreamSummary, read_literal
from .torch.torch_zip import STORAGE_ITEMSIZE
from .zip.checks import check_member_name

MAGIC_LONG = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # LONG1 0x1950a86a20f9469cfc6c
PROTOCOL_PICKLE = b"M\xe9\x03."  # BININT2 1001, STOP
MAX_STORAGES = 1_000_000
LEGACY_TAR_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}


def _summary(found: Any) -> PickleStreamSummary | None:
    """The analyzer's summary; None when it crashed or a limit stopped it before it started (both reported)."""
    return found if isinstance(found, PickleStreamSummary) else None


def _literal_at(
    summary: PickleStreamSummary, reader: Reader, ctx: InspectContext, start: int, end: int
) -> Any:
    """The plain value (count, key list) of the one pickle at ``[start, end)`` that ``summary`` analyzed; None
    if it is not a plain literal. A list too long for the analysis walk to keep is read again whole."""
    value = summary.values[0] if summary.values else NOT_LITERAL
    if value is NOT_LITERAL:
        value = read_literal(reader, ctx, start, end)
    return None if value is NOT_LITERAL else value


# --------------------------------------------------------------------------- stacked format


def _sniff_stacked(head: bytes, reader: Reader) -> bool:
    if not head[:1] == b"\x80":
        return False
    if MAGIC_LONG in head[:32]:
        return True
    # magic computed by REDUCE: the protocol-version pickle still follows it
    i = head.find(PROTOCOL_PICKLE)
    return i > 0 and head[i + len(PROTOCOL_PICKLE) : i + len(PROTOCOL_PICKLE) + 1] == b"\x80"


def _inspect_stacked(reader: Reader, ctx: InspectContext) -> None:
    ctx.add(
        "TORCH-LEGACY-FORMAT",
        "legacy (pre-1.6) PyTorch serialization: five pickles and raw storages; all are analyzed",
    )
    first = _summary(analyze_pickles(reader, ctx, start=0, max_pickles=4))
    end4 = first.end_offset if first is not None else None
    count = first.pickle_count if first is not None else 0
    if first is None or end4 is None or count < 4 or not first.complete:
        _stream_broken(reader, ctx, end4, f"only {count} of the 5 leading pickles could be read")
        return
    keys_summary = _summary(analyze_pickles(reader, ctx, start=end4, max_pickles=1))
    if keys_summary is None or keys_summary.pickle_count < 1:
        _stream_broken(reader, ctx, end4, "the storage-key pickle could not be read")
        return
    end5 = keys_summary.end_offset
    refs = _legacy_refs(first.persistent_ids)
    keys = _literal_at(keys_summary, reader, ctx, end4, end5)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        keys = sorted(refs)
        if keys:
            ctx.add(
                "TORCH-STORAGE-INVALID",
                "the storage-key pickle is not a plain list of keys",
                offset=end4,
                evidence={"fallback_keys": len(keys)},
            )
    _walk_storages(reader, ctx, end5, keys, refs)


def _legacy_refs(pids: Any) -> dict[str, tuple[Any, Any]]:
    """key -> (storage type, element count) from ('storage', type, key, location, numel, view_metadata)."""
    out: dict[str, tuple[Any, Any]] = {}
    for pid in pids:
        if (
            isinstance(pid, (tuple, list))
            and len(pid) >= 5
            and pid[0] == "storage"
            and isinstance(pid[2], str)
        ):
            out.setdefault(pid[2], (pid[1], pid[4]))
    return out


def _walk_storages(
    reader: Reader, ctx: InspectContext, pos: int, keys: list[str], refs: dict[str, tuple[Any, Any]]
) -> None:
    if len(keys) > MAX_STORAGES:
        ctx.limit_hit("max_storages", f"{len(keys)} storages listed; the storage section was not walked")
        return
    for key in keys:
        stype, numel_ref = refs.get(key, (None, None))
        itemsize = STORAGE_ITEMSIZE.get(stype) if isinstance(stype, str) else None
        if key not in refs:
            ctx.add(
                "TORCH-STORAGE-INVALID",
                f"storage key {key!r} is listed but referenced by no tensor",
                offset=pos,
                evidence={"key": key[:100]},
            )
        elif itemsize is None:
            ctx.add(
                "TORCH-STORAGE-INVALID",
                f"storage {key!r} has unknown storage type {str(stype)[:100]!r}",
                offset=pos,
                evidence={"key": key[:100]},
            )
        raw = reader.read(pos, 8)
        if len(raw) < 8:
            _stream_broken(reader, ctx, None, f"storage section ends before storage {key!r}")
            return
        (numel,) = struct.unpack("<q", raw)
        nbytes = numel * (itemsize or 1)
        if numel < 0 or pos + 8 + nbytes > reader.size:
            ctx.add(
                "TORCH-STORAGE-INVALID",
                f"storage {key!r} declares {numel} elements, more than the file holds",
                offset=pos,
                evidence={"key": key[:100], "numel": numel},
            )
            ctx.partial("legacy storage section inconsistent")
            return
        if isinstance(numel_ref, int) and numel_ref != numel:
            ctx.add(
                "TORCH-STORAGE-INVALID",
                f"storage {key!r} holds {numel} elements but the tensor reference says {numel_ref}",
                offset=pos,
                evidence={"key": key[:100], "numel": numel, "referenced": numel_ref},
            )
        pos += 8 + nbytes
    missing = sorted(set(refs) - set(keys))
    if missing:
        ctx.add(
            "TORCH-STORAGE-INVALID",
            f"{len(missing)} referenced storage(s) are not in the storage section",
            evidence={"keys": [k[:100] for k in missing[:20]]},
        )
    if pos < reader.size:
        ctx.add(
            "TORCH-UNEXPECTED-MEMBER",
            f"{reader.size - pos} bytes follow the storage section; inspected by content",
            offset=pos,
            evidence={"start": pos, "length": reader.size - pos},
        )
        ctx.inspect_member(
            SliceReader(reader, pos, reader.size - pos, f"{ctx.path}!<trailing>"), "<trailing>"
        )


def _stream_broken(reader: Reader, ctx: InspectContext, at: int | None, why: str) -> None:
    """The structure broke: report, and analyze whatever follows as pickles so nothing after the break is skipped."""
    ctx.add("TORCH-STORAGE-INVALID", f"legacy PyTorch stream is inconsistent: {why}", offset=at)
    ctx.partial(f"legacy PyTorch stream inconsistent ({why})")
    if at is not None and 0 < at < reader.size:
        analyze_pickles(reader, ctx, start=at)


# --------------------------------------------------------------------------- legacy tar


@dataclass
class TarMember:
    name: str
    type: bytes
    offset: int  # data offset
    size: int
    linkname: str = ""


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # base-256
        return int.from_bytes(field[1:], "big")
    s = field.split(b"\0", 1)[0].strip()
    return int(s, 8) if s else 0


def _valid_header(hdr: bytes) -> bool:
    try:
        chk = _octal(hdr[148:156])
    except ValueError:
        return False
    return chk == sum(hdr[:148]) + 256 + sum(hdr[156:])


def tar_members(reader: Reader, max_members: int) -> tuple[list[TarMember], str | None]:
    """Regular 512-byte-header walk (ustar, GNU long names, pax paths); (members, problem)."""
    out: list[TarMember] = []
    pos = 0
    long_name: str | None = None
    while pos + 512 <= reader.size:
        hdr = reader.read(pos, 512)
        if hdr == b"\0" * 512:
            return out, None
        if not _valid_header(hdr):
            return out, f"bad tar header checksum at offset {pos}"
        if len(out) >= max_members:
            return out, "too many members"
        name = hdr[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if hdr[257:262] == b"ustar" and hdr[345:346] != b"\0":
            name = hdr[345:500].split(b"\0", 1)[0].decode("utf-8", "replace") + "/" + name
        try:
            size = _octal(hdr[124:136])
        except ValueError:
            return out, f"bad size field at offset {pos}"
        typ = hdr[156:157]
        data = pos + 512
        if data + size > reader.size:
            return out, f"member {name!r} runs past the end of the file"
        if typ in (b"L", b"x", b"g"):
            body = reader.read(data, min(size, 1 << 16))
            if typ == b"L":
                long_name = body.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif typ == b"x":
                for rec in body.split(b"\n"):
                    if b" path=" in rec:
                        long_name = rec.split(b" path=", 1)[1].decode("utf-8", "replace")
        else:
            link = hdr[157:257].split(b"\0", 1)[0].decode("utf-8", "replace")
            out.append(TarMember(long_name or name, typ, data, size, link))
            long_name = None
        pos = data + (size + 511) // 512 * 512
    return out, None if pos >= reader.size else "truncated tar header"


def _sniff_tar(head: bytes, reader: Reader) -> bool:
    if len(head) < 512 or not _valid_header(head[:512]):
        return False
    try:
        members, _ = tar_members(reader, 16)
    except (ValueError, struct.error):
        return False
    names = {m.name.rstrip("/").split("/")[-1] for m in members}
    return len(names & LEGACY_TAR_MEMBERS) >= 2 and "pickle" in names


def _inspect_tar(reader: Reader, ctx: InspectContext) -> None:
    ctx.add(
        "TORCH-LEGACY-TAR",
        "very old PyTorch tar serialization; every member is unpickled on load and analyzed",
    )
    members, problem = tar_members(reader, ctx.limits.max_members)
    if problem:
        ctx.add("ARCHIVE-MALFORMED", f"legacy torch tar: {problem}")
        ctx.partial(f"legacy torch tar: {problem}")
    for m in members:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out in a legacy torch tar")
            return
        check_member_name(ctx, m.name)
        if m.type in (b"1", b"2"):
            ctx.add(
                "ARCHIVE-SYMLINK",
                f"{m.name!r} is a link to {m.linkname!r}",
                evidence={"member": m.name[:300], "target": m.linkname[:300]},
            )
            continue
        if m.type in (b"3", b"4", b"6"):
            ctx.add(
                "ARCHIVE-SPECIAL-MEMBER",
                f"{m.name!r} is a device or FIFO entry",
                evidence={"member": m.name[:300]},
            )
            continue
        if m.type == b"5":
            continue
        sub = SliceReader(reader, m.offset, m.size, f"{ctx.path}!{m.name}")
        base = m.name.rstrip("/").split("/")[-1]
        if base in ("sys_info", "pickle"):
            analyze_pickles(sub, ctx, member=m.name)
        elif base == "storages":
            _walk_tar_storages(sub, ctx, m.name)
        elif base == "tensors":
            _walk_tar_tensors(sub, ctx, m.name)
        else:
            ctx.add(
                "TORCH-UNEXPECTED-MEMBER",
                f"{m.name!r} is not a member of the legacy torch tar format",
                evidence={"member": m.name[:300]},
            )
            ctx.inspect_member(sub, m.name)


def _one(sub: Reader, ctx: InspectContext, name: str, pos: int) -> tuple[PickleStreamSummary, int] | None:
    s = _summary(analyze_pickles(sub, ctx, member=f"{name}@{pos}", start=pos, max_pickles=1))
    if s is None or s.end_offset <= pos or s.pickle_count < 1:
        return None
    return s, s.end_offset


def _count_prologue(sub: Reader, ctx: InspectContext, name: str, what: str) -> tuple[int, int] | None:
    """The leading count pickle of a legacy tar member: (count, offset after it), or None once reported broken."""
    got = _one(sub, ctx, name, 0)
    count = _literal_at(got[0], sub, ctx, 0, got[1]) if got else None
    if got is None or not isinstance(count, int) or count < 0 or count > MAX_STORAGES:
        _tar_broken(sub, ctx, name, 0 if got is None else got[1], f"{what} count unreadable")
        return None
    return count, got[1]


def _walk_tar_storages(sub: Reader, ctx: InspectContext, name: str) -> None:
    """count pickle, then per storage: (key, location, type) pickle, int64 element count, raw bytes."""
    head = _count_prologue(sub, ctx, name, "storage")
    if head is None:
        return
    count, pos = head
    for _ in range(count):
        got = _one(sub, ctx, name, pos)
        if got is None:
            _tar_broken(sub, ctx, name, pos, "storage header pickle unreadable")
            return
        summary, pos = got
        itemsize = next((STORAGE_ITEMSIZE[g] for g in summary.globals if g in STORAGE_ITEMSIZE), None)
        raw = sub.read(pos, 8)
        if itemsize is None or len(raw) < 8:
            _tar_broken(sub, ctx, name, pos, "storage type or size unreadable")
            return
        (numel,) = struct.unpack("<q", raw)
        if numel < 0 or pos + 8 + numel * itemsize > sub.size:
            _tar_broken(sub, ctx, name, pos, f"storage of {numel} elements exceeds the member")
            return
        pos += 8 + numel * itemsize
    if pos < sub.size:
        _tar_broken(sub, ctx, name, pos, f"{sub.size - pos} bytes follow the last storage")


def _walk_tar_tensors(sub: Reader, ctx: InspectContext, name: str) -> None:
    """count pickle, then per tensor: (key, storage id, type) pickle, int32 ndim, 4 pad, sizes, strides, offset."""
    head = _count_prologue(sub, ctx, name, "tensor")
    if head is None:
        return
    count, pos = head
    for _ in range(count):
        got = _one(sub, ctx, name, pos)
        if got is None:
            _tar_broken(sub, ctx, name, pos, "tensor header pickle unreadable")
            return
        pos = got[1]
        raw = sub.read(pos, 4)
        if len(raw) < 4:
            _tar_broken(sub, ctx, name, pos, "tensor record truncated")
            return
        (ndim,) = struct.unpack("<i", raw)
        if ndim < 0 or ndim > 64:
            _tar_broken(sub, ctx, name, pos, f"tensor with {ndim} dimensions")
            return
        pos += 8 + 16 * ndim + 8
        if pos > sub.size:
            _tar_broken(sub, ctx, name, sub.size, "tensor record truncated")
            return
    if pos < sub.size:
        _tar_broken(sub, ctx, name, pos, f"{sub.size - pos} bytes follow the last tensor")


def _tar_broken(sub: Reader, ctx: InspectContext, name: str, at: int, why: str) -> None:
    ctx.add(
        "TORCH-STORAGE-INVALID",
        f"legacy torch tar member {name!r}: {why}",
        evidence={"member": name[:300], "offset": at},
    )
    ctx.partial(f"legacy torch tar member {name[:100]} inconsistent")
    if 0 <= at < sub.size:
        analyze_pickles(sub, ctx, member=f"{name}@{at}", start=at)


PYTORCH_LEGACY = FormatHandler(
    "pytorch-legacy",
    _sniff_stacked,
    _inspect_stacked,
    family="pickle",
    claims=(".pt", ".pth", ".bin", ".ckpt"),
    can_carry_code=True,
)
PYTORCH_LEGACY_TAR = FormatHandler(
    "pytorch-legacy-tar",
    _sniff_tar,
    _inspect_tar,
    family="pickle",
    claims=(".pt", ".pth", ".tar"),
    can_carry_code=True,
)
