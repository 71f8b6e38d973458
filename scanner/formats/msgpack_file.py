"""MessagePack weight files (Flax ``flax_model.msgpack`` and similar), walked without unpacking.

msgpack is data only: no loader runs code from it (Flax's ext hook turns
three extension codes into numpy arrays and complex numbers). Such a file is
recognized so it is not an unknown format, and walked structurally: every
length is checked against the bytes that remain, nesting and item counts are
capped, Flax array extensions must match their shape and dtype, and the file
must be exactly one object. Tensor payloads are skipped, never read. Bytes values that a loader opens as a
file (thinc model shims, spacy-transformers' HFShim state and tokenizer) are judged in ``msgpack_shims``.
"""

from __future__ import annotations

from ..io.reader import Reader, SliceReader
from .data_files import is_text as _is_text
from .interface import FormatHandler, InspectContext
from .msgpack_walk import (
    HASH_KEYS,
    MAX_DEPTH,
    MAX_ITEMS,
    MIN_NAMES,
    SNIFF_ITEMS,
    MsgpackError,
    Walker,
    WalkStats,
    _Buf,
    _OutOfTime,
    _SniffBudget,
)


def _name_tree(st: WalkStats, names: int = MIN_NAMES) -> bool:
    """A map whose keys read as names: what a Flax state dict (or any msgpack model file) is."""
    return st.root_kind == "map" and st.odd_keys == 0 and st.root_uint_keys == 0 and st.names >= names


def _hash_table(st: WalkStats, keys: int = HASH_KEYS) -> bool:
    """A map keyed at the top by uint32/uint64 (spaCy's ``vocab/key2row``): one such key has a 1 in 128 chance
    in random bytes, so a run of them is no accident of raw data."""
    return st.root_kind == "map" and st.odd_keys == 0 and st.names == 0 and st.root_uint_keys >= keys


def _sniff(head: bytes, reader: Reader) -> bool:
    """Claim what a msgpack model file is, not whatever bytes start with a map or array type byte.

    Raw tensor data (ONNX external data, ``.bin`` shards, ``tofile`` output) often starts with a byte in
    0x80-0x9f or 0xdc-0xdf and goes on to decode as msgpack for a while: almost every byte is a valid
    type, so a clean prefix proves nothing. A file is claimed when the whole of it is one object (what
    ``msgpack.unpackb``, under Flax's ``msgpack_restore``, loads) whose top is an array or a map keyed by
    names, or, when only a prefix could be walked (budget, malformed, bytes after the object), when that
    prefix is a map whose keys read as names (a Flax state dict), which random bytes essentially never are.
    spaCy's files: a whole file that is one empty map/array (``0x80``), or a map keyed at the top by uint64
    hashes (``vocab/key2row``; a prefix needs ``HASH_KEYS`` of them).
    What is not claimed stays unknown and fails closed, unless a repository check knows it is raw data.
    """
    if not head:
        return False
    t = head[0]
    if not (0x80 <= t <= 0x9F or t in (0xDC, 0xDD, 0xDE, 0xDF)) or _is_text(head):
        return False
    w = Walker(_Buf(reader, chunk=1 << 14), max_items=SNIFF_ITEMS, sniff=True)
    st = w.stats
    try:
        stop = w.walk(0, reader.size)
    except _SniffBudget:
        return _name_tree(st) or _hash_table(st)
    except MsgpackError:
        # msgpack gone wrong under named keys (truncated, corrupted): claimed so the inspector says where;
        # a nesting bomb (MAX_DEPTH open containers) is no accident of raw data either
        return _name_tree(st) or st.max_depth >= MAX_DEPTH
    except (OverflowError, _OutOfTime):
        return False
    if st.root_entries == 0:
        # the whole file one empty map or array (spaCy writes ``vocab/key2row`` and ``lookups.bin`` as 0x80)
        return stop == reader.size and st.root_kind in ("map", "array")
    if stop == reader.size:
        return not st.bad_strs and (
            st.root_kind == "array" or _name_tree(st, names=1) or _hash_table(st, keys=1)
        )
    return _name_tree(st)  # one object and bytes after it: trailing data behind a state dict


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    w = Walker(_Buf(reader), out_of_time=ctx.state.out_of_time)
    try:
        stop = w.walk(0, reader.size)
    except MsgpackError as exc:
        ctx.add(
            "MSGPACK-INVALID", f"msgpack is malformed at byte {exc.offset}: {exc}"[:300], offset=exc.offset
        )
        ctx.partial("msgpack malformed")
        return
    except OverflowError:
        ctx.limit_hit("max_items", f"msgpack has more than {MAX_ITEMS} items; the rest was not checked")
        return
    except _OutOfTime:
        ctx.limit_hit("file_seconds", "time budget ran out while walking msgpack")
        return
    st = w.stats
    from .msgpack_shims import judge_shims

    judge_shims(reader, ctx, stop, out_of_time=ctx.state.out_of_time, msgpack=MSGPACK)
    for msg, off, sev in st.issues[:10]:
        ctx.add("MSGPACK-INVALID", msg, severity=sev, offset=off)
    if stop != reader.size:
        ctx.add(
            "MSGPACK-TRAILING-DATA",
            f"{reader.size - stop} bytes follow the msgpack document (ends at byte {stop})",
            offset=stop,
            evidence={"document_end": stop, "trailing_bytes": reader.size - stop},
        )
        if reader.size - stop >= 16:  # the trailing bytes may be a whole other file: judge it as one
            ctx.inspect_member(
                SliceReader(reader, stop, reader.size - stop, "trailing-data"), "trailing-data"
            )


# spaCy writes Lookups tables as ``lookups.bin`` (srsly msgpack): named so, not a PyTorch/XGBoost ``.bin``
MSGPACK = FormatHandler("msgpack", _sniff, _inspect, family="msgpack", claims=(".msgpack", "lookups.bin"))
