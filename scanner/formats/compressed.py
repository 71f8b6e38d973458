"""Single-stream compression wrappers: gzip, bzip2, xz, lzma-alone, zlib, zstd, lz4 frame, joblib 'ZF'.

``joblib.load`` sniffs these magics and unpickles whatever comes out, so a
compressed pickle must be opened, not reported as an unparsable pickle (the
picklescan/ModelScan gap). Output is produced in bounded steps into a spool
(a few MiB of memory, then an unlinked temp file) and checked against the ratio
cap, the per-member cap and the shared byte budget as it grows:
a bomb stops at the cap, never inflates. What did decompress before an error is
still inspected (a payload at the start of a truncated stream is still loaded).
Concatenated streams/members are inspected as one stream, as loaders read them.
"""

from __future__ import annotations

import bz2
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..findings import Severity
from ..io.reader import Reader, ReaderIO, SliceReader
from ..io.spool import Spool, SpoolError
from .interface import FormatHandler, InspectContext

IN_CHUNK = 64 << 10
OUT_CHUNK = 1 << 20
# Expansion to this size is never a bomb, whatever the ratio (small files of zeros are legitimate).
RATIO_FLOOR = 1 << 20
TRIAL_OUT = 64 << 10

GZIP_MAGIC = b"\x1f\x8b\x08"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
BZ2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
BZ2_EOS = b"\x17\x72\x45\x38\x50\x90"
LZMA_MEMLIMIT = 256 << 20  # decoder memory (mostly the dictionary a header asks for); xz -9 needs ~65 MiB
ALONE_DICT_CAP = (
    64 << 20
)  # an lzma-alone header's dictionary is decoded with at most this much (xz -9's size)
EMPTY_ALONE = 18  # 18 zero bytes: an lzma-alone header (usize 0) and range-coder start, decoding to nothing
FOLLOW_PROBE = 4096  # bytes looked at to tell whether a differently-spelled next stream decodes
ZF_HEADER = 2 + 19  # b"ZF" + hex(len) left-justified to len(hex(2**64)), as joblib < 0.10 wrote it


class StreamError(Exception):
    """The compressed data is corrupt or ends early."""


class _Stop(Exception):
    """Output hit a cap; carries the rule and message."""

    def __init__(self, rule: str, message: str, limit: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.limit = limit


# --------------------------------------------------------------------------- decoders


class _ZlibDecoder:
    """zlib.decompressobj with the needs_input protocol of bz2/lzma/lz4 decompressors."""

    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)
        self._more = False

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail and not self._more

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._d.decompress(self._d.unconsumed_tail + data, max_length)
        # a full output chunk may leave output pending inside zlib even with no input left
        self._more = len(out) >= max_length
        return out


def _lz4_decoder() -> object:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


def _lz4_follow(reader: Reader, pos: int) -> tuple[DecoderFactory, int] | None:
    """A skippable frame (magic 0x184D2A50-5F) between frames: LZ4FrameFile steps over it and reads on."""
    magic = reader.read(pos, 4)
    if len(magic) == 4 and int.from_bytes(magic, "little") & 0xFFFFFFF0 == 0x184D2A50:
        return _lz4_decoder, pos
    return None


DecoderFactory = Callable[[], object]


def _pump(dec: object, reader: Reader, pos: int) -> Iterator[bytes | int]:
    """Yield bounded output chunks of one stream starting at ``pos``; finally yield its end offset (int)."""
    feed = pos
    want = 256  # grows to IN_CHUNK: thousands of tiny concatenated members must not each read 64 KiB
    while True:
        if dec.needs_input:  # type: ignore[attr-defined]
            if feed >= reader.size:
                raise StreamError("compressed stream ends before its end marker (truncated)")
            chunk = reader.read(feed, want)
            feed += len(chunk)
            want = min(want * 4, IN_CHUNK)
        else:
            chunk = b""
        try:
            out = dec.decompress(chunk, max_length=OUT_CHUNK)  # type: ignore[attr-defined]
        except (zlib.error, OSError, EOFError, ValueError, RuntimeError, lzma.LZMAError) as exc:
            raise StreamError(f"corrupt compressed data: {exc}") from None
        if out:
            yield out
        if dec.eof:  # type: ignore[attr-defined]
            yield feed - len(dec.unused_data or b"")  # type: ignore[attr-defined]
            return


# --------------------------------------------------------------------------- the bounded sink


@dataclass
class _Sink:
    """Decompressed output: a bounded-memory spool (disk past a few MiB) that refuses bytes past the cap."""

    ctx: InspectContext
    limit: int
    limit_name: str
    data: Spool

    @property
    def size(self) -> int:
        return self.data.size

    def put(self, chunk: bytes) -> None:
        room = self.limit - self.data.size
        if len(chunk) > room:
            self.data.write(chunk[: max(room, 0)])
            raise _Stop(
                "ARCHIVE-BOMB",
                f"decompressed output exceeds the {self.limit_name} cap "
                f"({self.limit} bytes); inflation stopped there",
                self.limit_name,
            )
        self.data.write(chunk)
        if self.ctx.state.out_of_time():
            raise _Stop("LIMIT-EXCEEDED", "per-file time budget ran out while decompressing", "file_seconds")


def _make_sink(ctx: InspectContext, compressed_size: int, name: str) -> _Sink:
    caps = [
        (max(ctx.limits.max_ratio * compressed_size, RATIO_FLOOR), "max_ratio"),
        (ctx.limits.max_member_inflated, "max_member_inflated"),
        (max(ctx.state.budget_left, 0), "max_total_uncompressed"),
    ]
    limit, cap_name = min(caps)
    return _Sink(ctx, limit, cap_name, Spool(name, ctx.limits.spool_memory))


# --------------------------------------------------------------------------- stream walkers
# Each walker decompresses every stream/member into the sink and returns the end offset
# of the last one; it raises StreamError for corruption and _Stop at a cap.


def _check_time(sink: _Sink) -> None:
    if sink.ctx.state.out_of_time():
        raise _Stop("LIMIT-EXCEEDED", "per-file time budget ran out while decompressing", "file_seconds")


def _all_zero(reader: Reader, pos: int) -> bool:
    return all(not chunk.strip(b"\x00") for chunk in reader.stream(pos))


@dataclass
class _Walk:
    name: str | None = None  # original file name from the container header
    notes: list[tuple[str, Severity]] = field(default_factory=list)
    trailing: int | None = None  # offset of unexplained bytes after the last stream


def _multi(
    reader: Reader,
    sink: _Sink,
    walk: _Walk,
    magic: bytes,
    make: DecoderFactory,
    skip: int = 0,
    follow: Callable[[Reader, int], tuple[DecoderFactory, int] | None] | None = None,
) -> None:
    """Concatenated streams of one codec (bz2, xz, zlib, lz4 all continue into a following stream).

    ``follow(reader, end)`` picks a decoder, and where it starts, for a next stream that does not start
    with ``magic`` but that the loader still reads on into (``lzma.LZMAFile`` auto-detects every
    stream: xz after lzma-alone).
    """
    pos = skip
    current = make
    while True:
        end = None
        for item in _pump(current(), reader, pos):
            if isinstance(item, int):
                end = item
            else:
                sink.put(item)
        assert end is not None
        if end >= reader.size:
            return
        nxt: DecoderFactory | None = make if reader.read(end, len(magic)) == magic else None
        pos = end
        if nxt is None and follow is not None:
            found = follow(reader, end)
            if found is not None:
                nxt, pos = found
        if nxt is None:
            if not _all_zero(reader, end):
                walk.trailing = end
            return
        _check_time(sink)
        current = nxt


def _gzip_header(reader: Reader, pos: int, walk: _Walk, first: bool) -> int:
    h = reader.read(pos, 10)
    if len(h) < 10 or h[:3] != GZIP_MAGIC:
        raise StreamError(f"bad gzip member header at offset {pos}")
    flg = h[3]
    if flg & 0xE0:
        walk.notes.append((f"gzip member at offset {pos} sets reserved header flags", Severity.MEDIUM))
    p = pos + 10
    if flg & 0x04:  # FEXTRA
        xl = reader.read(p, 2)
        if len(xl) < 2:
            raise StreamError("gzip header truncated in FEXTRA")
        p += 2 + int.from_bytes(xl, "little")
    for bit in (0x08, 0x10):  # FNAME, FCOMMENT: NUL-terminated
        if flg & bit:
            raw = reader.read(p, 256)
            nul = raw.find(b"\x00")
            if nul < 0:
                raw = reader.read(p, 1 << 16)
                nul = raw.find(b"\x00")
            if nul < 0:
                raise StreamError("gzip header name/comment is not terminated")
            if bit == 0x08 and first:
                walk.name = raw[:nul].decode("latin-1")
            p += nul + 1
    if flg & 0x02:  # FHCRC
        p += 2
    if p > reader.size:
        raise StreamError("gzip header runs past the end of the file")
    return p


def _gzip(reader: Reader, sink: _Sink, walk: _Walk) -> None:
    pos = 0
    first = True
    while True:
        data_at = _gzip_header(reader, pos, walk, first)
        crc, size, end = 0, 0, None
        for item in _pump(_ZlibDecoder(-15), reader, data_at):
            if isinstance(item, int):
                end = item
            else:
                crc = zlib.crc32(item, crc)
                size += len(item)
                sink.put(item)
        assert end is not None
        trailer = reader.read(end, 8)
        if len(trailer) < 8:
            raise StreamError("gzip member ends without its CRC/size trailer (truncated)")
        if (
            int.from_bytes(trailer[:4], "little") != crc
            or int.from_bytes(trailer[4:], "little") != size & 0xFFFFFFFF
        ):
            walk.notes.append(
                (
                    f"gzip member at offset {pos}: CRC or length in the trailer does not match the data",
                    Severity.MEDIUM,
                )
            )
        pos = end + 8
        first = False
        if pos >= reader.size:
            return
        if reader.read(pos, 3) != GZIP_MAGIC:
            # Python's gzip skips zero bytes after a member's trailer and reads on into a member after them
            nxt = pos + _zero_run(reader, pos)
            if nxt < reader.size and reader.read(nxt, 3) == GZIP_MAGIC:
                walk.notes.append(
                    (
                        f"{nxt - pos} zero bytes between gzip members at offset {pos} (gzip reads on)",
                        Severity.MEDIUM,
                    )
                )
                pos = nxt
                _check_time(sink)
                continue
            if not _all_zero(reader, pos):
                walk.trailing = pos
            return
        _check_time(sink)


def _zfile(reader: Reader, sink: _Sink, walk: _Walk) -> None:
    head = reader.read(0, ZF_HEADER + 1)
    declared = _zf_length(head)
    skip = ZF_HEADER + (1 if head[ZF_HEADER : ZF_HEADER + 1] == b" " else 0)
    _multi(reader, sink, walk, b"\x78", lambda: _ZlibDecoder(15), skip=skip)
    if declared is not None and declared != sink.size:
        walk.notes.append(
            (f"joblib ZF header declares {declared} bytes but the stream holds {sink.size}", Severity.MEDIUM)
        )


def _zstd_frames_complete(reader: Reader) -> str | None:
    """Walk zstd frame and block headers; the stream reader reports truncation as a clean end."""
    pos = 0
    while pos < reader.size:
        magic = reader.read(pos, 4)
        if len(magic) < 4:
            return f"zstd data truncated at offset {pos}"
        m = int.from_bytes(magic, "little")
        if 0x184D2A50 <= m <= 0x184D2A5F:  # skippable frame
            n = reader.read(pos + 4, 4)
            if len(n) < 4:
                return "zstd skippable frame truncated"
            pos += 8 + int.from_bytes(n, "little")
            continue
        if magic != ZSTD_MAGIC:
            return f"unexpected bytes after zstd frame at offset {pos}"
        fhd_b = reader.read(pos + 4, 1)
        if not fhd_b:
            return "zstd frame header truncated"
        fhd = fhd_b[0]
        fcs_flag, single, has_check, did_flag = fhd >> 6, (fhd >> 5) & 1, (fhd >> 2) & 1, fhd & 3
        fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
        pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag] + fcs_size
        while True:
            bh = reader.read(pos, 3)
            if len(bh) < 3:
                return "zstd frame truncated inside its blocks"
            v = int.from_bytes(bh, "little")
            last, btype, bsize = v & 1, (v >> 1) & 3, v >> 3
            pos += 3 + (1 if btype == 1 else bsize)
            if btype == 3:
                return "zstd block of reserved type"
            if last:
                break
        pos += 4 if has_check else 0
        if pos > reader.size:
            return "zstd frame truncated"
    return None


def _zstd(reader: Reader, sink: _Sink, walk: _Walk) -> None:
    import zstandard

    problem = _zstd_frames_complete(reader)
    src = ReaderIO(reader)
    try:
        # zstandard's stub asks for IO[bytes], but stream_reader only calls read() on its source, which a
        # RawIOBase has (its docs: "an object with a read(size) method")
        stream = zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True)  # type: ignore[arg-type]
        while True:
            out = stream.read(OUT_CHUNK)
            if not out:
                break
            sink.put(out)
    except zstandard.ZstdError as exc:
        raise StreamError(f"corrupt zstd data: {exc}") from None
    if problem:
        raise StreamError(problem)


# --------------------------------------------------------------------------- sniffers


def _trial(make: DecoderFactory, data: bytes, need: int = 1) -> bool:
    """True if ``data`` decodes without error and yields ``need`` bytes or a complete stream.

    A bzip2 block yields nothing until it is complete, so its sniffer asks only for error-free decoding.
    """
    try:
        dec = make()
        out = dec.decompress(data, max_length=TRIAL_OUT)  # type: ignore[attr-defined]
    except Exception:
        return False
    return len(out) >= need or bool(dec.eof)  # type: ignore[attr-defined]


def _zlib_header_ok(b: bytes) -> bool:
    return len(b) >= 2 and b[0] == 0x78 and not b[1] & 0x20 and (b[0] << 8 | b[1]) % 31 == 0


def _sniff_gzip(head: bytes, reader: Reader) -> bool:
    return head[:3] == GZIP_MAGIC and len(head) >= 10


def _sniff_bz2(head: bytes, reader: Reader) -> bool:
    return (
        len(head) >= 10
        and head[:3] == b"BZh"
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (BZ2_BLOCK, BZ2_EOS)
        and _trial(bz2.BZ2Decompressor, head, need=0)
    )


def _sniff_xz(head: bytes, reader: Reader) -> bool:
    return head[:6] == XZ_MAGIC


def _sniff_lzma(head: bytes, reader: Reader) -> bool:
    # joblib routes exactly this prefix to lzma.LZMAFile, whose decoder takes any dictionary size
    # (256 bytes, 2 GiB): only the range coder's zero first byte and a trial decode decide
    if len(head) < 14 or head[:2] != b"\x5d\x00" or head[13] != 0:
        return False
    return _trial(_AloneDecoder, head)


def _alone_follows(head: bytes) -> bool:
    """An lzma-alone header liblzma's auto decoder (lzma.LZMAFile, lzma.open) accepts for a following stream."""
    if len(head) < 14 or head[0] >= 9 * 5 * 5 or head[13] != 0:
        return False
    dict_size = int.from_bytes(head[1:5], "little")
    usize = int.from_bytes(head[5:13], "little")
    # liblzma's picky check: the size rounded up to 2^n or 2^n + 2^(n-1) must be the size itself
    d = (dict_size - 1) & 0xFFFFFFFF
    for shift in (2, 3, 4, 8, 16):
        d |= d >> shift
    picky = (d + 1) & 0xFFFFFFFF == dict_size or dict_size == 0xFFFFFFFF
    return picky and (usize == (1 << 64) - 1 or usize < 1 << 38)


def _zero_run(reader: Reader, pos: int) -> int:
    n = 0
    for chunk in reader.stream(pos):
        rest = chunk.lstrip(b"\x00")
        n += len(chunk) - len(rest)
        if rest:
            break
    return n


def _lzma_follow(reader: Reader, pos: int) -> tuple[DecoderFactory, int] | None:
    """lzma.LZMAFile reads on into any stream its auto decoder recognizes: xz or lzma-alone, mixed freely.

    Zero bytes are themselves empty lzma-alone streams (18 bytes each: no output), so a zero run is
    stepped over in whole empty streams, as LZMAFile consumes it, and the stream after it is decoded.
    """
    run = _zero_run(reader, pos)
    if run:
        if pos + run >= reader.size:
            return None  # zero padding to the end
        pos += run - run % EMPTY_ALONE
    head = reader.read(pos, FOLLOW_PROBE)
    if head.startswith(XZ_MAGIC) and _trial(_xz, head, need=0):
        return _xz, pos
    if _alone_follows(head) and _trial(_AloneDecoder, head):
        return _AloneDecoder, pos
    return None


def _sniff_zlib(head: bytes, reader: Reader) -> bool:
    return _zlib_header_ok(head) and _trial(lambda: _ZlibDecoder(15), head)


def _sniff_zstd(head: bytes, reader: Reader) -> bool:
    return head[:4] == ZSTD_MAGIC and len(head) >= 6


def _sniff_lz4(head: bytes, reader: Reader) -> bool:
    return head[:4] == LZ4_MAGIC and len(head) >= 7


def _zf_length(head: bytes) -> int | None:
    field_ = head[2:ZF_HEADER].rstrip(b" ")
    if not re.fullmatch(rb"0x[0-9a-f]{1,17}", field_):
        return None
    return int(field_, 16)


def _sniff_zfile(head: bytes, reader: Reader) -> bool:
    if head[:2] != b"ZF" or _zf_length(head) is None:
        return False
    body = head[ZF_HEADER + 1 :] if head[ZF_HEADER : ZF_HEADER + 1] == b" " else head[ZF_HEADER:]
    return _zlib_header_ok(body) and _trial(lambda: _ZlibDecoder(15), body)


# --------------------------------------------------------------------------- inspector


def _safe_member_name(raw: str | None, default: str) -> str:
    """A header file name is attacker text: keep its base name, printable, short, without path separators."""
    if not raw:
        return default
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch if ch.isprintable() and ch != "!" else "_" for ch in base)[:128].strip()
    return base if base not in ("", ".", "..") else default


def _make_inspector(
    label: str, walker: Callable[[Reader, _Sink, _Walk], None]
) -> Callable[[Reader, InspectContext], None]:
    def inspect(reader: Reader, ctx: InspectContext) -> None:
        sink = _make_sink(ctx, reader.size, f"{ctx.path}!<{label}>")
        try:
            _inflate_and_inspect(reader, ctx, label, walker, sink)
        finally:
            sink.data.close()
        _inspect_raw_tar(reader, ctx, label)

    inspect.__doc__ = f"Inflate the {label} wrapper within the caps and inspect the content."
    return inspect


def _inspect_raw_tar(reader: Reader, ctx: InspectContext, label: str) -> None:
    """A compressed stream whose raw bytes are also a tar archive is read as that tar by plain-tar readers.

    torch.load's legacy branch opens any file not starting with a zip header with ``tarfile`` mode ``'r:'``
    (no decompression), and ``tarfile.open``'s auto mode falls back to the raw tar when the decompressed
    content is not one: a stored deflate block puts a valid tar header (checksum and all) in the first 512
    bytes of a gzip member, so the members the loader unpickles are never in the decompressed view.
    """
    from .parsers.tar_header import BLOCK, looks_like_tar_header
    from .tar_archive import TAR_ARCHIVE

    if not looks_like_tar_header(reader.read(0, BLOCK)):
        return
    ctx.add(
        "ARCHIVE-MALFORMED",
        f"the {label} stream is also a tar archive (a valid tar header at byte 0): tarfile and torch's "
        "legacy loader read its raw bytes as tar members; they are inspected as well",
        severity=Severity.HIGH,
        evidence={"format": label},
    )
    TAR_ARCHIVE.inspect(reader, ctx)


def _inflate_and_inspect(
    reader: Reader,
    ctx: InspectContext,
    label: str,
    walker: Callable[[Reader, _Sink, _Walk], None],
    sink: _Sink,
) -> None:
    walk = _Walk()
    stopped: _Stop | None = None
    error: str | None = None
    try:
        walker(reader, sink, walk)
    except _Stop as stop:
        stopped = stop
    except SpoolError as exc:
        ctx.limit_hit("spool", f"{label} stream not inspected: {exc}")
        return
    except StreamError as exc:
        error = str(exc)
    evidence = {"format": label, "compressed_bytes": reader.size, "inflated_bytes": sink.size}
    if stopped is not None:
        if stopped.rule == "LIMIT-EXCEEDED":
            ctx.limit_hit(stopped.limit, str(stopped))
        else:
            ctx.add(stopped.rule, str(stopped), evidence={**evidence, "limit": stopped.limit})
            ctx.partial(f"{label} stream not fully inflated ({stopped.limit})")
    if error is not None:
        ctx.add(
            "ARCHIVE-MALFORMED",
            f"{label}: {error}; the {sink.size} bytes inflated before it were inspected",
            evidence=evidence,
        )
        ctx.partial(f"{label} stream damaged or truncated")
    for note, sev in walk.notes:
        ctx.add("ARCHIVE-MALFORMED", note, severity=sev, evidence=evidence)
    name = _safe_member_name(walk.name, f"<{label}>")
    if sink.size or error is None:
        content = sink.data.reader()
        content.name = name
        try:
            ctx.inspect_member(content, name, charge=True)
        finally:
            content.close()
    if walk.trailing is not None and stopped is None:
        ctx.add(
            "ARCHIVE-MALFORMED",
            f"{reader.size - walk.trailing} bytes after the end of the {label} stream; inspected separately",
            severity=Severity.MEDIUM,
            offset=walk.trailing,
        )
        tail = SliceReader(
            reader, walk.trailing, reader.size - walk.trailing, f"{reader.name}@{walk.trailing}"
        )
        ctx.inspect_member(tail, f"<{label}-trailing@{walk.trailing}>")


class _AloneDecoder:
    """lzma-alone with the header's dictionary size capped at ALONE_DICT_CAP.

    The header may ask for any dictionary (2 GiB passes liblzma's checks and joblib loads it), which the
    decoder memory limit would refuse. A back-reference never reaches further than the bytes already
    output, so a smaller dictionary decodes the same bytes up to that size; past it a distant reference
    is reported as corrupt data (partial), never skipped.
    """

    def __init__(self) -> None:
        self._d = lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)
        self._head: bytes | None = b""  # header bytes held back until the dictionary size is known

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return self._head is not None or self._d.needs_input

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._head is not None:
            self._head += data
            if len(self._head) < 5:
                return b""
            data, self._head = self._head, None
            if int.from_bytes(data[1:5], "little") > ALONE_DICT_CAP:
                data = data[:1] + ALONE_DICT_CAP.to_bytes(4, "little") + data[5:]
        return self._d.decompress(data, max_length)


def _xz() -> object:
    return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT)


GZIP = FormatHandler(
    "gzip",
    _sniff_gzip,
    _make_inspector("gzip", _gzip),
    family="compressed",
    claims=(".gz", ".tgz"),
)
BZIP2 = FormatHandler(
    "bzip2",
    _sniff_bz2,
    _make_inspector("bzip2", lambda r, s, w: _multi(r, s, w, b"BZh", bz2.BZ2Decompressor)),
    family="compressed",
    claims=(".bz2", ".tbz2", ".tbz"),
)
XZ = FormatHandler(
    "xz",
    _sniff_xz,
    _make_inspector("xz", lambda r, s, w: _multi(r, s, w, XZ_MAGIC, _xz, follow=_lzma_follow)),
    family="compressed",
    claims=(".xz", ".txz"),
)
LZMA_ALONE = FormatHandler(
    "lzma-alone",
    _sniff_lzma,
    _make_inspector("lzma", lambda r, s, w: _multi(r, s, w, b"\x5d\x00", _AloneDecoder, follow=_lzma_follow)),
    family="compressed",
    claims=(".lzma",),
)
ZLIB = FormatHandler(
    "zlib",
    _sniff_zlib,
    _make_inspector("zlib", lambda r, s, w: _multi(r, s, w, b"\x78", lambda: _ZlibDecoder(15))),
    family="compressed",
    claims=(".z",),
)
ZSTD = FormatHandler(
    "zstd",
    _sniff_zstd,
    _make_inspector("zstd", _zstd),
    family="compressed",
    claims=(".zst", ".zstd", ".tzst"),
)
LZ4_FRAME = FormatHandler(
    "lz4-frame",
    _sniff_lz4,
    _make_inspector("lz4", lambda r, s, w: _multi(r, s, w, LZ4_MAGIC, _lz4_decoder, follow=_lz4_follow)),
    family="compressed",
    claims=(".lz4",),
)
JOBLIB_ZFILE = FormatHandler(
    "joblib-zfile",
    _sniff_zfile,
    _make_inspector("joblib-zfile", _zfile),
    family="compressed",
    claims=(".joblib", ".pkl", ".pickle", ".sav"),
)
