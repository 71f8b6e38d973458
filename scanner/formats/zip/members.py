"""Member content: zero-copy windows for stored members, capped inflation for the rest, inspection by content.

Compressed members are inflated in 1 MiB steps into a spool (memory, then an
unlinked temp file) under ratio, size and byte-budget caps, so peak memory does
not grow with the member. Bytes outside every member are inspected as well.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Iterator
from typing import Any

from ...io.reader import Reader, SliceReader
from ...io.spool import Spool, SpoolError, close_if_spooled
from ..interface import BudgetExceeded, InspectContext
from .checks import read_zip
from .listing import (
    BZIP2,
    CRC_STORED_CAP,
    DEFLATED,
    IN_CHUNK,
    OUT_CHUNK,
    RATIO_FLOOR,
    STORED,
    SUPPORTED_METHODS,
    ZipEntry,
    ZipListing,
    extra_regions,
)


def inspect_extra_regions(reader: Reader, listing: ZipListing, ctx: InspectContext) -> None:
    """Bytes that belong to no member are inspected as nested content: a pickle prefix is a live polyglot."""
    for start, end, label in extra_regions(listing):
        if end > start:
            ctx.inspect_member(SliceReader(reader, start, min(end, reader.size) - start, label), label)


# --------------------------------------------------------------------------- member content


ZIPCRYPTO_HEADER = 12


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
        # traditional PKWARE encryption puts a 12-byte header before a stored member's data
        sealed = entry.is_encrypted and entry.compressed_size == entry.uncompressed_size + ZIPCRYPTO_HEADER
        if entry.compressed_size != entry.uncompressed_size and not sealed:
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
