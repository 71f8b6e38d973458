"""Data-only formats (text, JSON, images) that nothing executes on load.

They are recognized so that a model repository's README or PNG is reported as
judged, not as an unknown format. Anything binary that is not recognized here
or elsewhere stays "unknown" and fails closed.
"""

from __future__ import annotations

import json

from ..io.reader import Reader
from .base import FormatHandler, InspectContext

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def is_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes; a multi-byte character cut at the end of ``head`` still counts."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the sniff boundary is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _sniff_json(head: bytes, reader: Reader) -> bool:
    s = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if s[:2] in (b"{%", b"{{", b"{#"):  # a Jinja template, not JSON
        return False
    return is_text(head) and s[:1] in (b"{", b"[")


JSON_PARSE_BYTES = 32 << 20  # json.loads needs several times the text in objects; tokenizer.json files fit


def _inspect_json(reader: Reader, ctx: InspectContext) -> None:
    if reader.size > ctx.limits.max_json_bytes:
        ctx.limit_hit("max_json_bytes", f"JSON larger than {ctx.limits.max_json_bytes} bytes not parsed")
        return
    if reader.size > JSON_PARSE_BYTES:
        # JSON carries no code; a file this large is checked to be text throughout, not parsed into objects
        if not _sniff_text(reader.head(4096), reader):
            ctx.add("JSON-INVALID", "JSON file contains binary data")
            return
        ctx.add("JSON-NOT-VALIDATED", f"{reader.size}-byte JSON checked as text but not parsed (memory bound)")
        return
    raw = reader.read(0, reader.size)
    try:
        json.loads(raw)
    except (ValueError, RecursionError) as exc:
        ctx.add("JSON-INVALID", f"not valid JSON: {exc}"[:300])


def _sniff_image(head: bytes, reader: Reader) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _sniff_text(head: bytes, reader: Reader) -> bool:
    if not is_text(head):
        return False
    # the rest of the file must be text too: a text head can front a binary payload
    for chunk in reader.stream(len(head), chunk=1 << 20):
        if b"\x00" in chunk:
            return False
    return True


def _inspect_nothing(reader: Reader, ctx: InspectContext) -> None:
    """Nothing in these formats executes; detection already read what was needed."""


HANDLERS = [
    FormatHandler("json", _sniff_json, _inspect_json, family="json", claims=(".json",), priority=80),
    FormatHandler("image", _sniff_image, _inspect_nothing, family="image", claims=(".png", ".jpg", ".jpeg", ".gif", ".webp"), priority=80),
    FormatHandler("text", _sniff_text, _inspect_nothing, family="text", claims=(".txt", ".md"), priority=90),
]
