"""Red team 3: lzma and lz4 wrappers read the way joblib reads them (``lzma.LZMAFile``, ``LZ4FrameFile``).

joblib routes a file starting ``5d 00`` (or the xz magic) to ``lzma.LZMAFile(f, "rb")``. That decoder:

* takes any dictionary size in an lzma-alone header (256 bytes, 2 GiB); the sniffer used to demand
  4 KiB..1.5 GiB, so such a file was only FORMAT-UNKNOWN and its pickle never judged;
* reads on after a stream into whatever stream its auto decoder recognizes: an xz stream after an
  lzma-alone one and the reverse, an lzma-alone stream with other properties than ``5d``, and runs of
  zero bytes, which are themselves empty 18-byte lzma-alone streams. A pickle split across two such
  streams was seen as a truncated pickle plus an unknown tail, never as the payload joblib runs.

joblib reads an lz4 file with ``lz4.frame.LZ4FrameFile``, which steps over skippable frames
(magic 0x184D2A50-5F) between frames and reads on; the walk used to stop at one.

Each shape here was checked to run its payload with joblib 1.6.0; nothing here is unpickled.
"""

from __future__ import annotations

import lzma
import struct

import lz4.frame
import pytest

from scanner.formats.compressed import _alone_follows, _AloneDecoder
from tests.harness import benign_pickle, blocked_for_payload, detect_bytes, evil_pickle, rule_ids

PAYLOAD = evil_pickle(2)


def alone(data: bytes, dict_size: int | None = None) -> bytes:
    out = lzma.compress(data, format=lzma.FORMAT_ALONE)
    return out if dict_size is None else out[:1] + struct.pack("<I", dict_size) + out[5:]


def alone_props0(data: bytes) -> bytes:
    """lzma-alone with lc=lp=pb=0 (props byte 00): not joblib's prefix, still read as a following stream."""
    lzma1 = {"id": lzma.FILTER_LZMA1, "lc": 0, "lp": 0, "pb": 0, "dict_size": 1 << 16}
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=[lzma1])


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ)


@pytest.mark.parametrize("dict_size", [0, 256, 2048, 0x30000, 1 << 31])
def test_any_dictionary_size_is_decoded(dict_size: int) -> None:
    fr = detect_bytes(alone(PAYLOAD, dict_size), "model.pkl")
    assert fr.format == "lzma-alone"
    assert blocked_for_payload(fr), sorted(rule_ids(fr))
    assert "FORMAT-UNKNOWN" not in rule_ids(fr)


def test_small_dictionary_benign_stays_clean() -> None:
    fr = detect_bytes(alone(benign_pickle(), 256), "model.pkl")
    assert fr.format == "lzma-alone"
    assert not {r for r in rule_ids(fr) if r.startswith(("PICKLE", "ARCHIVE", "FORMAT"))}


def _split(first, second) -> bytes:  # type: ignore[no-untyped-def]
    return first(PAYLOAD[:6]) + second(PAYLOAD[6:])


SPLITS = {
    "alone-then-xz": lambda: _split(alone, xz),
    "xz-then-alone": lambda: _split(xz, alone),
    "alone-then-props0": lambda: _split(alone, alone_props0),
    "xz-then-props0": lambda: _split(xz, alone_props0),
    "xz-zero-streams-alone": lambda: xz(PAYLOAD[:6]) + b"\0" * 36 + alone(PAYLOAD[6:]),
    "alone-zero-stream-xz": lambda: alone(PAYLOAD[:6]) + b"\0" * 18 + xz(PAYLOAD[6:]),
}


@pytest.mark.parametrize("shape", sorted(SPLITS))
def test_pickle_split_across_mixed_streams_is_one_stream(shape: str) -> None:
    fr = detect_bytes(SPLITS[shape](), "model.joblib")
    assert blocked_for_payload(fr), sorted(rule_ids(fr))
    assert "PICKLE-MALFORMED" not in rule_ids(fr)  # the whole pickle, not a truncated half


def test_misaligned_zero_run_ends_the_stream_as_lzmafile_does() -> None:
    """20 zeros: one empty stream, then 2 zeros + a header LZMAFile cannot read: it stops there."""
    fr = detect_bytes(xz(PAYLOAD[:6]) + b"\0" * 20 + alone(PAYLOAD[6:]), "model.joblib")
    assert "ARCHIVE-MALFORMED" in rule_ids(fr)  # the tail is reported and inspected separately


def test_zero_padding_is_still_just_padding() -> None:
    for n in (4, 17, 18, 1 << 20):
        fr = detect_bytes(xz(benign_pickle()) + b"\0" * n, "model.joblib")
        assert not {r for r in rule_ids(fr) if r.startswith(("ARCHIVE", "PICKLE"))}, n


def test_garbage_after_stream_is_still_trailing() -> None:
    fr = detect_bytes(xz(benign_pickle()) + b"not a stream" * 4, "model.joblib")
    assert "ARCHIVE-MALFORMED" in rule_ids(fr)


def test_follow_check_matches_liblzma_auto_decoder() -> None:
    """The picky dictionary rule (2^n or 2^n + 2^(n-1)) agrees with lzma's FORMAT_AUTO on many sizes."""
    body = lzma.compress(b"hello" * 10, format=lzma.FORMAT_ALONE)
    sizes = [0, 1, 3, 5, 6, 7, 12, 0x12300, 0x30000, 0xFFFFFFFE, 0xFFFFFFFF]
    sizes += [1 << n for n in range(32)] + [(1 << n) + (1 << (n - 1)) for n in range(1, 32)]
    sizes += [(1 << n) + 1 for n in range(2, 32)]
    for size in sizes:
        data = body[:1] + struct.pack("<I", size) + body[5:]
        try:
            lzma.LZMADecompressor(lzma.FORMAT_AUTO).decompress(data)
            accepted = True
        except lzma.LZMAError:
            accepted = False
        assert _alone_follows(data) == accepted, hex(size)


def test_capped_dictionary_decodes_the_same_bytes() -> None:
    data = bytes(range(256)) * 4096
    dec = _AloneDecoder()
    assert dec.decompress(alone(data, 0xFFFFFFFF), -1) == data
    assert dec.eof


def skippable(n: int = 0xF) -> bytes:
    return struct.pack("<II", 0x184D2A50 | n, 3) + b"abc"


@pytest.mark.parametrize("n", [0, 0xF])
def test_lz4_skippable_frame_between_frames_is_stepped_over(n: int) -> None:
    data = lz4.frame.compress(PAYLOAD[:6]) + skippable(n) + lz4.frame.compress(PAYLOAD[6:])
    fr = detect_bytes(data, "model.joblib")
    assert fr.format == "lz4-frame"
    assert blocked_for_payload(fr), sorted(rule_ids(fr))
    assert "PICKLE-MALFORMED" not in rule_ids(fr)


def test_lz4_trailing_skippable_frame_is_clean_and_truncated_one_is_malformed() -> None:
    ok = detect_bytes(lz4.frame.compress(benign_pickle()) + skippable(), "model.joblib")
    assert not {r for r in rule_ids(ok) if r.startswith(("ARCHIVE", "PICKLE"))}
    cut = detect_bytes(lz4.frame.compress(benign_pickle()) + skippable()[:6], "model.joblib")
    assert "ARCHIVE-MALFORMED" in rule_ids(cut)
