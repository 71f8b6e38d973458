"""TFLite flatbuffers (file identifier ``TFL3``): the operator table decides what native code runs.

Builtin operators are kernels of the interpreter. Custom operators and Flex
(select-TensorFlow) operators need kernels the host registers: native code
outside the model. Only the root table and the operator-code vector are read
(a few hundred bytes through random access), never the weight buffers.
"""

from __future__ import annotations

import struct

from ...findings import Severity
from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext

CUSTOM = 32
MAX_OPCODES = 10_000
# custom ops the stock interpreter registers itself (kernels/register.cc and the task libraries)
RUNTIME_CUSTOM_OPS = {
    "TFLite_Detection_PostProcess",
    "Convolution2DTransposeBias",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "Mfcc",
    "AudioSpectrogram",
}


class FlatbufferError(Exception):
    pass


class _FB:
    def __init__(self, reader: Reader) -> None:
        self.r = reader

    def _u(self, fmt: str, pos: int) -> int:
        n = struct.calcsize(fmt)
        if pos < 0 or pos + n > self.r.size:
            raise FlatbufferError(f"offset {pos} outside the file")
        return struct.unpack(fmt, self.r.read(pos, n))[0]

    def field(self, table: int, idx: int) -> int | None:
        """Absolute position of field ``idx`` of the table at ``table`` (None: absent)."""
        vt = table - self._u("<i", table)
        vsize = self._u("<H", vt)
        if vsize < 4 or vsize > 4096:
            raise FlatbufferError("implausible vtable")
        if 4 + 2 * idx >= vsize:
            return None
        off = self._u("<H", vt + 4 + 2 * idx)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self._u("<I", pos)

    def vector(self, pos: int, cap: int) -> list[int]:
        start = self.deref(pos)
        n = self._u("<I", start)
        if n > cap or start + 4 + 4 * n > self.r.size:
            raise FlatbufferError(f"vector of {n} elements does not fit")
        return [start + 4 + 4 * i for i in range(n)]

    def string(self, pos: int, cap: int = 256) -> str:
        start = self.deref(pos)
        n = self._u("<I", start)
        if start + 4 + n > self.r.size:
            raise FlatbufferError("string runs past the end")
        return self.r.read(start + 4, min(n, cap)).decode("utf-8", "replace")


def operator_codes(reader: Reader) -> list[tuple[int, str | None]]:
    """(builtin code, custom code) for every OperatorCode of the model."""
    fb = _FB(reader)
    root = fb._u("<I", 0)
    codes_field = fb.field(root, 1)
    if codes_field is None:
        return []
    out = []
    for elem in fb.vector(codes_field, MAX_OPCODES):
        t = fb.deref(elem)
        dep = fb.field(t, 0)
        custom = fb.field(t, 1)
        builtin = fb.field(t, 3)
        code = max(fb._u("<b", dep) if dep else 0, fb._u("<i", builtin) if builtin else 0)
        out.append((code, fb.string(custom) if custom else None))
    return out


def _sniff(head: bytes, reader: Reader) -> bool:
    return len(head) >= 8 and head[4:8] == b"TFL3"


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    try:
        codes = operator_codes(reader)
    except FlatbufferError as exc:
        ctx.add("TFLITE-INVALID", f"TFLite operator table unreadable: {exc}")
        ctx.partial("TFLite operator table unreadable")
        return
    custom = sorted(
        {name or f"<custom #{i}>" for i, (code, name) in enumerate(codes) if code == CUSTOM or name}
    )
    flex = [c for c in custom if c.startswith("Flex")]
    native = [c for c in custom if c not in RUNTIME_CUSTOM_OPS]
    if native:
        ctx.add(
            "TFLITE-CUSTOM-OP",
            f"{len(native)} custom/Flex op(s) need host-registered kernels: {', '.join(native[:8])}",
            evidence={"custom_ops": native[:50], "flex_ops": flex[:50]},
        )
    elif custom:
        ctx.add(
            "TFLITE-CUSTOM-OP",
            f"custom op(s) bundled with the stock interpreter: {', '.join(custom[:8])}",
            severity=Severity.LOW,
            evidence={"custom_ops": custom[:50]},
        )


TFLITE = FormatHandler("tflite", _sniff, _inspect, family="tflite", claims=(".tflite",), can_carry_code=True)
