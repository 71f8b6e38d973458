"""A relaxed zip reader: sees every member any zip consumer might see.

Python's ``zipfile`` reads the last of two same-named members, PyTorch's miniz
the first; Python locates the central directory from its size, miniz from its
offset; CRC errors, odd flag bits and local/central disagreements make one
reader refuse what another accepts. Each of those differentials has been used to
hide a pickle from scanners, so this module parses the structure itself,
tolerantly, lists the union of what the readers would see, and reports every
disagreement as a finding instead of stopping at it.

Only the tail, the central directory and the local headers are read to list a
zip; member bytes are read when a caller opens a member. Stored members are
zero-copy windows; compressed ones are inflated in 1 MiB steps into a spool
(memory, then an unlinked temp file) under ratio, size and byte-budget caps, so
peak memory does not grow with the member.
"""

from __future__ import annotations

import bz2
import lzma
import re
import stat
import struct
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..io.reader import Reader, ReaderError, SliceReader
from ..io.spool import Spool, SpoolError, close_if_spooled
from .base import BudgetExceeded, InspectContext

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_EOCD = b"PK\x05\x06"
SIG_EOCD64 = b"PK\x06\x06"
SIG_LOC64 = b"PK\x06\x07"
SIG_DESCRIPTOR = b"PK\x07\x08"

EOCD_LEN = 22
LOC64_LEN = 20
EOCD64_LEN = 56
CENTRAL_LEN = 46
LOCAL_LEN = 30
MAX_COMMENT = 0xFFFF

STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
SUPPORTED_METHODS = {STORED: "stored", DEFLATED: "deflate", BZIP2: "bzip2", LZMA: "lzma"}

FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800

# member names kept while listing (real ones ~100 B): 10k names of 64 KiB would hold 1.3 GB
MAX_NAME_BYTES = 16 << 20
RATIO_FLOOR = 1 << 20  # small members may expand to 1 MiB whatever their ratio
CRC_STORED_CAP = 64 << 20  # stored members up to this size get their CRC checked when opened
MAX_FINDINGS_PER_RULE = 20
BLOCK = 1 << 20
IN_CHUNK = 256 << 10  # compressed bytes fed per step
OUT_CHUNK = 1 << 20  # inflated bytes produced per step: what one step may hold in memory


@dataclass
class ZipEntry:
    """One central-directory record, joined with its local header."""

    index: int
    name: str
    raw_name: bytes
    method: int
    flags: int
    crc: int
    compressed_size: int
    uncompressed_size: int
    local_header_offset: int  # absolute position in the reader
    external_attr: int = 0
    create_system: int = 0
    local_name: str | None = None  # None: local header missing or unreadable
    data_offset: int | None = None
    data_end: int | None = None  # end of data plus data descriptor
    zip64: bool = False

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") and self.compressed_size == 0

    @property
    def mode(self) -> int:
        return self.external_attr >> 16

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_encrypted(self) -> bool:
        return bool(self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) or self.method == 99


@dataclass
class ZipListing:
    entries: list[ZipEntry]
    prefix_length: int  # bytes before the first local header
    cd_offset: int
    cd_size: int
    eocd_offset: int | None  # None: no end record, entries come from walking local headers
    zip64: bool = False
    complete: bool = True  # False: entries were cut at the member limit or the structure was broken
    declared_entries: int = 0
    problems: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (rule, message, evidence)
    regions: list[tuple[int, int, str]] = field(default_factory=list)  # bytes outside every member

    def names(self) -> list[str]:
        return [e.name for e in self.entries]


# --------------------------------------------------------------------------- end records


@dataclass
class _End:
    pos: int  # EOCD position
    n_total: int
    cd_size: int
    cd_offset: int
    comment_len: int
    zip64_pos: int | None = None  # zip64 end record position, if any
    zip64_len: int = 0
    multi_disk: bool = False


def _parse_eocd(buf: bytes, at: int, pos: int, reader: Reader) -> _End | None:
    rec = buf[at : at + EOCD_LEN]
    if len(rec) < EOCD_LEN:
        return None
    _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = struct.unpack("<4sHHHHIIH", rec)
    end = _End(
        pos, n_total, cd_size, cd_offset, comment_len, multi_disk=bool(disk or cd_disk or n_disk != n_total)
    )
    # a zip64 locator sits right before the end record
    if pos >= LOC64_LEN:
        loc = reader.read(pos - LOC64_LEN, LOC64_LEN)
        if loc[:4] == SIG_LOC64:
            (rec64_pos,) = struct.unpack("<Q", loc[8:16])
            candidates = [
                rec64_pos,
                pos - LOC64_LEN - EOCD64_LEN,
            ]  # declared, and where it must be if contiguous
            for cand in candidates:
                if 0 <= cand <= reader.size - EOCD64_LEN:
                    r64 = reader.read(cand, EOCD64_LEN)
                    if r64[:4] == SIG_EOCD64:
                        (rec_size,) = struct.unpack("<Q", r64[4:12])
                        _, _, n_disk64, n_total64, cd_size64, cd_off64 = struct.unpack("<IIQQQQ", r64[16:56])
                        end.n_total, end.cd_size, end.cd_offset = n_total64, cd_size64, cd_off64
                        end.zip64_pos, end.zip64_len = cand, 12 + min(rec_size, 1 << 20)
                        break
    return end


def _find_end(reader: Reader) -> tuple[_End | None, list[_End]]:
    """The end record that describes a readable central directory (or the last one seen), and all candidates."""
    tail_len = min(reader.size, MAX_COMMENT + EOCD_LEN + 1)
    base = reader.size - tail_len
    tail = reader.read(base, tail_len)
    cands: list[_End] = []
    at = tail.rfind(SIG_EOCD)
    while at >= 0 and len(cands) < 16:
        e = _parse_eocd(tail, at, base + at, reader)
        if e is not None:
            cands.append(e)
        at = tail.rfind(SIG_EOCD, 0, at)
    for e in cands:
        if any(True for _ in _cd_positions(reader, e)):
            return e, cands
    return (cands[0] if cands else None), cands


def _cd_start_expected(e: _End) -> int:
    """Where the central directory must start if it sits right before the end records (Python's view)."""
    end_of_cd = e.zip64_pos if e.zip64_pos is not None else e.pos
    return end_of_cd - e.cd_size


def _cd_positions(reader: Reader, e: _End) -> Iterator[tuple[int, int]]:
    """(central directory position, offset adjustment) pairs that hold a central directory.

    miniz (PyTorch) trusts the recorded offset; Python trusts the recorded size and
    shifts every offset by the difference (data prepended to the zip). Both are
    tried; when they disagree both directories are read.
    """
    concat = _cd_start_expected(e) - e.cd_offset
    seen = set()
    for pos, adjust in ((e.cd_offset + concat, concat), (e.cd_offset, 0)):
        if pos in seen or pos < 0 or pos > e.pos:
            continue
        seen.add(pos)
        if e.n_total == 0 and e.cd_size == 0:
            yield pos, adjust
        elif reader.read(pos, 4) == SIG_CENTRAL:
            yield pos, adjust


# --------------------------------------------------------------------------- central directory


class _Window:
    """Buffered sequential reads over a Reader (central directories are read in 1 MiB blocks)."""

    def __init__(self, reader: Reader, block: int = BLOCK) -> None:
        self.r = reader
        self.block = block
        self.start = 0
        self.buf = b""

    def read(self, offset: int, n: int) -> bytes:
        if offset >= self.start and offset + n <= self.start + len(self.buf):
            return self.buf[offset - self.start : offset - self.start + n]
        if n > self.block:
            return self.r.read(offset, n)
        self.start = offset
        self.buf = self.r.read(offset, max(n, self.block))
        return self.buf[:n]


def decode_name(raw: bytes, flags: int) -> str:
    """Names as a human (and Python) reads them; raw bytes are what miniz compares."""
    if flags & FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int, bool]:
    """Apply a zip64 extended-information field (only the fields saturated in the fixed header are present)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, ln = struct.unpack("<HH", extra[pos : pos + 4])
        body = extra[pos + 4 : pos + 4 + ln]
        if tag == 0x0001:
            vals = [struct.unpack("<Q", body[i : i + 8])[0] for i in range(0, len(body) - 7, 8)]
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if offset == 0xFFFFFFFF:
                offset = next(it, offset)
            return usize, csize, offset, True
        pos += 4 + ln
    return usize, csize, offset, False


def _parse_central(
    reader: Reader, e: _End, max_entries: int
) -> tuple[list[ZipEntry], list[tuple[str, str, dict]], bool]:
    entries: list[ZipEntry] = []
    problems: list[tuple[str, str, dict]] = []
    complete = True
    positions = list(_cd_positions(reader, e))
    if len(positions) > 1:
        problems.append(
            (
                "ARCHIVE-MALFORMED",
                "two readable central directories: the recorded offset and the recorded size disagree, "
                "so PyTorch and Python list different members; both were read",
                {"offsets": [p for p, _ in positions]},
            )
        )
    seen_local: set[tuple[bytes, int]] = set()
    name_bytes = 0
    for cd_pos, adjust in positions:
        if not complete:
            break
        w = _Window(reader)
        pos = cd_pos
        cd_end = min(e.pos, cd_pos + e.cd_size) if e.cd_size else e.pos
        count = 0
        while pos + CENTRAL_LEN <= e.pos:
            hdr = w.read(pos, CENTRAL_LEN)
            if hdr[:4] != SIG_CENTRAL:
                break
            if len(entries) >= max_entries:
                complete = False
                break
            (
                _,
                made_by,
                _,
                flags,
                method,
                _,
                _,
                crc,
                csize,
                usize,
                nlen,
                xlen,
                clen,
                _,
                _,
                ext_attr,
                loff,
            ) = struct.unpack("<4sHHHHHHIIIHHHHHII", hdr)
            name_bytes += nlen
            if name_bytes > MAX_NAME_BYTES:
                complete = False
                problems.append(
                    (
                        "LIMIT-EXCEEDED",
                        f"member names add up to more than {MAX_NAME_BYTES} bytes; the members after were not listed",
                        {"limit": "zip_name_bytes", "listed": len(entries)},
                    )
                )
                break
            raw = w.read(pos + CENTRAL_LEN, nlen)
            extra = w.read(pos + CENTRAL_LEN + nlen, xlen)
            usize, csize, loff, z64 = _zip64_extra(extra, usize, csize, loff)
            pos += CENTRAL_LEN + nlen + xlen + clen
            count += 1
            key = (raw, loff + adjust)
            if key in seen_local:
                continue
            seen_local.add(key)
            entries.append(
                ZipEntry(
                    index=len(entries),
                    name=decode_name(raw, flags),
                    raw_name=raw,
                    method=method,
                    flags=flags,
                    crc=crc,
                    compressed_size=csize,
                    uncompressed_size=usize,
                    local_header_offset=loff + adjust,
                    external_attr=ext_attr,
                    create_system=made_by >> 8,
                    zip64=z64,
                )
            )
        if complete and count != e.n_total and not (e.n_total == 0xFFFF and count > 0xFFFF):
            problems.append(
                (
                    "ARCHIVE-MALFORMED",
                    f"end record declares {e.n_total} members, the central directory holds {count}",
                    {"declared": e.n_total, "found": count},
                )
            )
        if complete and pos != cd_end and e.cd_size:
            problems.append(
                (
                    "ARCHIVE-MALFORMED",
                    f"central directory size {e.cd_size} disagrees with its records ({pos - cd_pos} bytes)",
                    {"declared": e.cd_size, "found": pos - cd_pos},
                )
            )
    return entries, problems, complete


def _walk_local(reader: Reader, max_entries: int) -> tuple[list[ZipEntry], bool]:
    """Without an end record (truncated download, stripped directory) list members from the local headers."""
    entries: list[ZipEntry] = []
    pos = 0
    name_bytes = 0
    w = _Window(reader, 4096)
    while pos + LOCAL_LEN <= reader.size:
        hdr = w.read(pos, LOCAL_LEN)
        if hdr[:4] != SIG_LOCAL:
            break
        if len(entries) >= max_entries:
            return entries, False
        _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = struct.unpack("<4sHHHHHIIIHH", hdr)
        name_bytes += nlen
        if name_bytes > MAX_NAME_BYTES:
            return entries, False
        raw = w.read(pos + LOCAL_LEN, nlen)
        extra = w.read(pos + LOCAL_LEN + nlen, xlen)
        usize, csize, _, z64 = _zip64_extra(extra, usize, csize, 0)
        if flags & FLAG_DESCRIPTOR and csize == 0:
            csize = _scan_for_next_header(reader, pos + LOCAL_LEN + nlen + xlen)
        e = ZipEntry(
            len(entries), decode_name(raw, flags), raw, method, flags, crc, csize, usize, pos, zip64=z64
        )
        entries.append(e)
        data = pos + LOCAL_LEN + nlen + xlen
        nxt = data + csize
        if flags & FLAG_DESCRIPTOR:
            nxt += _descriptor_len(reader, nxt, z64)
        if nxt <= pos:
            break
        pos = nxt
    return entries, True


def _scan_for_next_header(reader: Reader, start: int) -> int:
    """Length of a member whose size only its data descriptor knows: up to the next zip signature (bounded)."""
    limit = min(reader.size, start + (64 << 20))
    if start >= limit:
        return 0
    pos = start
    while pos < limit:
        chunk = reader.read(pos, min(BLOCK + 3, limit - pos))
        for sig in (SIG_DESCRIPTOR, SIG_LOCAL, SIG_CENTRAL):
            i = chunk.find(sig)
            if i >= 0:
                return pos + i - start
        if len(chunk) <= 3:
            break
        pos += len(chunk) - 3
    return max(0, limit - start)


def _descriptor_len(reader: Reader, pos: int, zip64: bool) -> int:
    base = 20 if zip64 else 12
    return base + 4 if reader.read(pos, 4) == SIG_DESCRIPTOR else base


# --------------------------------------------------------------------------- cheap listing (sniffers)

_cache: weakref.WeakKeyDictionary[Reader, tuple[int, ZipListing | None]] = weakref.WeakKeyDictionary()


def central_listing(reader: Reader, max_entries: int = 10_000) -> ZipListing | None:
    """Members from the end record and central directory only (local headers not read); cached per reader.

    Falls back to walking local headers when a file starts like a zip but has no
    end record. Returns None for anything that is not a zip. Never raises for
    content problems (ReaderError passes through).
    """
    hit = _cache.get(reader)
    if hit is not None and hit[0] == max_entries:
        return hit[1]
    listing = _build_listing(reader, max_entries)
    _cache[reader] = (max_entries, listing)
    return listing


def _build_listing(reader: Reader, max_entries: int) -> ZipListing | None:
    if reader.size < EOCD_LEN:
        return None
    try:
        end, _ = _find_end(reader)
        if end is not None:
            entries, problems, complete = _parse_central(reader, end, max_entries)
            if entries or end.n_total == 0:
                return ZipListing(
                    entries=entries,
                    prefix_length=0,
                    cd_offset=_cd_start_expected(end),
                    cd_size=end.cd_size,
                    eocd_offset=end.pos,
                    zip64=end.zip64_pos is not None,
                    complete=complete,
                    declared_entries=end.n_total,
                    problems=problems,
                )
        if reader.read(0, 4) == SIG_LOCAL:
            entries, complete = _walk_local(reader, max_entries)
            problems = [
                (
                    "ARCHIVE-MALFORMED",
                    "no readable end-of-central-directory record (truncated or stripped zip); "
                    "members were listed from their local headers",
                    {},
                )
            ]
            return ZipListing(
                entries,
                0,
                reader.size,
                0,
                None,
                complete=complete,
                declared_entries=len(entries),
                problems=problems,
            )
    except (struct.error, ValueError, OverflowError):
        return None
    return None


def looks_like_zip(head: bytes, reader: Reader) -> bool:
    """Cheap: a local-header or empty-zip signature at 0, or an end record with a readable central directory."""
    if head[:4] in (SIG_LOCAL, SIG_EOCD):
        return True
    try:
        listing = central_listing(reader)
    except ReaderError:
        raise
    except Exception:
        return False
    # an end record with no members counts only at offset 0: a stray signature in a tail is no zip
    if listing is None or not (listing.entries or head[:4] == SIG_EOCD):
        return False
    return not _inside_tar_member(head, reader, listing)


def _inside_tar_member(head: bytes, reader: Reader, listing: ZipListing) -> bool:
    """A tar starts at offset 0 and the whole zip is one member's data: a tar member, not a zip file."""
    from .tar_archive import looks_like_tar_header, within_one_member

    if listing.eocd_offset is None or not looks_like_tar_header(head):
        return False
    start = min([listing.cd_offset, *(e.local_header_offset for e in listing.entries)])
    return within_one_member(reader, start, listing.eocd_offset + EOCD_LEN)


def list_names(reader: Reader) -> list[str]:
    """Member names from the central directory (empty when not a zip)."""
    listing = central_listing(reader)
    return listing.names() if listing else []


# --------------------------------------------------------------------------- member names


_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problems(name: str) -> list[str]:
    out = []
    if "\x00" in name:
        out.append("NUL byte")
    if "\\" in name:
        out.append("backslash")
    norm = name.replace("\\", "/")
    if norm.startswith("//"):
        out.append("UNC path")
    elif norm.startswith("/"):
        out.append("absolute path")
    if _DRIVE.match(norm):
        out.append("drive letter")
    if ".." in norm.split("/"):
        out.append("'..' component")
    if len(name) > 4096:
        out.append("overlong name")
    return out


def check_member_name(ctx: InspectContext, name: str) -> bool:
    """ARCHIVE-PATH-TRAVERSAL for a member name that escapes the extraction folder; True if raised."""
    problems = name_problems(name)
    if problems:
        ctx.add(
            "ARCHIVE-PATH-TRAVERSAL",
            f"member name {name[:200]!r} escapes the extraction folder ({', '.join(problems)})",
            evidence={"name": name[:300], "problems": problems},
        )
    return bool(problems)


# --------------------------------------------------------------------------- full read with findings


class _Reporter:
    """Caps repeated findings per rule so a hostile archive cannot flood the report."""

    def __init__(self, ctx: InspectContext) -> None:
        self.ctx = ctx
        self.counts: dict[str, int] = {}

    def add(self, rule: str, message: str, **kw: Any) -> None:
        n = self.counts.get(rule, 0) + 1
        self.counts[rule] = n
        if n <= MAX_FINDINGS_PER_RULE:
            self.ctx.add(rule, message, **kw)

    def flush(self) -> None:
        for rule, n in self.counts.items():
            if n > MAX_FINDINGS_PER_RULE:
                self.ctx.add(
                    rule,
                    f"... and {n - MAX_FINDINGS_PER_RULE} more {rule} findings in this archive",
                    evidence={"suppressed": n - MAX_FINDINGS_PER_RULE},
                )


def read_zip(reader: Reader, ctx: InspectContext) -> ZipListing | None:
    """List every member and report every structural anomaly; None when no zip structure is found at all.

    Everything readable is returned even when the structure is broken: callers
    inspect what they can and the findings make the verdict fail closed.
    """
    listing = central_listing(reader, ctx.limits.max_members)
    if listing is None:
        ctx.add("ARCHIVE-MALFORMED", "no zip end record or local headers could be read")
        ctx.unanalyzable("zip structure unreadable")
        return None
    rep = _Reporter(ctx)
    for rule, msg, ev in listing.problems:
        rep.add(rule, msg, evidence=ev)
        if rule == "ARCHIVE-MALFORMED":
            ctx.partial("malformed zip structure")
    if not listing.complete and any(p[0] == "LIMIT-EXCEEDED" for p in listing.problems):
        ctx.partial("zip listing stopped at a limit")
    elif not listing.complete:
        ctx.add(
            "ARCHIVE-TOO-MANY-MEMBERS",
            f"more than {ctx.limits.max_members} members; the rest were not inspected",
            evidence={"limit": ctx.limits.max_members, "declared": listing.declared_entries},
        )
        ctx.partial(f"members past {ctx.limits.max_members} not inspected")
    w = _Window(reader, 4096)  # local headers are scattered between (possibly huge) member data
    for e in listing.entries:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out while reading zip local headers")
            break
        _join_local(reader, w, e, rep)
        _check_entry(ctx, e, rep)
    _check_names(listing, rep)
    _check_layout(reader, listing, rep, ctx)
    rep.flush()
    return listing


def _join_local(reader: Reader, w: _Window, e: ZipEntry, rep: _Reporter) -> None:
    hdr = w.read(e.local_header_offset, LOCAL_LEN) if e.local_header_offset >= 0 else b""
    if len(hdr) < LOCAL_LEN or hdr[:4] != SIG_LOCAL:
        rep.add(
            "ARCHIVE-MALFORMED",
            f"{e.name!r}: no local header at offset {e.local_header_offset}",
            offset=e.local_header_offset,
            evidence={"member": e.name[:300]},
        )
        rep.ctx.partial("zip member without local header")
        return
    _, _, lflags, lmethod, _, _, lcrc, lcsize, lusize, nlen, xlen = struct.unpack("<4sHHHHHIIIHH", hdr)
    raw = w.read(e.local_header_offset + LOCAL_LEN, nlen)
    extra = w.read(e.local_header_offset + LOCAL_LEN + nlen, xlen)
    lusize, lcsize, _, lz64 = _zip64_extra(extra, lusize, lcsize, 0)
    e.local_name = decode_name(raw, lflags)
    e.data_offset = e.local_header_offset + LOCAL_LEN + nlen + xlen
    end = e.data_offset + e.compressed_size
    if e.flags & FLAG_DESCRIPTOR or lflags & FLAG_DESCRIPTOR:
        end += _descriptor_len(reader, end, e.zip64 or lz64)
    e.data_end = end
    diffs: dict[str, Any] = {}
    if raw != e.raw_name:
        diffs["name"] = [e.name[:200], e.local_name[:200]]
    if lmethod != e.method:
        diffs["method"] = [e.method, lmethod]
    if lflags != e.flags:
        diffs["flags"] = [e.flags, lflags]
    if not (lflags & FLAG_DESCRIPTOR and lcsize == 0 and lusize == 0 and lcrc == 0):
        if lcsize != e.compressed_size:
            diffs["compressed_size"] = [e.compressed_size, lcsize]
        if lusize != e.uncompressed_size:
            diffs["uncompressed_size"] = [e.uncompressed_size, lusize]
        if lcrc != e.crc and not (lflags & FLAG_DESCRIPTOR and lcrc == 0):
            diffs["crc"] = [e.crc, lcrc]
    if diffs:
        rep.add(
            "ZIP-NAME-MISMATCH",
            f"local header of {e.name!r} disagrees with the central directory on {', '.join(diffs)} "
            "(Python zipfile refuses the member, PyTorch reads it)",
            offset=e.local_header_offset,
            evidence={"member": e.name[:300], "central_vs_local": diffs},
        )
    if e.data_offset + e.compressed_size > reader.size:
        rep.add(
            "ARCHIVE-MALFORMED",
            f"{e.name!r}: member data runs past the end of the file (truncated)",
            offset=e.data_offset,
            evidence={"member": e.name[:300], "compressed_size": e.compressed_size},
        )
        rep.ctx.partial("truncated zip member")


def _check_entry(ctx: InspectContext, e: ZipEntry, rep: _Reporter) -> None:
    if e.is_encrypted:
        rep.add(
            "ARCHIVE-ENCRYPTED",
            f"{e.name!r} is flagged encrypted (Python refuses it; older PyTorch ignored the flag); "
            "its bytes are inspected as stored",
            evidence={"member": e.name[:300], "flags": e.flags},
        )
        ctx.partial(f"encrypted zip member {e.name[:100]}")
    if e.method not in SUPPORTED_METHODS and not e.is_dir:
        rep.add(
            "ARCHIVE-UNSUPPORTED",
            f"{e.name!r} uses compression method {e.method}, which cannot be read",
            evidence={"member": e.name[:300], "method": e.method},
        )
        ctx.partial(f"zip member {e.name[:100]} uses unsupported method {e.method}")
    for nm in {e.name, e.local_name or e.name}:
        problems = name_problems(nm)
        if problems:
            rep.add(
                "ARCHIVE-PATH-TRAVERSAL",
                f"member name {nm[:200]!r} escapes the extraction folder ({', '.join(problems)})",
                evidence={"name": nm[:300], "problems": problems},
            )
    mode = e.mode
    if mode:
        if stat.S_ISLNK(mode):
            rep.add("ARCHIVE-SYMLINK", f"{e.name!r} is a symbolic link", evidence={"member": e.name[:300]})
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            rep.add(
                "ARCHIVE-SPECIAL-MEMBER",
                f"{e.name!r} is a device, FIFO or socket entry",
                evidence={"member": e.name[:300], "mode": oct(mode)},
            )


def _check_names(listing: ZipListing, rep: _Reporter) -> None:
    by_name: dict[bytes, list[ZipEntry]] = {}
    for e in listing.entries:
        by_name.setdefault(e.raw_name, []).append(e)
    for group in by_name.values():
        if len(group) > 1:
            rep.add(
                "ZIP-DUPLICATE-NAME",
                f"{len(group)} members are named {group[0].name!r} (Python reads the last, PyTorch the first); all were inspected",
                evidence={"member": group[0].name[:300], "indexes": [e.index for e in group][:20]},
            )


def _check_layout(reader: Reader, listing: ZipListing, rep: _Reporter, ctx: InspectContext) -> None:
    listing.regions = []
    spans = sorted(
        ((e.local_header_offset, e.data_end, e) for e in listing.entries if e.data_end is not None),
        key=lambda t: (t[0], t[1], t[2].index),
    )
    if not spans:  # no member: everything before the directory is unexplained
        if listing.eocd_offset is not None and listing.cd_offset > 0:
            listing.prefix_length = min(listing.cd_offset, reader.size)
            rep.add(
                "ZIP-PREFIX-DATA",
                f"{listing.prefix_length} bytes precede an empty zip directory",
                offset=0,
                evidence={"length": listing.prefix_length},
            )
        return
    listing.prefix_length = spans[0][0]
    overlaps = []
    gaps = []
    prev_end = spans[0][0]
    prev_entry: ZipEntry | None = None
    for start, end, e in spans:
        if start < prev_end and prev_entry is not None:
            overlaps.append((prev_entry.name, e.name, start))
        elif start > prev_end:
            gaps.append((prev_end, start))
        if end > prev_end:
            prev_end = end
            prev_entry = e
        elif prev_entry is None:
            prev_entry = e
    if overlaps:
        rep.add(
            "ZIP-OVERLAP",
            f"{len(overlaps)} member(s) overlap other members' data (non-recursive zip bomb or hidden content)",
            offset=overlaps[0][2],
            evidence={"pairs": [[a[:100], b[:100]] for a, b, _ in overlaps[:10]], "count": len(overlaps)},
        )
    if listing.prefix_length > 0:
        rep.add(
            "ZIP-PREFIX-DATA",
            f"{listing.prefix_length} bytes precede the first zip member (polyglot: a loader that reads from "
            "byte 0, e.g. torch.load on a non-zip, sees them first)",
            offset=0,
            evidence={"length": listing.prefix_length},
        )
    if listing.eocd_offset is None or not listing.complete:
        return
    cd_start = listing.cd_offset
    if cd_start > prev_end:
        gaps.append((prev_end, cd_start))
    for a, b in gaps:
        rep.add(
            "ZIP-EXTRA-DATA",
            f"{b - a} bytes between zip members at offset {a} belong to no member",
            offset=a,
            evidence={"start": a, "length": b - a},
        )
    listing_gaps = [(a, b, f"<gap@{a}>") for a, b in gaps]
    after_cd = cd_start + listing.cd_size
    records_start: int | None = listing.eocd_offset
    if listing.zip64:
        records_start = _zip64_start(reader, listing.eocd_offset)
    if records_start is not None and after_cd < records_start:
        rep.add(
            "ZIP-EXTRA-DATA",
            f"{records_start - after_cd} bytes between the central directory and the end record",
            offset=after_cd,
            evidence={"start": after_cd, "length": records_start - after_cd},
        )
        listing_gaps.append((after_cd, records_start, f"<gap@{after_cd}>"))
    comment_len = struct.unpack("<H", reader.read(listing.eocd_offset + 20, 2))[0]
    tail_start = listing.eocd_offset + EOCD_LEN + comment_len
    if tail_start < reader.size:
        rep.add(
            "ZIP-EXTRA-DATA",
            f"{reader.size - tail_start} bytes after the end of the zip",
            offset=tail_start,
            evidence={"start": tail_start, "length": reader.size - tail_start},
        )
        listing_gaps.append((tail_start, reader.size, "<trailing>"))
    listing.regions = listing_gaps


def _zip64_start(reader: Reader, eocd: int) -> int | None:
    loc = reader.read(eocd - LOC64_LEN, LOC64_LEN) if eocd >= LOC64_LEN else b""
    if loc[:4] != SIG_LOC64:
        return eocd
    (rec,) = struct.unpack("<Q", loc[8:16])
    if rec < eocd and reader.read(rec, 4) == SIG_EOCD64:
        return rec
    return eocd - LOC64_LEN


def extra_regions(listing: ZipListing) -> list[tuple[int, int, str]]:
    """(start, end, label) of bytes outside every member: prefix, gaps, trailing data."""
    regions = [(0, listing.prefix_length, "<prefix>")] if listing.prefix_length > 0 else []
    return regions + listing.regions


def inspect_extra_regions(reader: Reader, listing: ZipListing, ctx: InspectContext) -> None:
    """Bytes that belong to no member are inspected as nested content: a pickle prefix is a live polyglot."""
    for start, end, label in extra_regions(listing):
        if end > start:
            ctx.inspect_member(SliceReader(reader, start, min(end, reader.size) - start, label), label)


# --------------------------------------------------------------------------- member content


def open_member(reader: Reader, entry: ZipEntry, ctx: InspectContext) -> Reader | None:
    """A Reader over the member's content, or None (reported) when it cannot be read.

    Stored members are zero-copy windows. Compressed members are inflated into a
    spool (a few MiB of memory, then an unlinked temp file), stopping at the
    per-entry ratio cap, the per-member size cap and the shared byte budget (all
    reported). A CRC mismatch is reported and the content is still returned for
    inspection. Close the Reader when done (``close_if_spooled``).
    """
    if entry.data_offset is None or entry.data_offset < 0 or entry.compressed_size < 0:
        return None
    label = f"{ctx.path}!{entry.name}"
    avail = max(0, reader.size - entry.data_offset)
    if entry.method == STORED:
        length = min(max(entry.compressed_size, entry.uncompressed_size), avail)
        if entry.compressed_size != entry.uncompressed_size:
            ctx.add(
                "ARCHIVE-MALFORMED",
                f"stored member {entry.name!r} records different compressed and uncompressed sizes",
                evidence={
                    "member": entry.name[:300],
                    "sizes": [entry.compressed_size, entry.uncompressed_size],
                },
            )
        sub = SliceReader(reader, entry.data_offset, length, label)
        if length <= CRC_STORED_CAP and length == entry.uncompressed_size:
            crc = 0
            for chunk in sub.stream():
                crc = zlib.crc32(chunk, crc)
            sub.bytes_read = 0
            _check_crc(ctx, entry, crc)
        return sub
    if entry.method not in SUPPORTED_METHODS:
        return None
    return _inflate(reader, entry, ctx, label)


def _check_crc(ctx: InspectContext, entry: ZipEntry, crc: int) -> None:
    if crc != entry.crc and not entry.is_encrypted:
        ctx.add(
            "ZIP-CRC-MISMATCH",
            f"CRC-32 of {entry.name!r} does not match its record (Python refuses it; PyTorch did not check); "
            "content inspected anyway",
            evidence={"member": entry.name[:300], "recorded": f"{entry.crc:08x}", "actual": f"{crc:08x}"},
        )


class _Decomp:
    def __init__(self, method: int, first: bytes) -> None:
        self.skip = 0
        if method == DEFLATED:
            self.d: Any = zlib.decompressobj(-15)
        elif method == BZIP2:
            self.d = bz2.BZ2Decompressor()
        else:  # LZMA: 2-byte version, 2-byte properties length, properties, raw LZMA1 stream
            if len(first) < 4:
                raise ValueError("lzma header truncated")
            (plen,) = struct.unpack("<H", first[2:4])
            props = first[4 : 4 + plen]
            if len(props) < 5:
                raise ValueError("lzma properties truncated")
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
            self.d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
            self.skip = 4 + plen

    def feed(self, data: bytes, max_length: int) -> bytes:
        if self.eof:
            return b""
        if hasattr(self.d, "unconsumed_tail"):  # zlib keeps unread input for the caller
            return self.d.decompress(self.d.unconsumed_tail + data, max_length)
        return self.d.decompress(data, max_length)

    @property
    def pending(self) -> bool:
        d = self.d
        if hasattr(d, "unconsumed_tail"):
            return bool(d.unconsumed_tail)
        return not getattr(d, "needs_input", True) and not getattr(d, "eof", False)

    @property
    def eof(self) -> bool:
        return bool(getattr(self.d, "eof", False))


def _inflate(reader: Reader, entry: ZipEntry, ctx: InspectContext, label: str) -> Reader | None:
    """Inflate into a bounded-memory spool (disk past a few MiB), checking every cap while the bytes stream."""
    assert entry.data_offset is not None
    csize = min(entry.compressed_size, max(0, reader.size - entry.data_offset))
    cap = min(ctx.limits.max_member_inflated, max(entry.compressed_size * ctx.limits.max_ratio, RATIO_FLOOR))
    spool = Spool(label, ctx.limits.spool_memory)
    crc = 0
    d: _Decomp | None = None
    error: str | None = None
    bomb = False
    try:
        for chunk in reader.stream(entry.data_offset, csize, chunk=IN_CHUNK):
            if d is None:
                d = _Decomp(entry.method, chunk)
                chunk = chunk[d.skip :]
            data = chunk
            while True:
                want = min(OUT_CHUNK, cap + 1 - spool.size)
                piece = d.feed(data, want)
                data = b""
                if piece:
                    ctx.state.charge(len(piece))
                    crc = zlib.crc32(piece, crc)
                    spool.write(piece)
                if spool.size > cap:
                    bomb = True
                    break
                if d.eof or not (d.pending or len(piece) >= want):
                    break
                if ctx.state.out_of_time():
                    break
            if bomb or d.eof:
                break
            if ctx.state.out_of_time():
                spool.close()
                ctx.limit_hit("file_seconds", f"time budget ran out inflating {entry.name!r}")
                return None
    except BudgetExceeded as exc:
        spool.close()
        ctx.limit_hit("max_total_uncompressed", f"{entry.name!r}: {exc}")
        return None
    except SpoolError as exc:
        ctx.limit_hit("spool", f"{entry.name!r} not inspected: {exc}")
        return None
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if bomb:
        spool.close()
        ratio_cap = entry.compressed_size * ctx.limits.max_ratio
        what = (
            f"the {ctx.limits.max_member_inflated}-byte member cap"
            if cap == ctx.limits.max_member_inflated and cap < ratio_cap
            else f"{ctx.limits.max_ratio}:1"
        )
        ctx.add(
            "ARCHIVE-BOMB",
            f"{entry.name!r} expands beyond {what} ({entry.compressed_size} compressed bytes); inflation stopped",
            evidence={
                "member": entry.name[:300],
                "compressed_size": entry.compressed_size,
                "declared_size": entry.uncompressed_size,
                "stopped_at": spool.size,
            },
        )
        ctx.partial(f"zip member {entry.name[:100]} not inspected (decompression bomb)")
        return None
    if error is None and (d is None or not d.eof) and entry.compressed_size > 0:
        error = "compressed stream ends early"
    if error is not None:
        ctx.add(
            "ARCHIVE-MALFORMED",
            f"{entry.name!r}: compressed data is corrupt ({error}); the readable part is inspected",
            evidence={"member": entry.name[:300], "error": error[:200]},
        )
        ctx.partial(f"zip member {entry.name[:100]} corrupt")
    elif spool.size != entry.uncompressed_size:
        ctx.add(
            "ARCHIVE-MALFORMED",
            f"{entry.name!r} inflates to {spool.size} bytes, its record says {entry.uncompressed_size}",
            evidence={"member": entry.name[:300], "declared": entry.uncompressed_size, "actual": spool.size},
        )
    if error is None:
        _check_crc(ctx, entry, crc)
    return spool.reader()


def member_head(reader: Reader, entry: ZipEntry, n: int = 512) -> bytes:
    """The first ``n`` bytes of a member's content, inflating no more than needed ("" when unreadable)."""
    if entry.data_offset is None or entry.data_offset < 0 or entry.compressed_size < 0:
        return b""
    if entry.method == STORED:
        return reader.read(entry.data_offset, min(n, entry.compressed_size))
    if entry.method not in SUPPORTED_METHODS:
        return b""
    try:
        first = reader.read(entry.data_offset, min(entry.compressed_size, 64 << 10))
        d = _Decomp(entry.method, first)
        return d.feed(first[d.skip :], n)
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
        return b""


def inspect_entry(reader: Reader, entry: ZipEntry, ctx: InspectContext) -> None:
    """Open one member and hand it to content detection (bytes were charged while inflating)."""
    if entry.is_dir:
        return
    sub = open_member(reader, entry, ctx)
    if sub is not None:
        try:
            ctx.inspect_member(sub, entry.name)
        finally:
            close_if_spooled(sub)


def unique_entries(listing: ZipListing) -> Iterator[ZipEntry]:
    """Entries whose data has not been seen yet (overlapping records pointing at the same bytes are inspected once)."""
    seen: set[tuple[int | None, int, int]] = set()
    for e in listing.entries:
        key = (e.data_offset, e.compressed_size, e.method)
        if e.data_offset is not None and key in seen:
            continue
        seen.add(key)
        yield e


def inspect_all(reader: Reader, ctx: InspectContext, what: str = "zip") -> ZipListing | None:
    """Read the structure, then inspect the bytes around the entries and every entry by content."""
    listing = read_zip(reader, ctx)
    if listing is None:
        return None
    inspect_extra_regions(reader, listing, ctx)
    for e in unique_entries(listing):
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", f"time budget ran out inspecting {what} members")
            break
        inspect_entry(reader, e, ctx)
    return listing
