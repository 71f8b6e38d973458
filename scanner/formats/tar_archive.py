"""tar archives, parsed header by header the way Python's ``tarfile`` reads them, never extracted.

Members are stored, so each regular member is handed on as a zero-copy
SliceReader. The walk follows ``tarfile`` (the reader torch and most Python
tooling use): the first zero block or the first bad header ends the archive,
unknown member types count as regular files, PAX and GNU long names apply to
the next header. Anything after that end that is not zero padding is where
other tar readers (``tar -i``) still find members, so it is reported and
inspected as a member of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..findings import Severity
from ..io.reader import Reader, SliceReader
from .base import FormatHandler, InspectContext
from .zipfmt import check_member_name, name_problems

BLOCK = 512
MAX_PAX = 1 << 20  # a PAX/GNU long-name record beyond this is not a name, it is an attack on the parser
MAX_REPEAT = 20  # findings of one rule per archive before they are summarized

REGULAR = (b"0", b"\x00", b"7")
LINKS = (b"1", b"2")
SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
DIRECTORY = b"5"
PAX_TYPES = (b"x", b"X", b"g")
GNU_LONG = (b"L", b"K")
SPARSE = b"S"
KNOWN = (*REGULAR, *LINKS, *SPECIAL, DIRECTORY, *PAX_TYPES, *GNU_LONG, SPARSE)


class Capped:
    """Reports at most MAX_REPEAT findings per rule so a hostile archive cannot flood the report."""

    def __init__(self, ctx: InspectContext) -> None:
        self.ctx = ctx
        self.counts: Counter[str] = Counter()

    def add(self, rule_id: str, message: str, **kw: object) -> None:
        self.counts[rule_id] += 1
        if self.counts[rule_id] <= MAX_REPEAT:
            self.ctx.add(rule_id, message, **kw)  # type: ignore[arg-type]

    def check_name(self, name: str) -> None:
        if self.counts["ARCHIVE-PATH-TRAVERSAL"] >= MAX_REPEAT:
            self.counts["ARCHIVE-PATH-TRAVERSAL"] += bool(name_problems(name))
            return
        findings = self.ctx.state.result.findings
        before = len(findings)
        check_member_name(self.ctx, name)
        self.counts["ARCHIVE-PATH-TRAVERSAL"] += len(findings) > before

    def summarize(self) -> None:
        for rule_id, n in sorted(self.counts.items()):
            if "#" not in rule_id and n > MAX_REPEAT:
                self.ctx.add(rule_id, f"{n - MAX_REPEAT} more members raise {rule_id} (not listed individually)",
                             evidence={"count": n})


# --------------------------------------------------------------------------- header parsing


class BadHeader(Exception):
    pass


def _nts(b: bytes) -> bytes:
    i = b.find(b"\x00")
    return b if i < 0 else b[:i]


def _nti(b: bytes) -> int:
    """A numeric field as tarfile reads it: octal text, or GNU base-256 when the high bit is set."""
    if b[:1] in (b"\x80", b"\xff"):
        n = 0
        for ch in b[1:]:
            n = (n << 8) | ch
        if b[0] == 0xFF:
            n -= 256 ** (len(b) - 1)
        return n
    try:
        return int(_nts(b).decode("ascii").strip() or "0", 8)
    except (UnicodeDecodeError, ValueError):
        raise BadHeader("bad number field") from None


def _checksum_ok(buf: bytes) -> bool:
    try:
        chk = _nti(buf[148:156])
    except BadHeader:
        return False
    blanked = buf[:148] + b" " * 8 + buf[156:]
    unsigned = sum(blanked)
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return chk in (unsigned, signed)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


@dataclass
class Header:
    name: str
    size: int
    type: bytes
    linkname: str
    mode: int
    sparse_ext: bool


def parse_header(buf: bytes) -> Header:
    if not _checksum_ok(buf):
        raise BadHeader("bad checksum")
    name = _text(_nts(buf[0:100]))
    size = _nti(buf[124:136])
    mode = _nti(buf[100:108])
    typ = buf[156:157]
    linkname = _text(_nts(buf[157:257]))
    prefix = _text(_nts(buf[345:500]))
    if typ == b"\x00" and name.endswith("/"):
        typ = DIRECTORY
    if typ == DIRECTORY:
        name = name.rstrip("/")
    if prefix and typ not in (*GNU_LONG, SPARSE):
        name = prefix + "/" + name
    if size < 0:
        raise BadHeader("negative size")
    return Header(name, size, typ, linkname, mode, typ == SPARSE and buf[482] != 0)


def looks_like_tar_header(buf: bytes) -> bool:
    if len(buf) < BLOCK or not buf[:BLOCK].strip(b"\x00"):
        return False
    try:
        h = parse_header(buf[:BLOCK])
    except BadHeader:
        return False
    if buf[257:262] == b"ustar":
        return True
    # old v7 header: no magic, so ask for a plausible name and type on top of the checksum
    return bool(h.name) and h.type in KNOWN and buf[0] != 0


def _parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        m = re.match(rb"(\d+) ", data[pos:pos + 24])
        if not m:
            if not data[pos:].strip(b"\x00"):
                break
            raise BadHeader("malformed PAX record")
        length = int(m.group(1))
        rec = data[pos + m.end():pos + length]
        if length < m.end() or pos + length > len(data) or not rec.endswith(b"\n") or b"=" not in rec:
            raise BadHeader("malformed PAX record")
        key, _, value = rec[:-1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _blocks(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def within_one_member(reader: Reader, start: int, end: int, max_members: int = 100_000) -> bool:
    """Whether bytes ``[start, end)`` lie inside the data of one member of the tar that starts at offset 0.

    Walked the way ``tarfile`` reads headers (PAX sizes, long names, stops at
    the first zero or bad block). A zip whose end record sits inside a member
    (the torch checkpoint that ends a NeMo archive) is that member's content,
    not a zip file; anything else (a zip spanning members or after the end) is
    a polyglot and stays a zip to the zip sniffers.
    """
    pos = 0
    pax_size: int | None = None
    for _ in range(max_members):
        if pos > start or pos + BLOCK > reader.size:
            return False
        buf = reader.read(pos, BLOCK)
        if len(buf) < BLOCK or not buf.strip(b"\x00"):
            return False
        try:
            h = parse_header(buf)
        except BadHeader:
            return False
        data_at = pos + BLOCK
        if h.type in PAX_TYPES or h.type in GNU_LONG:
            if h.size > MAX_PAX:
                return False
            if h.type == b"x":
                try:
                    pax_value = _parse_pax(reader.read(data_at, h.size)).get("size")
                    pax_size = int(pax_value) if pax_value is not None else None
                except (BadHeader, ValueError):
                    return False
            pos = data_at + _blocks(h.size)
            continue
        size = h.size if pax_size is None else pax_size
        pax_size = None
        if h.type == SPARSE or h.sparse_ext:
            return False
        carries = h.type in REGULAR or h.type not in KNOWN
        if carries and data_at <= start and end <= data_at + size:
            return True
        pos = data_at + (_blocks(size) if carries else 0)
    return False


# --------------------------------------------------------------------------- the walk


def _sniff_tar(head: bytes, reader: Reader) -> bool:
    return looks_like_tar_header(head)


def _first_nonzero(reader: Reader, pos: int) -> int | None:
    for chunk in reader.stream(pos):
        stripped = chunk.lstrip(b"\x00")
        if stripped:
            return pos + len(chunk) - len(stripped)
        pos += len(chunk)
    return None


def _inspect_tar(reader: Reader, ctx: InspectContext) -> None:
    rep = Capped(ctx)
    pos = 0
    members = 0
    pax_global: dict[str, str] = {}
    pax_next: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    seen: Counter[str] = Counter()
    end_reason = "end-of-archive marker"
    while True:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "per-file time budget ran out while walking the tar archive")
            rep.summarize()
            return
        if pos >= reader.size:
            end_reason = "end of file"
            break
        buf = reader.read(pos, BLOCK)
        if len(buf) < BLOCK:
            rep.add("ARCHIVE-MALFORMED", f"tar header at offset {pos} is truncated", offset=pos)
            ctx.partial("tar archive truncated")
            pos = reader.size
            break
        if not buf.strip(b"\x00"):
            pos += BLOCK
            break
        try:
            h = parse_header(buf)
        except BadHeader as exc:
            if pos == 0:
                ctx.add("ARCHIVE-MALFORMED", f"first tar header is invalid ({exc})", offset=0)
                ctx.unanalyzable("tar header invalid")
                return
            # tarfile stops silently here; GNU tar skips the block and goes on
            end_reason = f"invalid header ({exc})"
            rep.add("ARCHIVE-MALFORMED", f"invalid tar header at offset {pos} ({exc}): Python's tarfile ends the "
                    "archive here while other tar readers continue", offset=pos)
            break
        data_at = pos + BLOCK
        if h.type in PAX_TYPES or h.type in GNU_LONG:
            if h.size > MAX_PAX:
                rep.add("ARCHIVE-MALFORMED", f"{h.size}-byte extended header at offset {pos} exceeds {MAX_PAX} bytes",
                        offset=pos)
                ctx.partial("oversized tar extended header")
                pos = reader.size
                break
            raw = reader.read(data_at, h.size)
            if len(raw) < h.size:
                rep.add("ARCHIVE-MALFORMED", f"extended header at offset {pos} is truncated", offset=pos)
                ctx.partial("tar archive truncated")
                pos = reader.size
                break
            pos = data_at + _blocks(h.size)
            if h.type in GNU_LONG:
                value = _text(_nts(raw))
                if h.type == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            try:
                records = _parse_pax(raw)
            except BadHeader as exc:
                rep.add("ARCHIVE-MALFORMED", f"PAX header at offset {pos} is malformed ({exc})", offset=pos)
                ctx.partial("malformed PAX header")
                pos = reader.size
                break
            if h.type == b"g":
                pax_global.update(records)
                if sum(len(k) + len(v) for k, v in pax_global.items()) > MAX_PAX:  # distinct keys add up
                    ctx.limit_hit(
                        "tar_pax_global",
                        f"global PAX headers at offset {pos} add up to more than {MAX_PAX} bytes; "
                        "the rest of the archive was not inspected",
                        offset=pos,
                    )
                    pos = reader.size
                    break
            else:
                pax_next = records
            continue

        pax = {**pax_global, **pax_next}
        name = pax.get("path", long_name if long_name is not None else h.name)
        link = pax.get("linkpath", long_link if long_link is not None else h.linkname)
        size = h.size
        if "size" in pax:
            try:
                size = int(pax["size"])
                if size < 0:
                    raise ValueError
            except ValueError:
                rep.add("ARCHIVE-MALFORMED", f"PAX size {pax['size'][:40]!r} of {name[:200]!r} is not a size", offset=pos)
                ctx.partial("malformed PAX size")
                pos = reader.size
                break
        pax_next, long_name, long_link = {}, None, None

        members += 1
        if members > ctx.limits.max_members:
            ctx.add("ARCHIVE-TOO-MANY-MEMBERS", f"more than {ctx.limits.max_members} members; the rest were not "
                    "inspected", offset=pos, evidence={"limit": ctx.limits.max_members})
            ctx.partial("tar member limit reached")
            rep.summarize()
            return

        rep.check_name(name)
        seen[name] += 1
        if seen[name] == 2:
            rep.add("ARCHIVE-MALFORMED", f"member {name[:200]!r} appears more than once: tarfile reads the last copy, "
                    "other tools the first (both inspected)", severity=Severity.MEDIUM, offset=pos)

        sparse = h.type == SPARSE or any(k.startswith("GNU.sparse.") for k in pax)
        if h.sparse_ext:  # old GNU sparse: extension blocks follow the header
            while True:
                ext = reader.read(data_at, BLOCK)
                if len(ext) < BLOCK:
                    break
                data_at += BLOCK
                if ext[504] == 0:
                    break

        carries_data = h.type in REGULAR or h.type == SPARSE or h.type not in KNOWN
        if h.type in LINKS:
            kind = "hard link" if h.type == b"1" else "symbolic link"
            rep.add("ARCHIVE-SYMLINK", f"member {name[:200]!r} is a {kind} to {link[:200]!r}", offset=pos,
                    evidence={"name": name[:300], "target": link[:300], "kind": kind})
        elif h.type in SPECIAL:
            rep.add("ARCHIVE-SPECIAL-MEMBER", f"member {name[:200]!r} is a {SPECIAL[h.type]}", offset=pos,
                    evidence={"name": name[:300], "kind": SPECIAL[h.type]})
        elif sparse:
            rep.add("ARCHIVE-UNSUPPORTED", f"member {name[:200]!r} is a sparse file; its stored fragments are "
                    "inspected as they are", offset=pos)
            ctx.partial("sparse tar member")
        elif h.type not in KNOWN:
            rep.add("ARCHIVE-UNSUPPORTED", f"member {name[:200]!r} has unknown type {h.type!r}; tarfile reads it as a "
                    "regular file, so its data is inspected", offset=pos)
            ctx.partial("tar member of unknown type")
        if not carries_data and h.type != SPARSE and size:
            rep.add("ARCHIVE-MALFORMED", f"non-file member {name[:200]!r} declares {size} data bytes: tar readers "
                    "disagree on whether they follow", offset=pos)

        if carries_data:
            avail = max(0, min(size, reader.size - data_at))
            if avail < size:
                rep.add("ARCHIVE-MALFORMED", f"member {name[:200]!r} is truncated ({avail} of {size} bytes present); "
                        "the present part is inspected", offset=pos)
                ctx.partial("tar member truncated")
            if avail or size == 0:
                ctx.inspect_member(SliceReader(reader, data_at, avail, f"{reader.name}!{name}"), name or "<unnamed>")
            if avail < size:
                rep.summarize()
                return
            pos = data_at + _blocks(size)
        else:
            pos = data_at

    if pos < reader.size:
        extra = _first_nonzero(reader, pos)
        if extra is not None:
            start = extra - extra % BLOCK if extra - extra % BLOCK >= pos else pos
            ctx.add("ARCHIVE-MALFORMED", f"{reader.size - start} bytes follow the tar {end_reason} at offset {start}; "
                    "other readers may see more members there, so they are inspected as a member",
                    severity=Severity.MEDIUM, offset=start)
            tail = SliceReader(reader, start, reader.size - start, f"{reader.name}@{start}")
            ctx.inspect_member(tail, f"<tar-trailing@{start}>")
    rep.summarize()


HANDLERS = [
    FormatHandler("tar-archive", _sniff_tar, _inspect_tar, family="archive", claims=(".tar",), priority=45),
]
