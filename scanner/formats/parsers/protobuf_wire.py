"""A small bounded reader for the protobuf wire format (no schema, no generated code).

TensorFlow protobufs are parsed with the field numbers of the few messages the
scanner needs, so neither tensorflow nor its generated modules are imported.
Every length is checked against the enclosing message before it is used.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LEN, SGROUP, EGROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class WireError(Exception):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    end = len(buf) if end is None else end
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


Field = tuple[int, int, "int | memoryview"]


def iter_fields(buf: bytes | memoryview) -> Iterator[Field]:
    """(field number, wire type, value): ints for scalar types, a zero-copy slice for length-delimited."""
    mv = memoryview(buf)
    pos, end = 0, len(mv)
    while pos < end:
        tag, pos = read_varint(mv, pos, end)
        field, wt = tag >> 3, tag & 7
        if field == 0:
            raise WireError("field number 0")
        if wt == VARINT:
            v, pos = read_varint(mv, pos, end)
            yield field, wt, v
        elif wt == LEN:
            n, pos = read_varint(mv, pos, end)
            if n > end - pos:
                raise WireError(f"field {field} declares {n} bytes, {end - pos} remain")
            yield field, wt, mv[pos : pos + n]
            pos += n
        elif wt == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64")
            yield field, wt, int.from_bytes(mv[pos : pos + 8], "little")
            pos += 8
        elif wt == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32")
            yield field, wt, int.from_bytes(mv[pos : pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wt} (field {field})")


def len_fields(buf: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(field number, payload) of the length-delimited fields only; the other fields are still
    checked for well-formedness as :func:`iter_fields` walks past them."""
    for field, _wt, value in iter_fields(buf):
        if isinstance(value, memoryview):  # exactly the LEN wire type
            yield field, value


def text(v: int | memoryview, cap: int = 4096) -> str:
    """A length-delimited field as text (capped); scalars give ''."""
    if isinstance(v, int):
        return ""
    return bytes(v[:cap]).decode("utf-8", "replace")


def scan_top_level(read, size: int, max_fields: int = 100_000) -> Iterator[tuple[int, int, int, int]]:
    """Walk top-level fields through ``read(offset, n)`` without loading the message.

    Yields (field, wire type, value offset, value length or varint value); used
    by sniffers on large files.
    """
    pos = 0
    count = 0
    while pos < size:
        count += 1
        if count > max_fields:
            raise WireError("too many top-level fields")
        head = read(pos, 20)
        tag, p = read_varint(head, 0)
        field, wt = tag >> 3, tag & 7
        if field == 0:
            raise WireError("field number 0")
        if wt == VARINT:
            v, p2 = read_varint(head, p)
            yield field, wt, pos + p, v
            pos += p2
        elif wt == LEN:
            n, p2 = read_varint(head, p)
            if n > size - pos - p2:
                raise WireError("length past end of file")
            yield field, wt, pos + p2, n
            pos += p2 + n
        else:
            raise WireError(f"unexpected wire type {wt} at top level")
