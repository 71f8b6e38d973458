"""tar headers, parsed the way Python's ``tarfile`` reads them; no handler, no findings.

Shared by the tar inspector (``tar_archive``) and the zip sniffer, which must tell
a zip that is one tar member's content (the torch checkpoint that ends a NeMo
archive) from a zip file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...io.reader import Reader

BLOCK = 512
MAX_PAX = 1 << 20  # a PAX/GNU long-name record beyond this is not a name, it is an attack on the parser
REGULAR = (b"0", b"\x00", b"7")
LINKS = (b"1", b"2")
SPECIAL = {b"3": "character device", b"4": "block device", b"6": "FIFO"}
DIRECTORY = b"5"
PAX_TYPES = (b"x", b"X", b"g")
GNU_LONG = (b"L", b"K")
SPARSE = b"S"
KNOWN = (*REGULAR, *LINKS, *SPECIAL, DIRECTORY, *PAX_TYPES, *GNU_LONG, SPARSE)


class BadHeader(Exception):
    pass


def nts(b: bytes) -> bytes:
    i = b.find(b"\x00")
    return b if i < 0 else b[:i]


def nti(b: bytes) -> int:
    """A numeric field as tarfile reads it: octal text, or GNU base-256 when the high bit is set."""
    if b[:1] in (b"\x80", b"\xff"):
        n = 0
        for ch in b[1:]:
            n = (n << 8) | ch
        if b[0] == 0xFF:
            n -= 256 ** (len(b) - 1)
        return n
    try:
        return int(nts(b).decode("ascii").strip() or "0", 8)
    except (UnicodeDecodeError, ValueError):
        raise BadHeader("bad number field") from None


def checksum_ok(buf: bytes) -> bool:
    try:
        chk = nti(buf[148:156])
    except BadHeader:
        return False
    blanked = buf[:148] + b" " * 8 + buf[156:]
    unsigned = sum(blanked)
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return chk in (unsigned, signed)


def text(b: bytes) -> str:
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
    if not checksum_ok(buf):
        raise BadHeader("bad checksum")
    name = text(nts(buf[0:100]))
    size = nti(buf[124:136])
    mode = nti(buf[100:108])
    typ = buf[156:157]
    linkname = text(nts(buf[157:257]))
    prefix = text(nts(buf[345:500]))
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


def parse_pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        m = re.match(rb"(\d+) ", data[pos : pos + 24])
        if not m:
            if not data[pos:].strip(b"\x00"):
                break
            raise BadHeader("malformed PAX record")
        length = int(m.group(1))
        rec = data[pos + m.end() : pos + length]
        if length < m.end() or pos + length > len(data) or not rec.endswith(b"\n") or b"=" not in rec:
            raise BadHeader("malformed PAX record")
        key, _, value = rec[:-1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def padded(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def carries_data(typ: bytes) -> bool:
    """tarfile skips data after a header of these types (``isreg()`` or an unsupported type)."""
    return typ in REGULAR or typ == SPARSE or typ not in KNOWN


# one extended header before a member: ("L", name), ("K", link), ("x", global records + its own), ("g", None)
Extended = tuple[str, "dict[str, str] | str | None"]


@dataclass
class Member:
    """A member as Python's ``tarfile`` resolves it from its header and the extended headers before it."""

    name: str
    linkname: str
    size: int  # the bytes tarfile reads as its content, from data_at
    next_pos: int  # where tarfile reads the next header
    pax: dict[str, str]  # the PAX records applied to it
    conflicts: list[str]  # extended headers that contradict each other or the header (no writer does this)


def _pax_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise BadHeader(f"PAX size {value[:40]!r} is not a size") from None
    if size < 0:
        raise BadHeader(f"PAX size {value[:40]!r} is not a size")
    return size


def resolve_member(h: Header, data_at: int, chain: list[Extended], pax_global: dict[str, str]) -> Member:
    """Apply extended headers exactly as tarfile 3.11 does.

    tarfile processes them recursively: the member's own header first (the data it skips is the header's
    size, then the *global* PAX records are applied to it: a global ``size`` changes what it reads, not
    where the next header is), then each extended header from the innermost (the last before the member)
    out to the first, so the first one wins; an ``x`` header that carries ``size`` also moves the next
    header to the end of that size. A scanner that lets the last extended header win, or moves on by a
    global size, reads other bytes than tarfile (torch's legacy tar loader, NeMo).
    """
    carries = carries_data(h.type)
    name, link, size = h.name, h.linkname, h.size
    next_pos = data_at + (padded(h.size) if carries else 0)
    applied: dict[str, str] = dict(pax_global)
    setters: dict[str, list[str]] = {}
    conflicts: list[str] = []

    def apply(pax: dict[str, str], who: str) -> None:
        nonlocal name, link, size
        if "path" in pax:
            name = pax["path"].rstrip("/")
            setters.setdefault("name", []).append(who)
        if "linkpath" in pax:
            link = pax["linkpath"]
            setters.setdefault("link", []).append(who)
        if "size" in pax:
            size = _pax_size(pax["size"])
            setters.setdefault("size", []).append(who)

    if pax_global and h.type != SPARSE:
        apply(pax_global, "global PAX header")
        for key in ("path", "linkpath", "size"):
            if key in pax_global:
                conflicts.append(f"a global PAX header sets {key!r} for every member")
    for kind, value in reversed(chain):
        if kind == "L" and isinstance(value, str):
            name = value
            setters.setdefault("name", []).append("GNU long name")
        elif kind == "K" and isinstance(value, str):
            link = value
            setters.setdefault("link", []).append("GNU long link")
        elif kind == "x" and isinstance(value, dict):
            apply(value, "PAX header")
            applied = {**applied, **value}
            if "size" in value:
                next_pos = data_at + (padded(size) if carries else 0)
    for what, who in setters.items():
        if len(who) > 1 and not (len(set(who)) == 1 and who[0] == "global PAX header"):
            conflicts.append(
                f"{len(who)} extended headers set the member's {what} (tarfile applies the first)"
            )
    if h.type == DIRECTORY:
        name = name.rstrip("/")
    if carries and data_at + padded(size) != next_pos:
        conflicts.append(
            f"tarfile reads {size} bytes of the member but the next header at offset {next_pos} lies "
            "elsewhere (the member's content and the next member overlap or leave a gap)"
        )
    return Member(name, link, size, next_pos, applied, conflicts)


def within_one_member(reader: Reader, start: int, end: int, max_members: int = 100_000) -> bool:
    """Whether bytes ``[start, end)`` lie inside the data of one member of the tar that starts at offset 0.

    Walked the way ``tarfile`` reads headers (``resolve_member``: PAX sizes, long names, stops at the first
    zero or bad block). A zip whose end record sits inside a member (the torch checkpoint that ends a NeMo
    archive) is that member's content, not a zip file; anything else (a zip spanning members or after the
    end) is a polyglot and stays a zip to the zip sniffers.
    """
    pos = 0
    chain: list[Extended] = []
    pax_global: dict[str, str] = {}
    for _ in range(max_members):
        if pos > start or pos + BLOCK > reader.size:
            return False
        buf = reader.read(pos, BLOCK)
        if len(buf) < BLOCK or not buf.strip(b"\x00"):
            return False
        try:
            h = parse_header(buf)
            data_at = pos + BLOCK
            if h.type in PAX_TYPES or h.type in GNU_LONG:
                if h.size > MAX_PAX:
                    return False
                body = reader.read(data_at, h.size)
                if h.type in GNU_LONG:
                    chain.append((h.type.decode(), text(nts(body))))
                elif h.type == b"g":
                    pax_global.update(parse_pax(body))
                    chain.append(("g", None))
                else:
                    chain.append(("x", {**pax_global, **parse_pax(body)}))
                pos = data_at + padded(h.size)
                continue
            if h.type == SPARSE or h.sparse_ext:
                return False
            m = resolve_member(h, data_at, chain, pax_global)
        except BadHeader:
            return False
        chain = []
        if carries_data(h.type) and data_at <= start and end <= data_at + m.size:
            return True
        pos = m.next_pos
    return False
