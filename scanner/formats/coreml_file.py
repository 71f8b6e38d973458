"""Core ML: ``.mlmodel`` protobufs and the MIL blob-storage ``weight.bin`` of an ``.mlpackage``.

A Model is protobuf (specificationVersion=1, description=2, isUpdatable=10,
then one model type at field 200 or above). Nothing in it is code except
custom layers and custom models, which name a native class the host app
must supply; those are reported, and pipelines and control-flow subnetworks
are followed so none hides. The sniff requires a model-type field (>= 200),
which neither ONNX nor TensorFlow protobufs have at the top level. A field
outside the Model schema is reported: protobuf loaders skip unknown fields,
so that is how one file is also another model (an ONNX graph behind a Core
ML head).

``weight.bin`` starts with a 64-byte storage header (blob count, version 2)
and holds 64-byte blob headers (sentinel 0xDEADBEEF, dtype, size, offset)
each followed by its data; every blob is checked to lie inside the file.
"""

from __future__ import annotations

import struct

from ..findings import Severity
from ..io.reader import Reader
from .interface import FormatHandler, InspectContext
from .parsers.protobuf_wire import LEN, VARINT, WireError, iter_fields, len_fields, read_varint, text

MAX_SPEC_VERSION = 12
MAX_DEPTH = 16
MAX_FINDINGS = 20
PIPELINE_TYPES = {200, 201}  # PipelineClassifier / PipelineRegressor {pipeline = 1}
PIPELINE = 202  # Pipeline {models = 1}
NEURAL_NETWORKS = {303, 403, 500}  # NeuralNetworkRegressor / Classifier / NeuralNetwork {layers = 1}
CUSTOM_MODEL, LINKED_MODEL, SERIALIZED_MODEL = 555, 556, 3000
MODEL_TYPES = frozenset(
    {
        200,
        201,
        202,
        300,
        301,
        302,
        303,
        304,
        400,
        401,
        402,
        403,
        404,
        500,
        501,
        502,
        555,
        556,
        560,
        600,
        601,
        602,
        603,
        604,
        606,
        607,
        609,
        610,
        900,
        2000,
        2001,
        2002,
        2003,
        2004,
        2005,
        2006,
        3000,
    }
)
LAYER_CUSTOM, LAYER_BRANCH, LAYER_LOOP = 500, 605, 615
BLOB_SENTINEL = 0xDEADBEEF
BLOB_VERSION = 2
MAX_BLOBS = 1_000_000


class _TooDeep(Exception):
    pass


# ---------------------------------------------------------------------------- .mlmodel


def _sniff_model(head: bytes, reader: Reader) -> bool:
    """specificationVersion first, a description, and a model-type field; nothing else at the top level.

    A model-type field whose length runs past the end still claims the file
    (after a description), so a truncated model gets COREML-INVALID, not "unknown".
    """
    if head[:1] != b"\x08":
        return False
    pos = 0
    saw_description = False
    try:
        version, _ = read_varint(head, 1)
        if not 1 <= version <= MAX_SPEC_VERSION:
            return False
        for _ in range(64):
            if pos >= reader.size:
                return False  # no model type
            chunk = reader.read(pos, 20)
            tag, p = read_varint(chunk, 0)
            f, wt = tag >> 3, tag & 7
            if wt == VARINT and f in (1, 10):
                _, p = read_varint(chunk, p)
                pos += p
                continue
            if wt != LEN:
                return False
            n, p = read_varint(chunk, p)
            if f in MODEL_TYPES:
                return saw_description
            if f != 2 or n > reader.size - pos - p:
                return False
            saw_description = True
            pos += p + n
    except WireError:
        return False
    return False


class _Walk:
    def __init__(self, ctx: InspectContext) -> None:
        self.ctx = ctx
        self.counts: dict[str, int] = {}

    def report(self, rule: str, message: str, **ev: object) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + 1
        if self.counts[rule] <= MAX_FINDINGS:
            self.ctx.add(rule, message, evidence={k: v for k, v in ev.items() if v is not None})

    def model(self, buf: memoryview, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep
        foreign = sorted(
            {
                f
                for f, wt, _v in iter_fields(buf)
                if not (wt == VARINT and f in (1, 10) or wt == LEN and (f == 2 or f in MODEL_TYPES))
            }
        )
        if foreign:
            # Core ML skips unknown fields, and so do other protobuf loaders: an ONNX ModelProto (graph = 7,
            # opset_import = 8) behind a Core ML head ran under onnxruntime while this file was judged Core ML only
            self.report(
                "COREML-INVALID",
                f"{where} has field(s) {foreign[:8]} that are not part of a Core ML Model (or not of their wire "
                "type): another protobuf loader (ONNX) may read this file as its own",
                where=where,
                fields=foreign[:16],
            )
            self.ctx.partial("Core ML model carries fields of another protobuf schema")
        for f, v in len_fields(buf):
            if f == 2:
                for _ in iter_fields(v):
                    pass
            elif f in PIPELINE_TYPES:
                for f2, v2 in len_fields(v):
                    if f2 == 1:
                        self.pipeline(v2, where, depth + 1)
            elif f == PIPELINE:
                self.pipeline(v, where, depth + 1)
            elif f in NEURAL_NETWORKS:
                self.network(v, where, depth + 1)
            elif f == CUSTOM_MODEL:
                cls = _string_field(v, 10)
                self.report(
                    "COREML-CUSTOM-LAYER",
                    f"{where} is a CustomModel implemented by native class {cls!r}",
                    where=where,
                    class_name=cls,
                )
            elif f == LINKED_MODEL:
                self.report(
                    "COREML-LINKED-MODEL",
                    f"{where} is a LinkedModel that loads another compiled model file",
                    where=where,
                    strings=_strings(v)[:4],
                )
            elif f == SERIALIZED_MODEL:
                self.report(
                    "COREML-SERIALIZED-MODEL",
                    f"{where} is an opaque SerializedModel ({len(v)} bytes)",
                    where=where,
                )
                self.ctx.partial("Core ML SerializedModel bytes not judged")
            else:
                for _ in iter_fields(v):  # any other model type: a well-formed message
                    pass

    def pipeline(self, buf: memoryview, where: str, depth: int) -> None:
        i = 0
        for f, wt, v in iter_fields(buf):
            if f == 1 and wt == LEN:
                self.model(v, f"{where}/pipeline[{i}]", depth + 1)  # type: ignore[arg-type]
                i += 1

    def network(self, buf: memoryview, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep
        for f, wt, v in iter_fields(buf):
            if f == 1 and wt == LEN:
                self.layer(v, where, depth)  # type: ignore[arg-type]

    def layer(self, buf: memoryview, where: str, depth: int) -> None:
        name = ""
        subnets: list[tuple[str, memoryview]] = []
        for f, wt, v in iter_fields(buf):
            if wt != LEN or not isinstance(v, memoryview):
                continue
            if f == 1:
                name = text(v, 256)
            elif f == LAYER_CUSTOM:
                cls = _string_field(v, 10)
                self.report(
                    "COREML-CUSTOM-LAYER",
                    f"layer {name!r} in {where} is a custom layer implemented by native class {cls!r}",
                    where=where,
                    layer=name[:200],
                    class_name=cls,
                )
            elif f == LAYER_BRANCH:
                subnets += [
                    (f"branch {name}", v2)
                    for f2, wt2, v2 in iter_fields(v)
                    if f2 in (1, 2) and isinstance(v2, memoryview)
                ]
            elif f == LAYER_LOOP:
                subnets += [
                    (f"loop {name}", v2)
                    for f2, wt2, v2 in iter_fields(v)
                    if f2 in (3, 4) and isinstance(v2, memoryview)
                ]
        for label, net in subnets:
            self.network(net, f"{where}/{label[:100]}", depth + 1)


def _string_field(buf: memoryview, field: int) -> str | None:
    for f, wt, v in iter_fields(buf):
        if f == field and wt == LEN:
            return text(v, 256)
    return None


def _strings(buf: memoryview) -> list[str]:
    out = []
    for _f, wt, v in iter_fields(buf):
        if wt == LEN:
            out.append(text(v, 256))
    return out


def _inspect_model(reader: Reader, ctx: InspectContext) -> None:
    cap = min(ctx.limits.max_protobuf_bytes, ctx.limits.max_member_in_memory)
    if reader.size > cap:
        ctx.limit_hit(
            "max_protobuf_bytes", f"Core ML model of {reader.size} bytes exceeds the {cap}-byte in-memory cap"
        )
        return
    data = memoryview(reader.read(0, reader.size))
    try:
        _Walk(ctx).model(data, "model", 0)
    except WireError as exc:
        ctx.add("COREML-INVALID", f"Core ML protobuf is malformed: {exc}")
        ctx.partial("Core ML model malformed")
    except _TooDeep:
        ctx.add("COREML-INVALID", f"pipelines or subnetworks nest deeper than {MAX_DEPTH} levels")
        ctx.partial("Core ML nesting limit")


# ---------------------------------------------------------------------------- weight.bin (MIL blob storage)


def _sniff_weights(head: bytes, reader: Reader) -> bool:
    if reader.size < 128 or len(head) < 68:
        return False
    count, version = struct.unpack_from("<II", head, 0)
    return (
        version == BLOB_VERSION
        and count >= 1
        and not any(head[8:64])
        and struct.unpack_from("<I", head, 64)[0] == BLOB_SENTINEL
    )


def _align(n: int) -> int:
    return (n + 63) & ~63


def _inspect_weights(reader: Reader, ctx: InspectContext) -> None:
    size = reader.size
    (count,) = struct.unpack("<I", reader.read(0, 4))

    def bad(message: str, offset: int, severity: Severity | None = None) -> None:
        ctx.add(
            "COREML-WEIGHTS-INVALID", message, offset=offset, severity=severity, evidence={"blobs": count}
        )

    if count > min(MAX_BLOBS, (size - 64) // 64):
        bad(f"storage header declares {count} blobs; the file has room for at most {(size - 64) // 64}", 0)
        ctx.partial("Core ML weight blob count implausible")
        return
    pos = 64
    for i in range(count):
        if i % 4096 == 0 and ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out in the Core ML weight file")
            return
        meta = reader.read(pos, 64)
        if len(meta) < 64:
            bad(f"blob {i} header at byte {pos} is cut by the end of the file", pos)
            ctx.partial("Core ML weight file truncated")
            return
        sentinel, _dtype, nbytes, offset = struct.unpack_from("<IIQQ", meta, 0)
        if sentinel != BLOB_SENTINEL:
            bad(f"blob {i} header at byte {pos} has sentinel {sentinel:#x}, not {BLOB_SENTINEL:#x}", pos)
            ctx.partial("Core ML weight file malformed")
            return
        if offset < pos + 64 or offset + nbytes > size:
            bad(
                f"blob {i} data [{offset}, {offset + nbytes}) lies outside the file ({size} bytes) or before its header",
                pos,
            )
            ctx.partial("Core ML weight file malformed")
            return
        pos = _align(offset + nbytes)
    if size > pos:
        bad(f"{size - pos} bytes follow the last of {count} blobs", pos, severity=Severity.MEDIUM)


COREML = FormatHandler("coreml", _sniff_model, _inspect_model, family="coreml", claims=(".mlmodel",))
COREML_WEIGHTS = FormatHandler(
    "coreml-weights", _sniff_weights, _inspect_weights, family="coreml", claims=(".bin",)
)
