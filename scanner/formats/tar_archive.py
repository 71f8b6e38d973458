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

from collections import Counter

from ..findings import Severity
from ..io.reader import Reader, SliceReader
from .interface import FormatHandler, InspectContext
from .parsers.tar_header import (
    BLOCK,
    GNU_LONG,
    KNOWN,
    LINKS,
    MAX_PAX,
    PAX_TYPES,
    SPARSE,
    SPECIAL,
    BadHeader,
    Extended,
    carries_data,
    looks_like_tar_header,
    nts,
    padded,
    parse_header,
    parse_pax,
    resolve_member,
    text,
)
from .zip.checks import check_member_name, name_problems

MAX_REPEAT = 20  # findings of one rule per archive before they are summarized


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
                self.ctx.add(
                    rule_id,
                    f"{n - MAX_REPEAT} more members raise {rule_id} (not listed individually)",
                    evidence={"count": n},
                )


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
    chain: list[Extended] = []  # extended headers since the last member, in file order
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
            rep.add(
                "ARCHIVE-MALFORMED",
                f"invalid tar header at offset {pos} ({exc}): Python's tarfile ends the "
                "archive here while other tar readers continue",
                offset=pos,
            )
            break
        data_at = pos + BLOCK
        if h.type in PAX_TYPES or h.type in GNU_LONG:
            if h.size > MAX_PAX:
                rep.add(
                    "ARCHIVE-MALFORMED",
                    f"{h.size}-byte extended header at offset {pos} exceeds {MAX_PAX} bytes",
                    offset=pos,
                )
                ctx.partial("oversized tar extended header")
                pos = reader.size
                break
            raw = reader.read(data_at, h.size)
            if len(raw) < h.size:
                rep.add("ARCHIVE-MALFORMED", f"extended header at offset {pos} is truncated", offset=pos)
                ctx.partial("tar archive truncated")
                pos = reader.size
                break
            pos = data_at + padded(h.size)
            if h.type in GNU_LONG:
                chain.append((h.type.decode(), text(nts(raw))))
                continue
            try:
                records = parse_pax(raw)
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
                chain.append(("g", None))
            else:
                chain.append(("x", {**pax_global, **records}))
            continue

        try:
            member = resolve_member(h, data_at, chain, pax_global)
        except BadHeader as exc:
            rep.add("ARCHIVE-MALFORMED", f"member {h.name[:200]!r}: {exc}", offset=pos)
            ctx.partial("malformed PAX size")
            pos = reader.size
            break
        chain = []
        pax, name, link, size = member.pax, member.name, member.linkname, member.size
        for conflict in member.conflicts:
            rep.add(
                "ARCHIVE-MALFORMED",
                f"member {name[:200]!r} at offset {pos}: {conflict}; tar readers disagree on its name, size "
                "or on where the next member starts (inspected as Python's tarfile reads it)",
                offset=pos,
            )

        members += 1
        if members > ctx.limits.max_members:
            ctx.add(
                "ARCHIVE-TOO-MANY-MEMBERS",
                f"more than {ctx.limits.max_members} members; the rest were not inspected",
                offset=pos,
                evidence={"limit": ctx.limits.max_members},
            )
            ctx.partial("tar member limit reached")
            rep.summarize()
            return

        rep.check_name(name)
        seen[name] += 1
        if seen[name] == 2:
            rep.add(
                "ARCHIVE-MALFORMED",
                f"member {name[:200]!r} appears more than once: tarfile reads the last copy, "
                "other tools the first (both inspected)",
                severity=Severity.MEDIUM,
                offset=pos,
            )

        sparse = h.type == SPARSE or any(k.startswith("GNU.sparse.") for k in pax)
        if h.sparse_ext:  # old GNU sparse: extension blocks follow the header
            while True:
                ext = reader.read(data_at, BLOCK)
                if len(ext) < BLOCK:
                    break
                data_at += BLOCK
                if ext[504] == 0:
                    break

        carries = carries_data(h.type)
        if h.type in LINKS:
            kind = "hard link" if h.type == b"1" else "symbolic link"
            rep.add(
                "ARCHIVE-SYMLINK",
                f"member {name[:200]!r} is a {kind} to {link[:200]!r}",
                offset=pos,
                evidence={"name": name[:300], "target": link[:300], "kind": kind},
            )
        elif h.type in SPECIAL:
            rep.add(
                "ARCHIVE-SPECIAL-MEMBER",
                f"member {name[:200]!r} is a {SPECIAL[h.type]}",
                offset=pos,
                evidence={"name": name[:300], "kind": SPECIAL[h.type]},
            )
        elif sparse:
            rep.add(
                "ARCHIVE-UNSUPPORTED",
                f"member {name[:200]!r} is a sparse file; its stored fragments are inspected as they are",
                offset=pos,
            )
            ctx.partial("sparse tar member")
        elif h.type not in KNOWN:
            rep.add(
                "ARCHIVE-UNSUPPORTED",
                f"member {name[:200]!r} has unknown type {h.type!r}; tarfile reads it as a "
                "regular file, so its data is inspected",
                offset=pos,
            )
            ctx.partial("tar member of unknown type")
        if not carries and h.type != SPARSE and size:
            rep.add(
                "ARCHIVE-MALFORMED",
                f"non-file member {name[:200]!r} declares {size} data bytes: tar readers "
                "disagree on whether they follow",
                offset=pos,
            )

        if carries:
            avail = max(0, min(size, reader.size - data_at))
            if avail < size:
                rep.add(
                    "ARCHIVE-MALFORMED",
                    f"member {name[:200]!r} is truncated ({avail} of {size} bytes present); "
                    "the present part is inspected",
                    offset=pos,
                )
                ctx.partial("tar member truncated")
            if avail or size == 0:
                ctx.inspect_member(
                    SliceReader(reader, data_at, avail, f"{reader.name}!{name}"), name or "<unnamed>"
                )
            if avail < size:
                rep.summarize()
                return
        pos = member.next_pos if not h.sparse_ext else data_at + (padded(h.size) if carries else 0)

    if pos < reader.size:
        extra = _first_nonzero(reader, pos)
        if extra is not None:
            start = extra - extra % BLOCK if extra - extra % BLOCK >= pos else pos
            ctx.add(
                "ARCHIVE-MALFORMED",
                f"{reader.size - start} bytes follow the tar {end_reason} at offset {start}; "
                "other readers may see more members there, so they are inspected as a member",
                severity=Severity.MEDIUM,
                offset=start,
            )
            tail = SliceReader(reader, start, reader.size - start, f"{reader.name}@{start}")
            ctx.inspect_member(tail, f"<tar-trailing@{start}>")
    rep.summarize()


TAR_ARCHIVE = FormatHandler("tar-archive", _sniff_tar, _inspect_tar, family="archive", claims=(".tar",))
