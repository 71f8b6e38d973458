"""Keras 3 ``.keras`` archives: a zip of config.json, metadata.json, model.weights.h5 and assets/.

The archive gets the generic zip treatment (structure anomalies, every member
inspected by content: the weights through the HDF5 handler, assets by whatever
they are) and config.json gets the Keras config analysis. Every member named
config.json is analyzed, duplicates included: Python's zipfile reads the last
one, other readers the first.
"""

from __future__ import annotations

import json
import struct

from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext
from ..parsers.json_cost import reader_value_bound
from ..zip.listing import ZipListing, central_listing, looks_like_zip
from ..zip.members import inspect_all, member_head, open_member
from .keras_h5 import analyze_config_text

MAX_METADATA = 1 << 20


KERAS_MEMBERS = {"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"}


def _sniff(head: bytes, reader: Reader) -> bool:
    """A zip with a root config.json and a Keras layout. keras.saving.load_model deserializes config.json
    (running what it names) before it looks for weights or metadata, so a zip holding nothing but Keras
    members (config.json alone included) is a .keras archive too, whatever its config's top-level shape."""
    if not looks_like_zip(head, reader):
        return False
    listing = central_listing(reader)
    if listing is None:
        return False
    names = {n.split("\x00", 1)[0] for n in listing.names()}
    if "config.json" not in names:
        return False
    if names & {"metadata.json", "model.weights.h5", "model.weights.npz"}:
        return True
    if all(n in KERAS_MEMBERS or n.startswith("assets/") or n.endswith("/") for n in names):
        return True
    # other members too: claimed when config.json reads as a serialized Keras object or a list of them
    # (Keras deserializes a top-level list element by element; a plain JSON handler sees no Keras object)
    entry = next((e for e in listing.entries if e.name.split("\x00", 1)[0] == "config.json"), None)
    if entry is None:
        return False
    local = reader.read(entry.local_header_offset, 30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return False
    nlen, xlen = struct.unpack("<HH", local[26:30])
    entry.data_offset = entry.local_header_offset + 30 + nlen + xlen  # the listing is this sniff's own copy
    text = member_head(reader, entry, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"[") or any(
        k in text for k in (b'"class_name"', b'"registered_name"', b'"module"')
    )


def _keras_version(reader: Reader, listing: ZipListing, ctx: InspectContext) -> str | None:
    for e in listing.entries:
        if e.name == "metadata.json" and e.uncompressed_size <= MAX_METADATA:
            sub = open_member(reader, e, ctx)
            if sub is None:
                return None
            try:
                meta = json.loads(sub.read(0, min(sub.size, MAX_METADATA)))
            except (ValueError, RecursionError):
                return None
            v = meta.get("keras_version") if isinstance(meta, dict) else None
            return str(v)[:40] if v is not None else None
    return None


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    listing = inspect_all(reader, ctx, ".keras")
    if listing is None or ctx.state.out_of_time():
        return
    version = _keras_version(reader, listing, ctx)
    # Python's zipfile (keras.saving) cuts a member name at its first NUL: "config.json\x00x" is read as config.json
    configs = [e for e in listing.entries if e.name.split("\x00", 1)[0] == "config.json"]
    for e in configs:
        sub = open_member(reader, e, ctx)
        # a reporting view at the member's path: the member itself was recorded and inspected by inspect_all
        member_ctx = InspectContext(
            ctx.state, ctx.child_path(e.name), ctx.depth + 1, member_name=e.name, dispatch=ctx.dispatch
        )
        if sub is None:
            member_ctx.add("KERAS-CONFIG-INVALID", "config.json could not be read from the archive")
            member_ctx.partial("config.json unreadable")
            continue
        if sub.size > ctx.limits.max_json_bytes:
            member_ctx.limit_hit("max_json_bytes", f"config.json of {sub.size} bytes not analyzed")
            continue
        if reader_value_bound(sub) > ctx.limits.max_json_values:  # parsing would cost up to ~25x the text
            member_ctx.limit_hit(
                "max_json_values",
                f"config.json holds more than {ctx.limits.max_json_values} JSON values; not analyzed",
            )
            continue
        label = (
            "config.json"
            + (f" (keras {version})" if version else "")
            + (f" #{e.index}" if len(configs) > 1 else "")
        )
        analyze_config_text(member_ctx, sub.read(0, sub.size), label)


KERAS_ZIP = FormatHandler(
    "keras-zip", _sniff, _inspect, family="keras", claims=(".keras",), can_carry_code=True
)
