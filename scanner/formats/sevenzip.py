"""7z archives: every member (extensionless ones included) is decompressed into a spool and inspected by content.

nullifAI (2025) shipped PyTorch pickles inside 7z, which scanners that open
only zip or only ``*.pkl`` members passed as clean. py7zr does the decoding,
but it is only ever given capped writers backed by spools (a few MiB of memory,
then an unlinked temp file): declared sizes are
checked against the ratio, in-memory and shared-budget caps before anything is
inflated, and the writers refuse bytes past those caps whatever the header
said. py7zr refuses a whole archive if one member name is unsafe, so members are
registered with its extraction worker directly, keyed by index, never by name.
"""

from __future__ import annotations

import io
import stat
from typing import Any

from ..findings import Severity
from ..io.reader import Reader, ReaderIO, SliceReader
from ..io.spool import Spool, SpoolError
from .compressed import RATIO_FLOOR
from .interface import FormatHandler, InspectContext
from .tar_archive import Capped

MAGIC = b"7z\xbc\xaf\x27\x1c"
AES_METHOD = b"\x06\xf1\x07\x01"


class _CapHit(Exception):
    pass


class _Interleaved(Exception):
    pass


OUT_STEP = 1 << 20  # bytes py7zr may decode per step


def _writer_classes() -> tuple[type, type, type]:
    import py7zr.py7zr as py7zr_core
    from py7zr.io import MemIO, Py7zIO, WriterFactory

    # py7zr sizes each decode step from free RAM (up to 128 MB held at once); one step must stay small
    py7zr_core.get_memory_limit = lambda: OUT_STEP  # type: ignore[attr-defined]

    class CappedBuffer(Py7zIO):
        """One member's bytes: a contiguous range of the archive's shared spool; refuses growth past its cap."""

        def __init__(self, cap: int, total: list[int], total_cap: int, spool: Spool) -> None:
            self.spool = spool  # shared by all members: memory up to a few MiB, then one unlinked temp file
            self.start: int | None = None
            self.length = 0
            self.cap = cap
            self.total = total
            self.total_cap = total_cap
            self.done = False

        def write(self, s: bytes | bytearray) -> int:
            self.total[0] += len(s)
            if self.length + len(s) > self.cap or self.total[0] > self.total_cap:
                raise _CapHit(f"member output exceeds {min(self.cap, self.total_cap)} bytes")
            if self.start is None:
                self.start = self.spool.size
            elif self.start + self.length != self.spool.size:  # py7zr extracts sequentially; never expected
                raise _Interleaved("7z members were written interleaved")
            self.spool.write(s)
            self.length += len(s)
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return self.length

        def close(self) -> None:
            self.done = True

    class Factory(WriterFactory):
        def __init__(self, cap: int, total_cap: int, spool: Spool) -> None:
            self.cap = cap
            self.total_cap = total_cap
            self.spool = spool
            self.total = [0]
            self.products: dict[str, CappedBuffer] = {}

        def create(self, filename: str) -> Py7zIO:
            product = CappedBuffer(self.cap, self.total, self.total_cap, self.spool)
            self.products[filename] = product
            return product

    return Factory, CappedBuffer, MemIO


def _sniff_7z(head: bytes, reader: Reader) -> bool:
    return head[:6] == MAGIC and len(head) >= 32


def _coders(archive: Any) -> list[bytes]:
    streams = getattr(archive.header, "main_streams", None)
    if streams is None:
        return []
    return [c.get("method", b"") for folder in streams.unpackinfo.folders for c in folder.coders]


def _special_kind(f: Any) -> str | None:
    if getattr(f, "is_socket", False):
        return "socket"
    try:
        fmt = f.st_fmt
    except Exception:
        return None
    if fmt in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
        return {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device", stat.S_IFIFO: "FIFO"}[fmt]
    return None


def _inspect_7z(reader: Reader, ctx: InspectContext) -> None:
    try:
        import py7zr
        from py7zr.exceptions import PasswordRequired
    except ImportError:  # pragma: no cover - py7zr is a dependency
        ctx.add("ARCHIVE-UNSUPPORTED", "7z support (py7zr) is not installed")
        ctx.unanalyzable("7z reader missing")
        return
    fp = io.BufferedReader(ReaderIO(reader), buffer_size=1 << 16)
    try:
        archive = py7zr.SevenZipFile(fp, mode="r")
    except PasswordRequired:
        ctx.add("ARCHIVE-ENCRYPTED", "7z archive headers are encrypted: member names and content are hidden")
        ctx.unanalyzable("encrypted 7z headers")
        return
    except MemoryError:
        ctx.add("ARCHIVE-MALFORMED", "7z headers demand more memory than allowed")
        ctx.unanalyzable("7z headers unreadable")
        return
    except Exception as exc:  # py7zr raises many types on hostile headers
        ctx.add("ARCHIVE-MALFORMED", f"7z headers unreadable: {type(exc).__name__}: {exc}"[:300])
        ctx.unanalyzable("7z headers unreadable")
        return
    try:
        _walk(archive, reader, ctx)
    finally:
        try:
            archive.close()
        except Exception:  # noqa: S110 - closing a read-only in-memory view cannot lose findings
            pass


def _walk(archive: Any, reader: Reader, ctx: InspectContext) -> None:
    rep = Capped(ctx)
    files = list(archive.files)
    encrypted = AES_METHOD in _coders(archive)
    if len(files) > ctx.limits.max_members:
        ctx.add(
            "ARCHIVE-TOO-MANY-MEMBERS",
            f"{len(files)} members, more than {ctx.limits.max_members}; the rest were not inspected",
            evidence={"members": len(files), "limit": ctx.limits.max_members},
        )
        ctx.partial("7z member limit reached")
        files = files[: ctx.limits.max_members]

    total_cap, cap_name = min(
        (max(ctx.limits.max_ratio * reader.size, RATIO_FLOOR), "max_ratio"),
        (max(ctx.state.budget_left, 0), "max_total_uncompressed"),
    )
    member_cap = ctx.limits.max_member_inflated
    chosen: list[Any] = []
    planned = 0
    bombed = False
    for f in files:
        name = str(f.filename)
        rep.check_name(name)
        if f.is_directory:
            continue
        # py7zr inflates every member before a wanted one in the same solid block, wanted or not,
        # so every declared size counts against the caps, and nothing after a bomb is extracted
        size = int(f.uncompressed or 0)
        if not bombed and (size > member_cap or planned + size > total_cap):
            limit = "max_member_inflated" if size > member_cap else cap_name
            ctx.add(
                "ARCHIVE-BOMB",
                f"member {name[:200]!r} declares {size} bytes; with the members before it that "
                f"passes the {limit} cap, so it and the members after it are not inflated",
                evidence={"declared": size, "limit": limit, "archive_bytes": reader.size},
            )
            ctx.partial("7z members over the size caps not inspected")
            bombed = True
        planned += size
        if f.is_symlink:
            rep.add(
                "ARCHIVE-SYMLINK", f"member {name[:200]!r} is a symbolic link", evidence={"name": name[:300]}
            )
            continue
        kind = _special_kind(f)
        if kind:
            rep.add(
                "ARCHIVE-SPECIAL-MEMBER", f"member {name[:200]!r} is a {kind}", evidence={"name": name[:300]}
            )
            continue
        if not bombed:
            chosen.append(f)

    if encrypted and chosen:
        ctx.add(
            "ARCHIVE-ENCRYPTED",
            "7z content is AES-encrypted; members cannot be inspected",
            evidence={"members": len(chosen)},
        )
        if ctx.depth == 0:
            ctx.unanalyzable("encrypted 7z content")
        else:
            ctx.partial("encrypted 7z content")
        rep.summarize()
        return
    if not chosen:
        rep.summarize()
        return

    Factory, _, MemIO = _writer_classes()
    spool = Spool(f"{ctx.path}!<7z content>", ctx.limits.spool_memory)
    factory = Factory(member_cap, total_cap, spool)
    worker = archive.worker
    keep = {f.id for f in chosen}
    for f in files:
        worker.register_filelike(f.id, MemIO(str(f.id), factory) if f.id in keep else None)
    worker.max_extract_size = total_cap
    try:
        _extract_and_inspect(archive, worker, factory, chosen, cap_name, ctx, rep)
    finally:
        spool.close()
    rep.summarize()


def _extract_and_inspect(
    archive: Any,
    worker: Any,
    factory: Any,
    chosen: list[Any],
    cap_name: str,
    ctx: InspectContext,
    rep: Capped,
) -> None:
    error: str | None = None
    try:
        worker.extract(archive.fp, None, parallel=False)
    except (SpoolError, _Interleaved) as exc:
        ctx.limit_hit("spool", f"7z members not inspected: {exc}")
        return
    except _CapHit as exc:
        ctx.add(
            "ARCHIVE-BOMB",
            f"7z member inflated past its declared size: {exc}; inflation stopped",
            evidence={"limit": cap_name},
        )
        ctx.partial("7z inflation stopped at a cap")
    except MemoryError:
        error = "decoder ran out of memory"
    except Exception as exc:  # corrupt streams, CRC errors, unsupported methods, bomb guard
        error = f"{type(exc).__name__}: {exc}"[:300]
    if error is not None and error.startswith("DecompressionBombError"):
        ctx.add(
            "ARCHIVE-BOMB",
            f"7z inflation stopped at the {cap_name} cap ({error})",
            evidence={"limit": cap_name},
        )
        ctx.partial("7z inflation stopped at a cap")
    elif error is not None:
        unsupported = "Unsupported" in error
        ctx.add(
            "ARCHIVE-UNSUPPORTED" if unsupported else "ARCHIVE-MALFORMED",
            f"7z extraction failed ({error}); members decoded before the failure were inspected",
        )
        ctx.partial("7z extraction incomplete")

    content = factory.spool.reader()
    try:
        for f in chosen:
            product = factory.products.get(str(f.id))
            if product is None:
                continue
            name = str(f.filename) or f"<member-{f.id}>"
            if not product.done:
                rep.add(
                    "ARCHIVE-MALFORMED",
                    f"member {name[:200]!r} did not decode cleanly ({product.length} of "
                    f"{f.uncompressed} bytes, or a CRC error); what decoded is inspected",
                    severity=Severity.HIGH,
                )
            start = product.start if product.start is not None else 0
            ctx.inspect_member(SliceReader(content, start, product.length, name), name, charge=True)
    finally:
        content.close()


SEVENZIP_ARCHIVE = FormatHandler("7z-archive", _sniff_7z, _inspect_7z, family="archive", claims=(".7z",))
