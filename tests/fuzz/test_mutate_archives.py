"""Truncate and bit-flip every container sample: findings or a clean pass, never a crash, a hang or a blow-up."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import resource
import tarfile
import time
import zlib

import lz4.frame
import py7zr
import pytest
import zstandard

from scanner.findings import Coverage
from scanner.limits import Limits
from tests.formats.archives.helpers import crashed_here
from tests.harness import detect_bytes, evil_pickle, mutations

pytestmark = pytest.mark.fuzz

LIMITS = Limits(file_seconds=20.0, max_member_inflated=64 << 20)


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("archive/data", evil_pickle()), ("n" * 150 + "/long.txt", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("lnk")
        link.type, link.linkname = tarfile.SYMTYPE, "../x"
        t.addfile(link)
    return buf.getvalue()


def _7z(encoded: bool) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        if not encoded:
            z.set_encoded_header_mode(False)
        z.writestr(evil_pickle(), "archive/data")
        z.writestr(b"text\n" * 50, "notes.txt")
    return buf.getvalue()


def samples() -> dict[str, bytes]:
    p = evil_pickle() + b"padding " * 200
    return {
        "gz": gzip.compress(p),
        "bz2": bz2.compress(p),
        "xz": lzma.compress(p),
        "lzma": lzma.compress(p, format=lzma.FORMAT_ALONE),
        "zlib": zlib.compress(p, 3),
        "zst": zstandard.ZstdCompressor().compress(p),
        "lz4": lz4.frame.compress(p),
        "zf": b"ZF" + f"{len(p):#x}".ljust(19).encode() + zlib.compress(p),
        "tar": _tar(),
        "tgz": gzip.compress(_tar()),
        "7z": _7z(True),
        "7z-plain": _7z(False),
    }


@pytest.mark.parametrize("kind", sorted(samples()))
def test_mutated_samples_never_crash_or_hang(kind: str) -> None:
    data = samples()[kind]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    edges = {1, 2, 5, 10, 20, 33, len(data) // 3, len(data) // 2, len(data) - 1}
    for i, (_, mutated) in enumerate(
        mutations(data, zlib.crc32(kind.encode()), cuts=edges, flips=40, overwrites=5)
    ):
        started = time.monotonic()
        result = detect_bytes(mutated, f"fuzz.{kind}", LIMITS)
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"{kind} mutation {i} took {elapsed:.1f}s"
        assert not crashed_here(result), (kind, i, crashed_here(result))
        # never a silent pass on damaged input unless it still parses cleanly
        assert result.findings or result.coverage is Coverage.FULL, (kind, i)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 512 * 1024, f"peak memory grew by {grown_kib} KiB"
