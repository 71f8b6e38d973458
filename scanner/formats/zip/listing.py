"""Listing a zip without judging it: end records, central directory, local headers.

Cheap enough for sniffers: only the tail, the central directory and the local
headers are read. The listing keeps the union of what Python's ``zipfile`` and
PyTorch's miniz would see and records every disagreement in
``ZipListing.problems`` for ``checks`` to report.
"""

from __future__ import annotations

import stat
import struct
import weakref
from dataclasses import dataclass, field
from typing import Any

from ...io.reader import Reader, ReaderError
from ..parsers.tar_header import looks_like_tar_header, within_one_member

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
    structure: list[tuple[int, int]] = field(default_factory=list)  # central directories and end records read

    def names(self) -> list[str]:
        return [e.name for e in self.entries]


# --------------------------------------------------------------------------- end records


@dataclass(frozen=True)
class _Rec64:
    """A zip64 end-of-central-directory record: where it is and the values it overrides."""

    pos: int
    length: int
    n_total: int
    cd_size: int
    cd_offset: int


@dataclass
class _End:
    pos: int  # EOCD position
    n_total: int  # the 32-bit record's values
    cd_size: int
    cd_offset: int
    comment_len: int
    multi_disk: bool = False
    loc: tuple[int, int, int] | None = None  # zip64 locator: (disk of the record, record offset, total disks)
    rec_declared: _Rec64 | None = None  # the zip64 record where the locator says it is (miniz)
    rec_contiguous: _Rec64 | None = None  # the zip64 record right before the locator (Python 3.11 zipfile)

    @property
    def end(self) -> int:
        return self.pos + EOCD_LEN + self.comment_len


@dataclass(frozen=True)
class _View:
    """Where one real zip reader finds the central directory of an end record.

    ``adjust`` is added to every recorded local-header offset (Python's
    ``concat`` for data prepended to the zip; miniz adds nothing).
    """

    readers: tuple[str, ...]
    cd_pos: int
    adjust: int
    expect: tuple[tuple[int, int], ...]  # (member count, directory size) each of those readers expects
    records: tuple[int, int]  # span of the end records they read (zip64 record or locator .. EOCD end)


def _rec64(reader: Reader, pos: int) -> _Rec64 | None:
    if not 0 <= pos <= reader.size - EOCD64_LEN:
        return None
    r64 = reader.read(pos, EOCD64_LEN)
    if r64[:4] != SIG_EOCD64:
        return None
    (rec_size,) = struct.unpack("<Q", r64[4:12])
    _, _, _, n_total64, cd_size64, cd_off64 = struct.unpack("<IIQQQQ", r64[16:56])
    return _Rec64(pos, 12 + min(rec_size, 1 << 20), n_total64, cd_size64, cd_off64)


def _parse_eocd(buf: bytes, at: int, pos: int, reader: Reader) -> _End | None:
    rec = buf[at : at + EOCD_LEN]
    if len(rec) < EOCD_LEN:
        return None
    _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = struct.unpack("<4sHHHHIIH", rec)
    end = _End(
        pos, n_total, cd_size, cd_offset, comment_len, multi_disk=bool(disk or cd_disk or n_disk != n_total)
    )
    # a zip64 locator sits right before the end record; miniz reads the zip64 record where the locator
    # says, Python 3.11's zipfile right before the locator (newer ones: where it says, else right before)
    if pos >= LOC64_LEN:
        loc = reader.read(pos - LOC64_LEN, LOC64_LEN)
        if loc[:4] == SIG_LOC64:
            loc_disk, rec64_pos, loc_disks = struct.unpack("<IQI", loc[4:20])
            end.loc = (loc_disk, rec64_pos, loc_disks)
            end.rec_declared = _rec64(reader, rec64_pos)
            end.rec_contiguous = _rec64(reader, pos - LOC64_LEN - EOCD64_LEN)
    return end


def _views(reader: Reader, e: _End) -> list[_View]:
    """The central directory each modelled reader takes from end record ``e`` (readers that fail give none).

    - Python 3.11 ``zipfile`` (numpy, Keras, skops, TorchServe, MLflow): the zip64 record right before the
      locator, the directory right before the end records (``concat`` shifts every offset);
    - miniz (PyTorch): the zip64 record at the locator's offset, the directory at its recorded offset;
    - newer ``zipfile``: the zip64 record at the locator's offset, else right before it, the directory right
      before that record.
    """
    found: dict[tuple[int, int], tuple[list[str], list[tuple[int, int]], int]] = {}

    def add(who: str, rec: _Rec64 | None, cd_pos: int, adjust: int, start: int) -> None:
        expect = (rec.n_total, rec.cd_size) if rec else (e.n_total, e.cd_size)
        whos, expects, first = found.setdefault((cd_pos, adjust), ([], [], start))
        whos.append(who)
        if expect not in expects:
            expects.append(expect)
        found[(cd_pos, adjust)] = (whos, expects, min(first, start))

    loc_start = e.pos - LOC64_LEN if e.loc else e.pos
    # Python 3.11
    if not (e.loc and (e.loc[0] != 0 or e.loc[2] > 1)) and not (e.loc and e.pos < LOC64_LEN + EOCD64_LEN):
        rec = e.rec_contiguous if e.loc else None
        size, off = (rec.cd_size, rec.cd_offset) if rec else (e.cd_size, e.cd_offset)
        cd_pos = e.pos - size - (LOC64_LEN + EOCD64_LEN if rec else 0)
        add("zipfile", rec, cd_pos, cd_pos - off, rec.pos if rec else loc_start)
    # miniz
    rec = None
    miniz_ok = True
    if e.loc and e.pos >= LOC64_LEN + EOCD64_LEN:
        if e.loc[1] > reader.size - EOCD64_LEN:
            miniz_ok = False
        else:
            rec = e.rec_declared
            if rec is not None and e.loc[2] != 1:
                miniz_ok = False
    if miniz_ok:
        size, off = (rec.cd_size, rec.cd_offset) if rec else (e.cd_size, e.cd_offset)
        add("miniz", rec, off, 0, rec.pos if rec else loc_start)
    # newer zipfile
    if e.loc and e.loc[0] == 0 and e.loc[2] <= 1 and e.pos >= LOC64_LEN + EOCD64_LEN:
        rec = e.rec_declared if e.rec_declared is not None else e.rec_contiguous
        if rec is not None:
            cd_pos = rec.pos - rec.cd_size
            add("zipfile>=3.13", rec, cd_pos, cd_pos - rec.cd_offset, rec.pos)
    out = []
    for (cd_pos, adjust), (who, expects, first) in found.items():
        if cd_pos < 0 or cd_pos > reader.size:
            continue
        if expects == [(0, 0)]:
            pass  # an empty directory needs no record
        elif cd_pos + CENTRAL_LEN > reader.size or reader.read(cd_pos, 4) != SIG_CENTRAL:
            continue
        out.append(_View(tuple(who), cd_pos, adjust, tuple(expects), (first, e.end)))
    return out


def _find_end(reader: Reader) -> tuple[_End | None, list[_View], bool]:
    """The end record real readers use (the last one), the directories they find from it, and whether it was it.

    miniz and Python both take the last end-record signature with room for a record after it. When no
    modelled reader can read a directory from it, an earlier end record that describes one is listed
    instead (so its members are inspected) and the third value is False: the file is malformed.
    """
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
    for i, e in enumerate(cands):
        views = _views(reader, e)
        if views:
            return e, views, i == 0
    return (cands[0] if cands else None), [], True


# --------------------------------------------------------------------------- central directory


class Window:
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


def zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int, bool]:
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
    reader: Reader, e: _End, views: list[_View], max_entries: int
) -> tuple[list[ZipEntry], list[tuple[str, str, dict]], bool, list[tuple[int, int]]]:
    """Entries of every directory a modelled reader finds (the union), the disagreements, and the spans read."""
    entries: list[ZipEntry] = []
    problems: list[tuple[str, str, dict]] = []
    structure: list[tuple[int, int]] = []
    complete = True
    if len(views) > 1:
        problems.append(
            (
                "ARCHIVE-MALFORMED",
                "two readable central directories or more: the zip readers disagree on where it is ("
                + "; ".join(f"{'/'.join(v.readers)} at {v.cd_pos}" for v in views)
                + "), so PyTorch and Python list different members; all were read",
                {"offsets": [v.cd_pos for v in views], "readers": [list(v.readers) for v in views]},
            )
        )
    seen_local: set[tuple[bytes, int]] = set()
    name_bytes = 0
    for view in views:
        if not complete:
            break
        structure.append(view.records)
        empty = view.expect == ((0, 0),)
        if not empty and (
            view.cd_pos >= e.pos or any(view.cd_pos + size > view.records[0] for _, size in view.expect)
        ):
            problems.append(
                (
                    "ARCHIVE-MALFORMED",
                    f"the central directory {'/'.join(view.readers)} reads at offset {view.cd_pos} does not "
                    "precede its end records (no zip writer puts it there)",
                    {"offset": view.cd_pos, "end_record": e.pos},
                )
            )
        w = Window(reader)
        cd_pos, adjust = view.cd_pos, view.adjust
        pos = cd_pos
        count = 0
        while pos + CENTRAL_LEN <= reader.size:
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
            usize, csize, loff, z64 = zip64_extra(extra, usize, csize, loff)
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
        structure.append((cd_pos, pos))
        if not complete:
            break
        for n_total, cd_size in view.expect:
            if count != n_total and not (n_total == 0xFFFF and count > 0xFFFF):
                problems.append(
                    (
                        "ARCHIVE-MALFORMED",
                        f"end record declares {n_total} members, the central directory holds {count}",
                        {"declared": n_total, "found": count},
                    )
                )
            if cd_size and pos - cd_pos != cd_size:
                problems.append(
                    (
                        "ARCHIVE-MALFORMED",
                        f"central directory size {cd_size} disagrees with its records ({pos - cd_pos} bytes)",
                        {"declared": cd_size, "found": pos - cd_pos},
                    )
                )
    return entries, problems, complete, structure


def _walk_local(reader: Reader, max_entries: int) -> tuple[list[ZipEntry], bool]:
    """Without an end record (truncated download, stripped directory) list members from the local headers."""
    entries: list[ZipEntry] = []
    pos = 0
    name_bytes = 0
    w = Window(reader, 4096)
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
        usize, csize, _, z64 = zip64_extra(extra, usize, csize, 0)
        if flags & FLAG_DESCRIPTOR and csize == 0:
            csize = _scan_for_next_header(reader, pos + LOCAL_LEN + nlen + xlen)
        e = ZipEntry(
            len(entries), decode_name(raw, flags), raw, method, flags, crc, csize, usize, pos, zip64=z64
        )
        entries.append(e)
        data = pos + LOCAL_LEN + nlen + xlen
        nxt = data + csize
        if flags & FLAG_DESCRIPTOR:
            nxt += descriptor_len(reader, nxt, z64)
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


def descriptor_len(reader: Reader, pos: int, zip64: bool) -> int:
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
        end, views, last = _find_end(reader)
        if end is not None and views:
            entries, problems, complete, structure = _parse_central(reader, end, views, max_entries)
            if entries or all(v.expect == ((0, 0),) for v in views):
                if not last:
                    problems.insert(
                        0,
                        (
                            "ARCHIVE-MALFORMED",
                            "the last end-of-central-directory record, the one PyTorch and Python read, describes "
                            f"no central directory this scanner can read; an earlier one at offset {end.pos} was "
                            "listed instead",
                            {"listed_end_record": end.pos},
                        ),
                    )
                first = views[0]
                return ZipListing(
                    entries=entries,
                    prefix_length=0,
                    cd_offset=first.cd_pos,
                    cd_size=first.expect[0][1],
                    eocd_offset=end.pos,
                    zip64=end.loc is not None,
                    complete=complete,
                    declared_entries=first.expect[0][0],
                    problems=problems,
                    structure=structure,
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
    if listing.eocd_offset is None or not looks_like_tar_header(head):
        return False
    start = min([listing.cd_offset, *(e.local_header_offset for e in listing.entries)])
    return within_one_member(reader, start, listing.eocd_offset + EOCD_LEN)


def list_names(reader: Reader) -> list[str]:
    """Member names from the central directory (empty when not a zip)."""
    listing = central_listing(reader)
    return listing.names() if listing else []


def extra_regions(listing: ZipListing) -> list[tuple[int, int, str]]:
    """(start, end, label) of bytes outside every member: prefix, gaps, trailing data."""
    regions = [(0, listing.prefix_length, "<prefix>")] if listing.prefix_length > 0 else []
    return regions + listing.regions
