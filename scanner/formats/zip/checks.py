"""Structural checks of a listed zip: every place where two zip readers would disagree becomes a finding.

Member names that escape the extraction folder, local/central disagreements,
overlapping or hidden data, odd flags: each has been used to hide a pickle from
one reader while another loads it, so each is reported instead of stopping the read.
"""

from __future__ import annotations

import re
import stat
import struct
from typing import Any

from ...io.reader import Reader
from ..interface import InspectContext
from .listing import (
    FLAG_DESCRIPTOR,
    LOCAL_LEN,
    MAX_FINDINGS_PER_RULE,
    SIG_LOCAL,
    SUPPORTED_METHODS,
    Window,
    ZipEntry,
    ZipListing,
    central_listing,
    decode_name,
    descriptor_len,
    zip64_extra,
)

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
    w = Window(reader, 4096)  # local headers are scattered between (possibly huge) member data
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


def _join_local(reader: Reader, w: Window, e: ZipEntry, rep: _Reporter) -> None:
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
    lusize, lcsize, _, lz64 = zip64_extra(extra, lusize, lcsize, 0)
    e.local_name = decode_name(raw, lflags)
    e.data_offset = e.local_header_offset + LOCAL_LEN + nlen + xlen
    end = e.data_offset + e.compressed_size
    if e.flags & FLAG_DESCRIPTOR or lflags & FLAG_DESCRIPTOR:
        end += descriptor_len(reader, end, e.zip64 or lz64)
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
    """Overlaps between members, and every byte range no member, central directory or end record explains.

    The explained spans are the members (local header to data end) and the directories and end records the
    modelled readers used; whatever lies between them or after the end is inspected as content.
    """
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
    overlaps = []
    prev_end = spans[0][0]
    prev_entry: ZipEntry | None = None
    for start, end, e in spans:
        if start < prev_end and prev_entry is not None:
            overlaps.append((prev_entry.name, e.name, start))
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
    structure = listing.structure if listing.eocd_offset is not None and listing.complete else []
    covered = sorted([(s, e) for s, e, _ in spans if e is not None] + [(a, b) for a, b in structure if b > a])
    listing.prefix_length = min(s for s, _ in covered)
    if listing.prefix_length > 0:
        rep.add(
            "ZIP-PREFIX-DATA",
            f"{listing.prefix_length} bytes precede the first zip member (polyglot: a loader that reads from "
            "byte 0, e.g. torch.load on a non-zip, sees them first)",
            offset=0,
            evidence={"length": listing.prefix_length},
        )
    if not structure:
        return
    zip_end = max(b for _, b in structure)
    gaps: list[tuple[int, int]] = []
    at = listing.prefix_length
    for a, b in covered:
        if a > at:
            gaps.append((at, min(a, reader.size)))
        at = max(at, b)
    if at < reader.size:
        gaps.append((at, reader.size))
    listing_gaps = []
    for a, b in gaps:
        if b <= a:
            continue
        if a >= zip_end:
            rep.add(
                "ZIP-EXTRA-DATA",
                f"{b - a} bytes after the end of the zip",
                offset=a,
                evidence={"start": a, "length": b - a},
            )
            listing_gaps.append((a, b, "<trailing>"))
        else:
            rep.add(
                "ZIP-EXTRA-DATA",
                f"{b - a} bytes at offset {a} belong to no zip member, central directory or end record",
                offset=a,
                evidence={"start": a, "length": b - a},
            )
            listing_gaps.append((a, b, f"<gap@{a}>"))
    listing.regions = listing_gaps
