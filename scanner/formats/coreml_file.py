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

import re
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
MIL_PROGRAM = 502
MAX_MIL_DEPTH = 256
MAX_MIL_MESSAGES = 4_000_000
# what an ML program's weight reference may name (coremltools writes '@model_path/weights/weight.bin')
_MIL_BLOB = re.compile(r"@model_path/weights/[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_UNSAFE_PATH = re.compile(r"^[/\\~]|^[A-Za-z]:|://|\x00|\\")
# MIL.proto (coremltools): for each message, the fields that hold a message which can contain a Value
_MIL_LAYOUT: dict[str, dict[int, str]] = {
    "Program": {2: "MapFunction", 4: "MapValue"},
    "MapFunction": {2: "Function"},
    "Function": {1: "NamedValueType", 3: "MapBlock", 4: "MapValue"},
    "MapBlock": {2: "Block"},
    "Block": {1: "NamedValueType", 3: "Operation", 4: "MapValue"},
    "Operation": {2: "MapArgument", 3: "NamedValueType", 4: "Block", 5: "MapValue"},
    "MapArgument": {2: "Argument"},
    "Argument": {1: "Binding"},
    "Binding": {2: "Value"},
    "MapValue": {2: "Value"},
    "NamedValueType": {2: "ValueType"},
    "ValueType": {1: "TensorType", 2: "OneType", 3: "OneType", 4: "TwoTypes", 5: "OneType"},
    "OneType": {1: "ValueType"},  # ListType (2 is a Dimension), TupleType (repeated), StateType
    "TwoTypes": {1: "ValueType", 2: "ValueType"},  # DictionaryType
    "TensorType": {4: "MapValue"},
    "Value": {2: "ValueType", 3: "Immediate", 5: "BlobFile"},
    "Immediate": {2: "ValueList", 3: "ValueList", 4: "DictValue"},  # tuple, list, dictionary
    "ValueList": {1: "Value"},
    "DictValue": {1: "KeyValue"},
    "KeyValue": {1: "Value", 2: "Value"},
}
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

    def report(self, rule: str, message: str, severity: Severity | None = None, **ev: object) -> None:
        key = f"{rule}:{severity}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= MAX_FINDINGS:
            self.ctx.add(
                rule, message, severity=severity, evidence={k: v for k, v in ev.items() if v is not None}
            )

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
                self.linked(v, where)
            elif f == MIL_PROGRAM:
                self.mil_program(v, where)
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

    def linked(self, buf: memoryview, where: str) -> None:
        """LinkedModel {linkedModelFile = 1 {linkedModelFileName = 1, linkedModelSearchPath = 2}}, each a
        StringParameter {defaultValue = 1}. Core ML looks the file name up in each ':'-separated search path,
        relative to the model unless absolute ('' is '.'); '@model_path' is the model's own folder."""
        name = search = ""
        for f, wt, v in iter_fields(buf):
            if f == 1 and wt == LEN and isinstance(v, memoryview):
                for f2, wt2, v2 in iter_fields(v):
                    if wt2 == LEN and isinstance(v2, memoryview) and f2 in (1, 2):
                        value = _string_field(v2, 1, 4096) or ""
                        if f2 == 1:
                            name = value
                        else:
                            search = value
        outside = [p for p in [name, *search.split(":")] if _path_leaves_model(p)]
        if outside or not name:
            self.report(
                "COREML-LINKED-MODEL",
                f"{where} is a LinkedModel whose file name or search path reaches outside the model's folder "
                f"({(outside or [name])[0][:200]!r}): Core ML loads whatever compiled model it finds there",
                where=where,
                file_name=name[:300],
                search_path=search[:300],
                severity=Severity.HIGH,
            )
        else:
            self.report(
                "COREML-LINKED-MODEL",
                f"{where} is a LinkedModel that loads the compiled model {name[:200]!r} next to it",
                where=where,
                file_name=name[:300],
                search_path=search[:300],
            )

    def mil_program(self, buf: memoryview, where: str) -> None:
        """Every Value of an ML program; a BlobFileValue's file name must be one of the package's own weight
        files ('@model_path/weights/<name>', as coremltools writes them)."""
        stack: list[tuple[str, memoryview, int]] = [("Program", buf, 0)]
        seen = 0
        named: set[str] = set()
        while stack:
            kind, b, depth = stack.pop()
            seen += 1
            if depth > MAX_MIL_DEPTH or seen > MAX_MIL_MESSAGES:
                self.report(
                    "COREML-INVALID",
                    f"{where}: ML program nests deeper than {MAX_MIL_DEPTH} messages or holds more than "
                    f"{MAX_MIL_MESSAGES}; not every weight reference was read",
                    where=where,
                )
                self.ctx.partial("Core ML ML program past the walk limit")
                return
            if kind == "BlobFile":
                file_name = _string_field(b, 1, 4096) or ""
                if file_name in named:
                    continue
                named.add(file_name)
                if not _MIL_BLOB.match(file_name) or ".." in file_name.split("/"):
                    self.report(
                        "COREML-LINKED-MODEL",
                        f"{where}: ML program weight reference names {file_name[:200]!r}, not one of the "
                        "package's own files under @model_path/weights/",
                        where=where,
                        file_name=file_name[:300],
                        severity=Severity.HIGH,
                    )
                continue
            children = _MIL_LAYOUT[kind]
            for f, wt, v in iter_fields(b):
                child = children.get(f)
                if child is not None and wt == LEN and isinstance(v, memoryview):
                    stack.append((child, v, depth + 1))

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


def _string_field(buf: memoryview, field: int, limit: int = 256) -> str | None:
    for f, wt, v in iter_fields(buf):
        if f == field and wt == LEN:
            return text(v, limit)  # type: ignore[arg-type]
    return None


def _path_leaves_model(path: str) -> bool:
    """A LinkedModel path that is absolute, climbs out ('..'), or is not a plain relative path."""
    if path.startswith("@model_path"):
        path = path[len("@model_path") :].lstrip("/")
    return bool(_UNSAFE_PATH.search(path)) or ".." in re.split(r"[/\\]", path)


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
