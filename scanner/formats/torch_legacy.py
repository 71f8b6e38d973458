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

import bisect
import posixpath
import struct
from dataclasses import dataclass
from typing import Any

from ..io.reader import Reader, SliceReader
from ._pickle_bridge import analyze_pickles
from .interface import FormatHandler, InspectContext
from .parsers.tar_header import (
    BLOCK,
    GNU_LONG,
    MAX_PAX,
    PAX_TYPES,
    BadHeader,
    Extended,
    checksum_ok,
    nts,
    padded,
    parse_header,
    parse_pax,
    resolve_member,
    text,
)
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


def tar_members(reader: Reader, max_members: int) -> tuple[list[TarMember], str | None]:
    """The members as Python's ``tarfile`` (torch's reader) sees them; (members, problem).

    Headers are parsed by the shared tarfile-faithful parser (signed or unsigned checksums, base-256 numbers,
    ustar prefixes), and extended headers (GNU long names and links, PAX ``path``/``linkpath``/``size``,
    global PAX records) are applied by ``resolve_member`` in tarfile's order: the first extended header wins,
    a global ``size`` changes what a member reads but not where the next header is. A walk that disagrees
    with tarfile on where a member starts or ends would judge bytes torch never unpickles and skip the ones
    it does. Headers that contradict each other are the problem reported (the walk goes on as tarfile does).
    """
    out: list[TarMember] = []
    pos = 0
    chain: list[Extended] = []  # extended headers since the last member, in file order
    pax_global: dict[str, str] = {}
    conflict: str | None = None
    while pos + BLOCK <= reader.size:
        hdr = reader.read(pos, BLOCK)
        if hdr == b"\0" * BLOCK:
            return out, conflict
        try:
            h = parse_header(hdr)
        except BadHeader as exc:
            return out, f"bad tar header at offset {pos}: {exc}"
        if len(out) >= max_members:
            return out, "too many members"
        data = pos + BLOCK
        if h.type in (*PAX_TYPES, *GNU_LONG):
            if h.size > MAX_PAX:
                return out, f"PAX/GNU record of {h.size} bytes at offset {pos}"
            if data + h.size > reader.size:
                return out, f"extended header at offset {pos} runs past the end of the file"
            body = reader.read(data, h.size)
            if h.type in GNU_LONG:
                chain.append((h.type.decode(), text(nts(body))))
            else:
                try:
                    rec = parse_pax(body)
                except BadHeader as exc:
                    return out, f"bad PAX header at offset {pos}: {exc}"
                if h.type == b"g":
                    pax_global.update(rec)
                    chain.append(("g", None))
                else:
                    chain.append(("x", {**pax_global, **rec}))
            pos = data + padded(h.size)
            continue
        try:
            member = resolve_member(h, data, chain, pax_global)
        except BadHeader as exc:
            return out, f"member {h.name[:200]!r} at offset {pos}: {exc}"
        chain = []
        if member.size < 0 or data + member.size > reader.size:
            return out, f"member {member.name!r} runs past the end of the file"
        if member.conflicts and conflict is None:
            conflict = f"member {member.name[:200]!r} at offset {pos}: {member.conflicts[0]}"
        out.append(TarMember(_printable(member.name), h.type, data, member.size, _printable(member.linkname)))
        pos = member.next_pos
    return out, conflict or (None if pos >= reader.size else "truncated tar header")


def _printable(name: str) -> str:
    """A member name for reports: bytes that are not UTF-8 shown as U+FFFD (tarfile keeps them as surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _sniff_tar(head: bytes, reader: Reader) -> bool:
    if len(head) < BLOCK or not checksum_ok(head[:BLOCK]):
        return False
    try:
        members, _ = tar_members(reader, 16)
    except (ValueError, struct.error):
        return False
    names = {m.name.rstrip("/").split("/")[-1] for m in members}
    if len(names & LEGACY_TAR_MEMBERS) >= 2 and "pickle" in names:
        return True
    # torch.load's legacy tar branch unpickles the 'storages' member first (count, then one header pickle per
    # storage between raw bytes): a tar holding it runs those pickles even when the other members are missing
    return any(m.name.strip("/") in ("storages", "./storages") for m in members)


def _inspect_tar(reader: Reader, ctx: InspectContext) -> None:
    ctx.add(
        "TORCH-LEGACY-TAR",
        "very old PyTorch tar serialization; every member is unpickled on load and analyzed",
    )
    members, problem = tar_members(reader, ctx.limits.max_members)
    if problem:
        ctx.add("ARCHIVE-MALFORMED", f"legacy torch tar: {problem}")
        ctx.partial(f"legacy torch tar: {problem}")
    index = link_index(members)
    for i, m in enumerate(members):
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out in a legacy torch tar")
            return
        check_member_name(ctx, m.name)
        if m.type in LINK_TYPES:
            ctx.add(
                "ARCHIVE-SYMLINK",
                f"{m.name!r} is a link to {m.linkname!r}",
                evidence={"member": m.name[:300], "target": m.linkname[:300]},
            )
            target = link_target(members, i, index)
            # tarfile reads a link as the member it names (extractfile: both kinds; extract: a hard link whose
            # target is not on disk yet): torch then unpickles that content under the link's name
            if target is not None and _base(m.name) in LEGACY_TAR_MEMBERS:
                _judge_member(reader, ctx, target, f"{m.name} -> {target.name}", _base(m.name))
            continue
        if m.type == b"5" or m.type in SPECIAL_TYPES:
            if m.type in SPECIAL_TYPES:
                ctx.add(
                    "ARCHIVE-SPECIAL-MEMBER",
                    f"{m.name!r} is a device or FIFO entry",
                    evidence={"member": m.name[:300]},
                )
            continue
        _judge_member(reader, ctx, m, m.name, _base(m.name))


LINK_TYPES = (b"1", b"2")
SPECIAL_TYPES = (b"3", b"4", b"6")
MAX_LINK_HOPS = 32


def _base(name: str) -> str:
    return name.rstrip("/").split("/")[-1]


def link_index(members: list[TarMember]) -> dict[str, list[int]]:
    """Member positions by ``os.path.normpath`` name, in archive order (tarfile compares normalized names)."""
    index: dict[str, list[int]] = {}
    for j, c in enumerate(members):
        index.setdefault(posixpath.normpath(c.name), []).append(j)
    return index


def link_target(members: list[TarMember], i: int, index: dict[str, list[int]]) -> TarMember | None:
    """The member ``tarfile`` reads for the link ``members[i]`` (``TarFile._find_link_target``), chains followed.

    A symlink names a path relative to its own folder and is looked up in the whole archive; a hard link names
    an archive path looked up among the members before it; both compare normalized names, last match first.
    None when the chain ends nowhere, loops, or reaches a directory or device.
    """
    idx, m = i, members[i]
    for _ in range(MAX_LINK_HOPS):
        if m.type not in LINK_TYPES:
            return None if m.type == b"5" or m.type in SPECIAL_TYPES else m
        if m.type == b"2":
            want = posixpath.normpath("/".join(filter(None, (posixpath.dirname(m.name), m.linkname))))
            limit = len(members)
        else:
            want = posixpath.normpath(m.linkname)
            limit = idx
        found = index.get(want, [])
        k = bisect.bisect_left(found, limit)
        if k == 0:
            return None
        idx = found[k - 1]
        m = members[idx]
    return None


def _judge_member(reader: Reader, ctx: InspectContext, m: TarMember, name: str, base: str) -> None:
    """Member ``m``'s bytes judged as torch reads a member named ``base`` (``name`` labels the findings)."""
    sub = SliceReader(reader, m.offset, m.size, f"{ctx.path}!{name}")
    if base in ("sys_info", "pickle"):
        analyze_pickles(sub, ctx, member=name)
    elif base == "storages":
        _walk_tar_storages(sub, ctx, name)
    elif base == "tensors":
        _walk_tar_tensors(sub, ctx, name)
    else:
        ctx.add(
            "TORCH-UNEXPECTED-MEMBER",
            f"{name!r} is not a member of the legacy torch tar format",
            evidence={"member": name[:300]},
        )
        ctx.inspect_member(sub, name)


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
        # the element size of the storage type the header RETURNS (torch: key, location, storage_type = args):
        # a storage type merely imported elsewhere in the header (a popped DoubleStorage before a ByteStorage)
        # would make the walk skip 8x the bytes torch reads, past the next pickle it runs
        shape = summary.shapes[0] if summary.shapes else None
        stype = shape[2] if isinstance(shape, tuple) and len(shape) == 3 else None
        itemsize = STORAGE_ITEMSIZE.get(stype) if isinstance(stype, str) else None
        raw = sub.read(pos, 8)
        if itemsize is None or len(raw) < 8:
            _tar_broken(
                sub, ctx, name, pos, "storage header is not (key, location, storage type) or size unreadable"
            )
            return
        (numel,) = struct.unpack("<q", raw)
        if numel < 0 or pos + 8 + numel * itemsize > sub.size:
            _tar_broken(sub, ctx, name, pos, f"storage of {numel} elements exceeds the member")
            return
        pos += 8 + numel * itemsize
    # then the storage-views pickle, unpickled from the same member (legacy_load's storage_views)
    views = _one(sub, ctx, name, pos) if pos < sub.size else None
    if views is not None:
        pos = views[1]
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
