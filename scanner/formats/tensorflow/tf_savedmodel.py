"""TensorFlow SavedModel ``saved_model.pb`` and Keras-2 ``keras_metadata.pb``, parsed without TensorFlow.

A SavedModel runs its graph: every node of every MetaGraphDef and every node of
every function in the graph library (tf.function bodies live there) is
checked. File-system ops, host-Python callbacks, network ops, ops outside the
standard registry and remote devices are reported. The standard saver's
checkpoint ops (SaveV2/RestoreV2/MergeV2Checkpoints, present in every
SavedModel) are info when they sit only in the saver functions the SaverDef
names; the same ops anywhere else are high. keras_metadata.pb carries Keras
layer configs as JSON and gets the Keras config analysis.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field

from ...findings import Coverage, Severity
from ...io.reader import Reader
from ...resources import signatures_dir
from ..interface import FormatHandler, InspectContext
from ..keras.keras_h5 import analyze_config_text
from ..parsers.protobuf_wire import (
    LEN,
    VARINT,
    WireError,
    iter_fields,
    len_fields,
    read_varint,
    scan_top_level,
    text,
)

PYFUNC_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
NETWORK_OPS = {
    "RpcClient",
    "RpcServer",
    "RpcCall",
    "RpcServerStart",
    "RpcServerRegister",
    "RpcCheckStatus",
    "RpcGetValue",
    "DeleteRpcFutureResource",
    # tf.data service: the dataset is read from / registered with a dispatcher at an address given as input
    "DataServiceDataset",
    "DataServiceDatasetV2",
    "DataServiceDatasetV3",
    "DataServiceDatasetV4",
    "RegisterDataset",
    "RegisterDatasetV2",
    # runs a library function on a device named by a runtime string tensor (a remote task's address)
    "RemoteCall",
}
# ops that build and run a graph held as data (a string tensor: a Const, a variable restored from the
# checkpoint, an input): its nodes are not in any GraphDef or function library this scan can read
HIDDEN_GRAPH_OPS = {
    "DatasetFromGraph",
    "ExperimentalDatasetFromGraph",
    # a program held in an attr (MLIR text, serialized StableHLO) or a native XLA call target: compiled
    # and run by the runtime, never a node this scan reads
    "MlirPassthroughOp",
    "XlaCallModule",
    "XlaCustomCall",
    "XlaCustomCallV2",
    "_TPUCompileMlir",
    "TPUCompile",
}
# ops that end the process or wait forever for a peer, device or feed a loaded model never has. Abort ends
# the process (exit_without_error=True exits 0 from inside tf.saved_model.load when it sits in a resource
# initializer); Recv and collectives block the call for ever (both measured with TF 2.21). Every one of them
# is in TensorFlow's op registry, so the registry list cannot tell them from compute.
DISRUPTIVE_OPS = {
    "Abort",
    "Send",
    "Recv",
    "_Send",
    "_Recv",
    "_HostSend",
    "_HostRecv",
    "XlaSend",
    "XlaRecv",
    "CollectiveAllToAllV2",
    "CollectiveAllToAllV3",
    "CollectiveAssignGroupV2",
    "CollectiveBcastRecv",
    "CollectiveBcastRecvV2",
    "CollectiveBcastSend",
    "CollectiveBcastSendV2",
    "CollectiveGather",
    "CollectiveGatherV2",
    "CollectiveInitializeCommunicator",
    "CollectivePermute",
    "CollectiveReduce",
    "CollectiveReduceScatterV2",
    "CollectiveReduceV2",
    "CollectiveReduceV3",
    "NcclAllReduce",
    "NcclBroadcast",
    "NcclReduce",
    "InfeedDequeue",
    "InfeedDequeueTuple",
    "OutfeedDequeue",
    "OutfeedDequeueTuple",
    "OutfeedDequeueTupleV2",
    "OutfeedDequeueV2",
    "RecvTPUEmbeddingActivations",
    "ConfigureDistributedTPU",
    "ConfigureAndInitializeGlobalTPU",
    "ShutdownDistributedTPU",
    "_ConfigureDistributedTPU",
    "_WaitForDistributedTPU",
    "_InitializeHostForDistributedTPU",
    "_DisconnectHostFromDistributedTPUSystem",
    "_ShutdownDistributedTPU",
    "SleepDataset",
    "ExperimentalSleepDataset",
    # registered kernels with no Python wrapper (TF 2.21 TF_GetAllOpList): SleepIdentityOp stalled a TF1
    # SavedModel's signature; the rest wait on hosts, TPUs or NCCL peers
    "SleepOp",
    "SleepIdentityOp",
    "XlaHostCompute",
    "_XlaHostComputeMlir",
    "XlaSendToHost",
    "XlaRecvFromHost",
    "_XlaRecvAtHost",
    "_XlaRecvAtHostV2",
    "_XlaSendFromHost",
    "_XlaSendFromHostV2",
    "_NcclBroadcastRecv",
    "_NcclBroadcastSend",
    "_NcclReduceRecv",
    "_NcclReduceSend",
    "DTensorAllGather",
    "DTensorAllReduce",
    "DTensorAllScatter",
    "DTensorAllToAll",
    "DTensorReduceScatter",
    "TPUExecute",
    "TPUExecuteAndUpdateVariables",
    "ConfigureTPUEmbeddingHost",
    "ConnectTPUEmbeddingHosts",
    "XlaRecvTPUEmbeddingActivations",
    "XlaRecvTPUEmbeddingActivationsV2",
    "XlaSendTPUEmbeddingGradients",
    "XlaSendTPUEmbeddingGradientsV2",
}
# TF1 queue/barrier/staging reads block on an empty container; real TF1 graphs fill them from the same graph,
# so these warn
BLOCKING_READ_OPS = {
    "QueueDequeue",
    "QueueDequeueV2",
    "QueueDequeueMany",
    "QueueDequeueManyV2",
    "QueueDequeueUpTo",
    "QueueDequeueUpToV2",
    "BarrierTakeMany",
    "Unstage",
    "MapUnstage",
    "MapUnstageNoKey",
    "OrderedMapUnstage",
    "OrderedMapUnstageNoKey",
    "AccumulatorTakeGradient",
    "ResourceAccumulatorTakeGradient",
    "SparseAccumulatorTakeGradient",
}
# descriptor_source: "local://" (the linked-in pool, the default) or "bytes://<serialized set>"; anything
# else is a host path the kernel opens and parses (TF 2.21 read /etc/passwd from a SavedModel signature)
PROTO_OPS = {"DecodeProtoV2", "EncodeProto"}
SAVER_OPS = {
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "DTensorRestoreV2",
}
FILE_OPS = SAVER_OPS | {
    "ReadFile",
    "WriteFile",
    "MatchingFiles",
    "MatchingFilesDataset",
    "ExperimentalMatchingFilesDataset",
    "ImmutableConst",
    "WholeFileReader",
    "WholeFileReaderV2",
    "TextLineReader",
    "TextLineReaderV2",
    "TFRecordReader",
    "TFRecordReaderV2",
    "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2",
    "LMDBReader",
    "TextLineDataset",
    "TFRecordDataset",
    "TFRecordDatasetV2",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "CSVDataset",
    "CSVDatasetV2",
    "ExperimentalCSVDataset",
    "LMDBDataset",
    "ExperimentalLMDBDataset",
    "SqlDataset",
    "ExperimentalSqlDataset",
    "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord",
    "SaveDataset",
    "SaveDatasetV2",
    "LoadDataset",
    "SnapshotDataset",
    "SnapshotDatasetV2",
    "SnapshotDatasetReader",
    "SnapshotChunkDataset",
    "ListSnapshotChunksDataset",
    "RecordInput",  # reads every TFRecord file its file_pattern attr globs
    "SnapshotNestedDatasetReader",
    "DistributedSave",
    "CreateSummaryFileWriter",
    "CreateSummaryDbWriter",
    "WriteSummary",
    "WriteScalarSummary",
    "WriteHistogramSummary",
    "WriteImageSummary",
    "WriteAudioSummary",
    "WriteGraphSummary",
    "WriteRawProtoSummary",
    "ImportEvent",
    "FlushSummaryWriter",
    "CloseSummaryWriter",
    "SummaryWriter",
    "StatsAggregatorSetSummaryWriter",
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "DebugNanCount",
    "DebugNumericSummary",
    "DebugNumericSummaryV2",
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "GenerateVocabRemapping",
    "LoadAndRemapMatrix",
    "FileSystemSetConfiguration",
    # registered kernels with no Python wrapper, measured with TF 2.21: DumpTensor wrote <log_dir_path>/
    # <file_name> from a TF1 SavedModel's signature, Skipgram opened and read its filename attr (/etc/passwd)
    "DumpTensor",
    "Skipgram",
    "CalibrationStatisticsSaver",
}
# lookup-table initializers reading a vocabulary file named by their input 1; info when that file is one of
# the SavedModel's own assets (tf.lookup / TextVectorization / tf.Transform vocabularies), high otherwise
TEXT_TABLE_OPS = {"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"}
_UNSAFE_ASSET = re.compile(r"(^|[/\\])\.\.([/\\]|$)|^[/\\~]|^[A-Za-z]:|://|\x00")
# ops the standard saver graph also uses around the checkpoint ops
_SAVER_FN = re.compile(r"^__inference__traced_(?:save|restore)_\d+$")
_SAVER_SCOPE = re.compile(r"^save(?:_\d+)?/")
_REMOTE_JOB = re.compile(r"/job:([^/]+)")
MAX_FINDINGS_PER_OP = 1


# audited op lists: TensorFlow's own compute ops, and tensorflow-text's tokenizer kernels (TF Hub text models)
OP_LISTS = ("tensorflow_ops.txt", "tensorflow_text_ops.txt")


@functools.lru_cache(maxsize=1)
def known_ops() -> frozenset[str]:
    ops: set[str] = set()
    for name in OP_LISTS:
        try:
            lines = (signatures_dir() / name).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        ops |= {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}
    return frozenset(ops)


@dataclass
class Node:
    name: str
    op: str
    device: str
    where: str  # "graph" or the function name
    funcs: list[str] = field(default_factory=list)  # functions referenced from attrs
    strings: dict[str, list[str]] = field(default_factory=dict)  # selected string attrs
    inputs: list[str] = field(default_factory=list)  # data inputs, kept for TEXT_TABLE_OPS only


_STRING_ATTRS = {
    "output_stream",
    "debug_urls",
    "memory_region_name",
    "filename",
    "file_pattern",
    "descriptor_source",
    "debug_ops_spec",
}


def _parse_attr_value(v: memoryview, key: str, node: Node) -> None:
    for f, val in len_fields(v):
        if f == 10:  # func: NameAttrList
            for f2, v2 in len_fields(val):
                if f2 == 1:
                    node.funcs.append(text(v2, 512))
        elif f == 2 and key in _STRING_ATTRS:
            node.strings.setdefault(key, []).append(text(val, 512))
        elif f == 1:  # list: ListValue (func=9, s=2)
            for f2, v2 in len_fields(val):
                if f2 == 9:
                    for f3, v3 in len_fields(v2):
                        if f3 == 1:
                            node.funcs.append(text(v3, 512))
                elif f2 == 2 and key in _STRING_ATTRS:
                    node.strings.setdefault(key, []).append(text(v2, 512))


def parse_node(buf: memoryview, where: str) -> Node:
    node = Node("", "", "", where)
    inputs: list[str] = []
    for f, v in len_fields(buf):
        if f == 1:
            node.name = text(v, 1024)
        elif f == 2:
            node.op = text(v, 1024)
        elif f == 3 and len(inputs) < 8:
            inputs.append(text(v, 1024))
        elif f == 4:
            node.device = text(v, 1024)
        elif f == 5:
            key = ""
            value: memoryview | None = None
            for f2, v2 in len_fields(v):
                if f2 == 1:
                    key = text(v2, 256)
                elif f2 == 2:
                    value = v2
            if value is not None:
                _parse_attr_value(value, key, node)
    if node.op in TEXT_TABLE_OPS:
        node.inputs = inputs
    return node


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    saver_nodes: set[str] = field(default_factory=set)  # top-level node names the SaverDef names
    stripped_ops: set[str] = field(default_factory=set)
    tf_version: str | None = None
    # (identifier, metadata JSON) of Keras objects in the object graph: what tf.keras reads when a
    # SavedModel has no keras_metadata.pb (models saved before TF 2.5 keep their layer configs here)
    keras_objects: list[tuple[str, str]] = field(default_factory=list)
    # what binds a vocabulary file to a table initializer: each library function's argument names, the
    # object graph's node kinds (SavedObject oneof field number) and each concrete function's bound inputs
    # (object-graph node ids of its captures), and the AssetFileDefs (tensor name, filename)
    fn_args: dict[str, list[str]] = field(default_factory=dict)
    object_kinds: list[int] = field(default_factory=list)
    bound_inputs: dict[str, list[int]] = field(default_factory=dict)
    assets: list[tuple[str, str]] = field(default_factory=list)


class _Budget:
    def __init__(self, max_nodes: int) -> None:
        self.left = max_nodes

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise OverflowError("node limit")


def _parse_graph_def(buf: memoryview, g: Graph, budget: _Budget) -> None:
    for f, v in len_fields(buf):
        if f == 1:
            budget.take()
            g.nodes.append(parse_node(v, "graph"))
        elif f == 2:  # FunctionDefLibrary
            for f2, v2 in len_fields(v):
                if f2 == 1:
                    _parse_function(v2, g, budget)


def _parse_function(buf: memoryview, g: Graph, budget: _Budget) -> None:
    name = "?"
    bodies: list[memoryview] = []
    args: list[str] = []
    for f, v in len_fields(buf):
        if f == 1:  # OpDef signature: name (1), input_arg (2: ArgDef{name=1})
            for f2, v2 in len_fields(v):
                if f2 == 1:
                    name = text(v2, 1024)
                elif f2 == 2:
                    args.append(next((text(v3, 1024) for f3, v3 in len_fields(v2) if f3 == 1), ""))
        elif f == 3:
            bodies.append(v)
    g.functions.add(name)
    g.fn_args[name] = args
    for b in bodies:
        budget.take()
        g.nodes.append(parse_node(b, name))


_OBJECT_KINDS = {4, 5, 6, 7, 8, 9, 10, 12}  # SavedObject.kind oneof: user_object .. captured_tensor
_ASSET_KIND = 5


def _concrete_function(buf: memoryview, g: Graph) -> None:
    """concrete_functions map entry {key=1: name, value=2: SavedConcreteFunction{bound_inputs=2}}."""
    name, bound = "", []
    for f, v in len_fields(buf):
        if f == 1:
            name = text(v, 1024)
        elif f == 2:
            for f2, wt2, v2 in iter_fields(v):
                if f2 != 2:
                    continue
                if wt2 == VARINT and isinstance(v2, int):
                    bound.append(v2)
                elif isinstance(v2, memoryview):  # packed
                    pos = 0
                    while pos < len(v2) and len(bound) < 4096:
                        val, pos = read_varint(v2, pos)
                        bound.append(val)
    g.bound_inputs[name] = bound


def _parse_object_graph(buf: memoryview, g: Graph, budget: _Budget) -> None:
    """SavedObjectGraph.nodes (1) -> SavedObject.user_object (4) -> SavedUserObject{identifier=1, metadata=3};
    the kind of every node and the concrete functions' bound inputs (2)."""
    for f, v in len_fields(buf):
        if f == 2:
            _concrete_function(v, g)
            continue
        if f != 1:
            continue
        budget.take()
        kinds = [f2 for f2, _v2 in len_fields(v) if f2 in _OBJECT_KINDS]
        g.object_kinds.append(kinds[-1] if kinds else 0)
        for f2, v2 in len_fields(v):
            if f2 != 4:
                continue
            ident, meta = "", ""
            for f3, v3 in len_fields(v2):
                if f3 == 1:
                    ident = text(v3, 256)
                elif f3 == 3:
                    meta = bytes(v3).decode("utf-8", "replace")
            if ident.startswith("_tf_keras") and meta.strip():
                g.keras_objects.append((ident, meta))


def _asset_file_def(buf: memoryview) -> tuple[str, str]:
    """AssetFileDef{tensor_info=1: TensorInfo{name=1}, filename=2} -> (tensor name, filename)."""
    tname, fname = "", ""
    for f, v in len_fields(buf):
        if f == 1:
            tname = next((text(v2, 1024) for f2, v2 in len_fields(v) if f2 == 1), "")
        elif f == 2:
            fname = text(v, 1024)
    return tname, fname


def _asset_collection(entry: memoryview, g: Graph) -> None:
    """collection_def entry {key=1, value=2: CollectionDef{any_list=5: {value=1: Any{type_url=1, value=2}}}}."""
    key, value = "", None
    for f, v in len_fields(entry):
        if f == 1:
            key = text(v, 256)
        elif f == 2:
            value = v
    if key != "saved_model_assets" or value is None:
        return
    for f, v in len_fields(value):
        if f != 5:
            continue
        for f2, v2 in len_fields(v):
            if f2 == 1:
                for f3, v3 in len_fields(v2):
                    if f3 == 2:
                        g.assets.append(_asset_file_def(v3))


def parse_saved_model(data: bytes | memoryview, max_nodes: int) -> tuple[int | None, list[Graph]]:
    schema = None
    graphs: list[Graph] = []
    budget = _Budget(max_nodes)
    for f, wt, v in iter_fields(data):
        if f == 1 and wt == VARINT:
            schema = int(v)  # type: ignore[arg-type]
        elif f == 2 and wt == LEN and isinstance(v, memoryview):
            g = Graph()
            graphs.append(g)
            for f2, v2 in len_fields(v):
                if f2 == 2:
                    _parse_graph_def(v2, g, budget)
                elif f2 == 7:  # SavedObjectGraph
                    _parse_object_graph(v2, g, budget)
                elif f2 == 6:  # AssetFileDef
                    g.assets.append(_asset_file_def(v2))
                elif f2 == 4:  # collection_def map entry; TF1 keeps its AssetFileDefs in "saved_model_assets"
                    _asset_collection(v2, g)
                elif f2 == 3:  # SaverDef
                    for f3, v3 in len_fields(v2):
                        if f3 in (2, 3):
                            g.saver_nodes.add(text(v3, 1024).split(":")[0])
                elif f2 == 1:  # MetaInfoDef
                    for f3, v3 in len_fields(v2):
                        if f3 == 5:
                            g.tf_version = text(v3, 64)
                        elif f3 == 2:  # stripped_op_list: OpList{op=1: OpDef{name=1}}
                            for f4, v4 in len_fields(v3):
                                if f4 == 1:
                                    for f5, v5 in len_fields(v4):
                                        if f5 == 1:
                                            g.stripped_ops.add(text(v5, 1024))
                                            break
    return schema, graphs


def _standard_saver_functions(g: Graph) -> set[str]:
    """Saver functions called only from the SaverDef's nodes (or from each other)."""
    cands = {fn for fn in g.functions if _SAVER_FN.match(fn)}
    saver_top = {
        n.name
        for n in g.nodes
        if n.where == "graph" and (n.name in g.saver_nodes or _SAVER_SCOPE.match(n.name))
    }
    for n in g.nodes:
        for fn in n.funcs + [n.op]:
            if fn in cands and not (n.where in cands or (n.where == "graph" and n.name in saver_top)):
                cands.discard(fn)
    return cands


def _asset_bound(g: Graph, n: Node) -> bool:
    """The table initializer's filename (input 1) is bound to one of the SavedModel's own asset files.

    TF2: the initializer function's argument is a capture whose bound input (SavedConcreteFunction) is a
    SavedAsset node; the loader passes <export dir>/assets/<filename>. TF1: the input is the tensor an
    AssetFileDef names, which the loader feeds with that path. A path from a node (a Const, a variable, a
    string op) or from a caller's argument is not an asset."""
    if len(n.inputs) < 2 or n.inputs[1].startswith("^"):
        return False
    src = n.inputs[1]
    name = src.split(":")[0]
    if n.where == "graph":
        return any(t.split(":")[0] == name for t, _f in g.assets)
    args = g.fn_args.get(n.where, [])
    bound = g.bound_inputs.get(n.where) or []
    if ":" in src or name not in args or not bound:
        return False
    k = args.index(name) - (len(args) - len(bound))
    if not 0 <= k < len(bound):
        return False
    node_id = bound[k]
    return 0 <= node_id < len(g.object_kinds) and g.object_kinds[node_id] == _ASSET_KIND


def _judge_graph(ctx: InspectContext, g: Graph, idx: int, seen: dict[tuple[str, str], int]) -> None:
    known = known_ops()
    saver_fns = _standard_saver_functions(g)

    def report(
        rule: str, key: str, msg: str, node: Node, severity: Severity | None = None, **ev: object
    ) -> None:
        k = (rule, key)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] > MAX_FINDINGS_PER_OP:
            return
        ctx.add(
            rule,
            msg,
            severity=severity,
            evidence={
                "node": node.name[:200],
                "op": node.op[:200],
                "in": node.where[:200],
                "meta_graph": idx,
                **{a: b for a, b in ev.items() if b is not None},
            },
        )

    for tensor, fname in g.assets:
        if _UNSAFE_ASSET.search(fname):
            k = ("TF-FILE-OP", f"asset:{fname}")
            if k not in seen:
                seen[k] = 1
                ctx.add(
                    "TF-FILE-OP",
                    f"asset file {fname[:200]!r} is outside the SavedModel's assets/ folder: the loader joins it"
                    " to assets/ and hands the resulting host path to the graph",
                    evidence={"asset": fname[:300], "tensor": tensor[:200], "meta_graph": idx},
                )
    for n in g.nodes:
        op = n.op
        place = "the graph" if n.where == "graph" else f"function {n.where}"
        if op in TEXT_TABLE_OPS and _asset_bound(g, n):
            report(
                "TF-FILE-OP",
                f"asset-table:{op}",
                f"{op} initializes a lookup table from one of the SavedModel's own asset files",
                n,
                severity=Severity.INFO,
            )
        elif op in PYFUNC_OPS:
            report("TF-PYFUNC", op, f"{op} node {n.name!r} in {place} calls back into host Python", n)
        elif op in HIDDEN_GRAPH_OPS:
            report(
                "TF-HIDDEN-GRAPH",
                op,
                f"{op} node {n.name!r} in {place} runs a serialized graph supplied as data: its ops were not seen",
                n,
            )
        elif op in DISRUPTIVE_OPS or op in BLOCKING_READ_OPS:
            what = "ends the process" if op == "Abort" else "blocks until a peer, device or feed answers"
            report(
                "TF-DISRUPTIVE-OP",
                op,
                f"{op} node {n.name!r} in {place} {what}",
                n,
                severity=Severity.MEDIUM if op in BLOCKING_READ_OPS else None,
            )
        elif op in PROTO_OPS and any(
            s != "local://" and not s.startswith("bytes://") for s in n.strings.get("descriptor_source", [])
        ):
            report(
                "TF-FILE-OP",
                f"proto:{n.where}",
                f"{op} node {n.name!r} in {place} reads a protobuf descriptor set from a host path",
                n,
                source=n.strings["descriptor_source"][0][:200],
            )
        elif op in {"Copy", "CopyHost"} and any(n.strings.get("debug_ops_spec", [])):
            report(
                "TF-FILE-OP",
                f"debugcopy:{n.where}",
                f"{op} node {n.name!r} in {place} sends tensors to debug URLs (file:// or grpc://)",
                n,
                spec=n.strings["debug_ops_spec"][0][:200],
            )
        elif op in NETWORK_OPS:
            report("TF-NETWORK-OP", op, f"{op} node {n.name!r} in {place} opens network connections", n)
        elif op in FILE_OPS:
            standard = op in SAVER_OPS and (
                n.where in saver_fns
                or (n.where == "graph" and (_SAVER_SCOPE.match(n.name) or n.name in g.saver_nodes))
            )
            if standard:
                report(
                    "TF-FILE-OP",
                    f"saver:{op}",
                    f"standard checkpoint saver uses {op}",
                    n,
                    severity=Severity.INFO,
                )
            else:
                report(
                    "TF-FILE-OP",
                    f"{op}:{n.where}",
                    f"{op} node {n.name!r} in {place} touches the file system",
                    n,
                    strings={k: [s[:200] for s in v[:3]] for k, v in n.strings.items()} or None,
                )
        elif op == "PrintV2" and any(
            s.startswith("file://") or "/" in s for s in n.strings.get("output_stream", [])
        ):
            report(
                "TF-FILE-OP",
                f"print:{n.where}",
                f"PrintV2 node {n.name!r} in {place} writes to a file",
                n,
                output=n.strings["output_stream"][0][:200],
            )
        elif op and op not in known and op not in g.functions:
            report(
                "TF-UNKNOWN-OP",
                op,
                f"op type {op!r} (node {n.name!r} in {place}) is not an audited TensorFlow op",
                n,
            )
        m = _REMOTE_JOB.search(n.device)
        if m and m.group(1) != "localhost":
            report(
                "TF-REMOTE-DEVICE",
                f"dev:{m.group(1)}",
                f"node {n.name!r} is placed on remote job {m.group(1)!r}",
                n,
                device=n.device[:200],
            )
    judged = PYFUNC_OPS | NETWORK_OPS | HIDDEN_GRAPH_OPS | FILE_OPS | DISRUPTIVE_OPS | BLOCKING_READ_OPS
    for op in sorted(g.stripped_ops - known - g.functions - judged):
        k = ("TF-UNKNOWN-OP", op)
        if k not in seen:
            seen[k] = 1
            ctx.add(
                "TF-UNKNOWN-OP",
                f"op type {op!r} listed by the meta graph is not an audited TensorFlow op",
                evidence={"op": op[:200], "meta_graph": idx},
            )


def _load(reader: Reader, ctx: InspectContext) -> bytes | None:
    cap = min(ctx.limits.max_protobuf_bytes, ctx.limits.max_member_in_memory)
    if reader.size > cap:
        ctx.limit_hit(
            "max_protobuf_bytes", f"protobuf of {reader.size} bytes exceeds the {cap}-byte in-memory cap"
        )
        return None
    return reader.read(0, reader.size)


def _inspect_saved_model(reader: Reader, ctx: InspectContext) -> None:
    data = _load(reader, ctx)
    if data is None:
        return
    try:
        schema, graphs = parse_saved_model(data, ctx.limits.max_nodes)
    except WireError as exc:
        ctx.add("TF-PROTOBUF-INVALID", f"SavedModel protobuf is malformed: {exc}")
        ctx.partial("SavedModel protobuf malformed")
        return
    except OverflowError:
        ctx.limit_hit(
            "max_nodes", f"SavedModel has more than {ctx.limits.max_nodes} nodes; the rest was not checked"
        )
        return
    if schema != 1:
        ctx.add(
            "TF-PROTOBUF-INVALID", f"unexpected SavedModel schema version {schema}", severity=Severity.MEDIUM
        )
    seen: dict[tuple[str, str], int] = {}
    for i, g in enumerate(graphs):
        _judge_graph(ctx, g, i, seen)
        for ident, meta in g.keras_objects:
            if ctx.state.out_of_time():
                ctx.limit_hit("file_seconds", "time budget ran out in the SavedModel's Keras objects")
                return
            analyze_config_text(ctx, meta, f"saved_model.pb object graph {ident}")
    for (rule, key), n in seen.items():
        if n > MAX_FINDINGS_PER_OP and not key.startswith("saver:"):
            ctx.add(
                rule,
                f"... {rule} {key.split(':')[0]}: {n - MAX_FINDINGS_PER_OP} more node(s) not listed",
                severity=Severity.INFO,
                evidence={"suppressed": n - MAX_FINDINGS_PER_OP},
            )


def _sniff_saved_model(head: bytes, reader: Reader) -> bool:
    """Strict: only a schema version and meta_graphs whose first field is a MetaGraphDef field.

    The schema version may be absent or not 1: protobuf defaults a missing field to 0 and TensorFlow parses
    such a file all the same, so it must not fall through to the lenient text sniffer (the inspector reports
    the unexpected version).
    """
    if head[:1] not in (b"\x08", b"\x12"):
        return False
    try:
        saw_graph = False
        for f, wt, off, n in scan_top_level(reader.read, reader.size, max_fields=10_000):
            if f == 1 and wt == VARINT:
                continue
            if f == 2 and wt == LEN:
                inner = reader.read(off, min(n, 16))
                tag = inner[0] if inner else 0
                if n and (tag & 7 != LEN or not 1 <= tag >> 3 <= 7):
                    return False
                saw_graph = True
            else:
                return False
        return saw_graph
    except WireError:
        return False


# ---------------------------------------------------------------------------- keras_metadata.pb


def _keras_nodes(data: bytes) -> list[tuple[str, str, str]]:
    """(node_path, identifier, metadata JSON) of every SavedObject in a SavedMetadata message."""
    out = []
    for f, wt, v in iter_fields(data):
        if f != 1 or wt != LEN:
            raise WireError(f"unexpected top-level field {f}")
        path = ident = meta = ""
        for f2, wt2, v2 in iter_fields(v):  # type: ignore[arg-type]
            if wt2 != LEN:
                continue
            if f2 == 3:
                path = text(v2, 1024)
            elif f2 == 4:
                ident = text(v2, 256)
            elif f2 == 5:
                meta = bytes(v2).decode("utf-8", "replace")
        out.append((path, ident, meta))
    return out


def _sniff_keras_metadata(head: bytes, reader: Reader) -> bool:
    if head[:1] != b"\x0a":
        return False
    try:
        n, p = _first_len(head)
        first = head[p : p + n] if p + n <= len(head) else reader.read(p, min(n, 1 << 20))
        idents = [text(v) for f, wt, v in iter_fields(first) if f == 4 and wt == LEN]
        if not idents or not idents[0].startswith("_tf_keras"):
            return False
        return all(f == 1 and wt == LEN for f, wt, _o, _n in scan_top_level(reader.read, reader.size))
    except WireError:
        return False


def _first_len(head: bytes) -> tuple[int, int]:
    from ..parsers.protobuf_wire import read_varint

    n, p = read_varint(head, 1)
    return n, p


def _inspect_keras_metadata(reader: Reader, ctx: InspectContext) -> None:
    data = _load(reader, ctx)
    if data is None:
        return
    try:
        nodes = _keras_nodes(data)
    except WireError as exc:
        ctx.add("TF-PROTOBUF-INVALID", f"keras_metadata protobuf is malformed: {exc}")
        ctx.partial("keras_metadata malformed")
        return
    for path, ident, meta in nodes[: ctx.limits.max_nodes]:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out in keras_metadata")
            return
        if meta.strip():
            analyze_config_text(ctx, meta, f"keras_metadata {path or ident}")


TF_SAVEDMODEL = FormatHandler(
    "tf-savedmodel",
    _sniff_saved_model,
    _inspect_saved_model,
    family="tensorflow",
    claims=(".pb",),
    can_carry_code=True,
)
KERAS_METADATA_PB = FormatHandler(
    "keras-metadata-pb",
    _sniff_keras_metadata,
    _inspect_keras_metadata,
    family="tensorflow",
    can_carry_code=True,
)


# ---------------------------------------------------------------------------- SavedModel side files

TABLE_MAGIC = struct.pack("<Q", 0xDB4775248B80FB57)  # LevelDB-format table footer (tensor-bundle index)
_SHARD = re.compile(r"^(.*)\.data-\d{5}-of-\d{5}$")


_UUID = re.compile(rb"^[0-9A-Za-z-]{1,64}$")


def _sniff_fingerprint(head: bytes, reader: Reader) -> bool:
    """fingerprint.pb: FingerprintDef with checksum/hash varints (fields 1-5), a VersionDef (6) and, since
    TensorFlow 2.16, a uuid string (7: decimal digits as TF writes it)."""
    if head[:1] != b"\x08" or reader.size > 512:
        return False
    try:
        fields = list(iter_fields(head))
    except WireError:
        return False
    return len(fields) >= 3 and all(
        (1 <= f <= 5 and wt == VARINT)
        or (f == 6 and wt == LEN)
        or (f == 7 and wt == LEN and _UUID.match(bytes(v)) is not None)  # type: ignore[arg-type]
        for f, wt, v in fields
    )


def _sniff_bundle_index(head: bytes, reader: Reader) -> bool:
    """A tensor-bundle index: a LevelDB table whose first entry, at offset 0, is the header ("" key: shared
    and non-shared key lengths 0, then the BundleHeaderProto), with the table footer's block handles inside
    the file. The magic alone is 8 trailing bytes any pickle can carry (pickle.load stops at STOP and never
    reads them): a pickle cannot start with 0x00, so the header check keeps pickles with the trailer out."""
    if reader.size < 48 or head[:2] != b"\x00\x00" or reader.tail(8) != TABLE_MAGIC:
        return False
    try:
        n, pos = read_varint(head, 2)
        if pos + n > reader.size - 48:
            return False
        if pos + n <= len(head):
            for _f in iter_fields(head[pos : pos + n]):
                pass
        footer = reader.read(reader.size - 48, 40)
        p = 0
        for _ in range(2):  # metaindex and index BlockHandles {offset, size}
            off, p = read_varint(footer, p)
            size, p = read_varint(footer, p)
            if off + size + 5 > reader.size - 48:
                return False
    except WireError:
        return False
    return True


def _inspect_nothing(reader: Reader, ctx: InspectContext) -> None:
    """Hashes and tensor offsets only: nothing in these files executes."""


def check_checkpoint_shards(snapshot, results, rules, limits):  # type: ignore[no-untyped-def]
    """Repository check: raw checkpoint shards next to a recognized index are tensor bytes, not unknown files."""
    for art in snapshot.artifacts:
        m = _SHARD.match(art.path)
        if not m:
            continue
        fr = results.get(art.path)  # only shards' results: a ResultTable loads what is asked for
        if fr is None or fr.format != "unknown":
            continue
        index = results.get(m.group(1) + ".index")
        if index is None or index.format != "tf-checkpoint-index":
            continue
        fr.findings = [f for f in fr.findings if f.rule_id != "FORMAT-UNKNOWN"]
        fr.coverage_notes = [n for n in fr.coverage_notes if n != "unknown format"]
        if not fr.coverage_notes:
            fr.coverage = Coverage.FULL
        fr.format = "tf-checkpoint-data"
        fr.findings.append(
            rules.finding(
                "TF-CHECKPOINT-DATA",
                f"raw tensor shard of {m.group(1)}.index",
                fr.path,
                evidence={"index": m.group(1) + ".index"},
            )
        )
    return []


TF_FINGERPRINT = FormatHandler("tf-fingerprint", _sniff_fingerprint, _inspect_nothing, family="tensorflow")
TF_CHECKPOINT_INDEX = FormatHandler(
    "tf-checkpoint-index", _sniff_bundle_index, _inspect_nothing, family="tensorflow", claims=(".index",)
)
