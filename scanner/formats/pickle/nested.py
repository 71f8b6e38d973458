"""Pickles inside pickles: literal arguments of loader calls, and encoded literals.

``pickle.loads(b"...")`` or a base64 string that decodes to a pickle is the
classic way to hide a payload from a scanner that looks at one stream only.
Everything here is decoding of literals already read; nothing is loaded.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from typing import Any

from .values import Call, Glob, Seq

#: callables that unpickle (or load a file that may hold a pickle) from their first argument
LOADERS = frozenset(
    {
        "pickle:loads",
        "pickle:load",
        "pickle:_loads",
        "pickle:_load",
        "_pickle:loads",
        "_pickle:load",
        "dill:loads",
        "dill:load",
        "dill._dill:loads",
        "dill._dill:load",
        "cloudpickle:loads",
        "cloudpickle:load",
        "cloudpickle.cloudpickle:loads",
        "torch:load",
        "torch.serialization:load",
        "torch.storage:_load_from_bytes",
        "numpy:load",
        "numpy.lib.npyio:load",
        "numpy.lib._npyio_impl:load",
        "joblib:load",
        "joblib.numpy_pickle:load",
        "pandas:read_pickle",
        "pandas.io.pickle:read_pickle",
    }
)

_BYTESIO = frozenset({"io:BytesIO", "_io:BytesIO"})
_ENCODE = frozenset({"_codecs:encode", "codecs:encode"})
_B64 = re.compile(rb"^[A-Za-z0-9+/_\-]+={0,2}\s*$")
_HEX = re.compile(rb"^[0-9a-fA-F]+\s*$")
_ZLIB_HEADS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_PROTO0_HEAD = re.compile(rb"^\(?c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")


def static_bytes(v: Any) -> bytes | None:
    """The bytes a loader call's argument evaluates to, when statically known."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        try:
            return v.encode("latin-1")
        except UnicodeEncodeError:
            return v.encode("utf-8", "surrogatepass")
    if isinstance(v, Call) and isinstance(v.func, Glob) and isinstance(v.args, Seq) and v.args.items:
        path = v.func.rec.path
        if path in _BYTESIO:
            return static_bytes(v.args.items[0])
        if path in _ENCODE:
            first = v.args.items[0]
            if isinstance(first, str):
                return static_bytes(first)
    return None


def first_arg(call: Call) -> Any:
    if isinstance(call.args, Seq) and call.args.items:
        return call.args.items[0]
    return None


def looks_like_pickle(data: bytes) -> bool:
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return True
    return bool(_PROTO0_HEAD.match(data[:512]))


def decode_candidate(value: str | bytes, max_out: int) -> tuple[str, bytes] | None:
    """(encoding, decoded pickle bytes) when a literal encodes a pickle; cheap prefix checks first."""
    if isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    else:
        raw = bytes(value)
    head = raw[:64].strip()
    if raw[:2] in _ZLIB_HEADS:
        out = _inflate(raw, max_out)
        if out is not None and looks_like_pickle(out):
            return "zlib", out
    if _HEX.match(head) and len(raw.strip()) % 2 == 0:
        try:
            probe = binascii.unhexlify(head[: len(head) // 2 * 2][:16])
        except (binascii.Error, ValueError):
            probe = b""
        if _promising(probe):
            try:
                out = binascii.unhexlify(raw.strip())
            except (binascii.Error, ValueError):
                out = b""
            found = _final(out, max_out, "hex")
            if found:
                return found
    if _B64.match(head):
        b64_probe = _b64(head[: len(head) // 4 * 4][:16])
        if b64_probe and _promising(b64_probe):
            decoded = _b64(raw.strip())
            if decoded:
                found = _final(decoded, max_out, "base64")
                if found:
                    return found
    return None


def _b64(data: bytes) -> bytes | None:
    try:
        if b"-" in data or b"_" in data:
            return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _promising(probe: bytes) -> bool:
    return (
        probe[:2] in _ZLIB_HEADS
        or (len(probe) >= 2 and probe[0] == 0x80 and 2 <= probe[1] <= 5)
        or probe[:1] in (b"c", b"(")
    )


def _final(out: bytes, max_out: int, enc: str) -> tuple[str, bytes] | None:
    if out[:2] in _ZLIB_HEADS:
        inflated = _inflate(out, max_out)
        if inflated is not None and looks_like_pickle(inflated):
            return f"{enc}+zlib", inflated
        return None
    if looks_like_pickle(out):
        return enc, out
    return None


def _inflate(data: bytes, max_out: int) -> bytes | None:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, max_out)
    except zlib.error:
        return None
    return out
