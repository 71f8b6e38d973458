"""7z archives: every member (extensionless ones included) is decompressed in memory and inspected by content.

nullifAI (2025) shipped PyTorch pickles inside 7z, which scanners that open
only zip or only ``*.pkl`` members passed as clean. py7zr does the decoding,
but it is only ever given in-memory writers with caps: declared sizes are
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
from ..io.reader import BytesReader, Reader, ReaderIO
from .base import FormatHandler, InspectContext
from .compressed import RATIO_FLOOR
from .tar_archive import Capped

MAGIC = b"7z\xbc\xaf\x27\x1c"
AES_METHOD = b"\x06\xf1\x07\x01"


class _CapHit(Exception):
    pass


def _writer_classes() -> tuple[type, type, type]:
    from py7zr.io import MemIO, Py7zIO, WriterFactory

    class CappedBuffer(Py7zIO):
        """One member's bytes; refuses growth past its cap (py7zr would otherwise keep inflating)."""

        def __init__(self, cap: int, total: list[int], total_cap: int) -> None:
            self.data = bytearray()
            self.cap = cap
            self.total = total
            self.total_cap = total_cap
            self.done = False

        def write(self, s: bytes | bytearray) -> int:
            self.total[0] += len(s)
            if len(self.data) + len(s) > self.cap or self.total[0] > self.total_cap:
                raise _CapHit(f"member output exceeds {min(self.cap, self.total_cap)} bytes")
            self.data += s
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return len(self.data)

        def close(self) -> None:
            self.done = True

    class Factory(WriterFactory):
        def __init__(self, cap: int, total_cap: int) -> None:
            self.cap = cap
            self.total_cap = total_cap
            self.total = [0]
            self.products: dict[str, CappedBuffer] = {}

        def create(self, filename: str) -> Py7zIO:
            product = CappedBuffer(self.cap, self.total, self.total_cap)
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
        ctx.add("ARCHIVE-TOO-MANY-MEMBERS", f"{len(files)} members, more than {ctx.limits.max_members}; the rest "
                "were not inspected", evidence={"members": len(files), "limit": ctx.limits.max_members})
        ctx.partial("7z member limit reached")
        files = files[: ctx.limits.max_members]

    total_cap, cap_name = min((max(ctx.limits.max_ratio * reader.size, RATIO_FLOOR), "max_ratio"),
                              (max(ctx.state.budget_left, 0), "max_total_uncompressed"))
    member_cap = ctx.limits.max_member_in_memory
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
            limit = "max_member_in_memory" if size > member_cap else cap_name
            ctx.add("ARCHIVE-BOMB", f"member {name[:200]!r} declares {size} bytes; with the members before it that "
                    f"passes the {limit} cap, so it and the members after it are not inflated",
                    evidence={"declared": size, "limit": limit, "archive_bytes": reader.size})
            ctx.partial("7z members over the size caps not inspected")
            bombed = True
        planned += size
        if f.is_symlink:
            rep.add("ARCHIVE-SYMLINK", f"member {name[:200]!r} is a symbolic link", evidence={"name": name[:300]})
            continue
        kind = _special_kind(f)
        if kind:
            rep.add("ARCHIVE-SPECIAL-MEMBER", f"member {name[:200]!r} is a {kind}", evidence={"name": name[:300]})
            continue
        if not bombed:
            chosen.append(f)

    if encrypted and chosen:
        ctx.add("ARCHIVE-ENCRYPTED", "7z content is AES-encrypted; members cannot be inspected",
                evidence={"members": len(chosen)})
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
    factory = Factory(member_cap, total_cap)
    worker = archive.worker
    keep = {f.id for f in chosen}
    for f in files:
        worker.register_filelike(f.id, MemIO(str(f.id), factory) if f.id in keep else None)
    worker.max_extract_size = total_cap
    error: str | None = None
    try:
        worker.extract(archive.fp, None, parallel=False)
    except _CapHit as exc:
        ctx.add("ARCHIVE-BOMB", f"7z member inflated past its declared size: {exc}; inflation stopped",
                evidence={"limit": cap_name})
        ctx.partial("7z inflation stopped at a cap")
    except MemoryError:
        error = "decoder ran out of memory"
    except Exception as exc:  # corrupt streams, CRC errors, unsupported methods, bomb guard
        error = f"{type(exc).__name__}: {exc}"[:300]
    if error is not None and error.startswith("DecompressionBombError"):
        ctx.add("ARCHIVE-BOMB", f"7z inflation stopped at the {cap_name} cap ({error})", evidence={"limit": cap_name})
        ctx.partial("7z inflation stopped at a cap")
    elif error is not None:
        unsupported = "Unsupported" in error
        ctx.add("ARCHIVE-UNSUPPORTED" if unsupported else "ARCHIVE-MALFORMED",
                f"7z extraction failed ({error}); members decoded before the failure were inspected")
        ctx.partial("7z extraction incomplete")

    for f in chosen:
        product = factory.products.get(str(f.id))
        if product is None:
            continue
        name = str(f.filename) or f"<member-{f.id}>"
        if not product.done:
            rep.add("ARCHIVE-MALFORMED", f"member {name[:200]!r} did not decode cleanly ({len(product.data)} of "
                    f"{f.uncompressed} bytes, or a CRC error); what decoded is inspected", severity=Severity.HIGH)
        ctx.inspect_member(BytesReader(product.data, name), name, charge=True)
    rep.summarize()


HANDLERS = [
    FormatHandler("7z-archive", _sniff_7z, _inspect_7z, family="archive", claims=(".7z",), priority=40),
]
