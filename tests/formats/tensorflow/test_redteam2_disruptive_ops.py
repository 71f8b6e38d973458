"""Red-team round 2 (non-pickle formats): TensorFlow ops that end or stall the process, programs held in attrs.

``signatures/tensorflow_ops.txt`` is TensorFlow's whole op registry, not a list of audited ops, so registered
ops whose effect is not compute were allowed. Samples were written by tensorflow 2.21 (``tf.saved_model.save``)
and each was run with ``tf.saved_model.load`` + the serving signature in a throwaway venv:

- ``abort_init_savedmodel``: Abort(exit_without_error=True) in a TrackableResource initializer; the process
  exits with status 0 inside ``tf.saved_model.load``.
- ``collective_savedmodel`` (CollectiveReduceV2 group_size=2) and ``recv_savedmodel`` (Recv): the call never
  returns.
- ``decodeproto_savedmodel``: DecodeProtoV2 with descriptor_source="/etc/passwd" opens and parses that file.

The op list held only ops with a Python wrapper (1,565 of the 1,910 TF 2.21 registers); the others were
"unknown", a warning, yet they run. TF1 SavedModels (``tf.compat.v1.saved_model.Builder``, loaded with
``tf.compat.v1.saved_model.loader.load`` + ``Session.run`` of the signature): ``tf1_dump_tensor_savedmodel``
(DumpTensor wrote <log_dir_path>/<file_name>), ``tf1_skipgram_savedmodel`` (Skipgram read /etc/passwd),
``tf1_sleep_identity_savedmodel`` (SleepIdentityOp stalled the run). An op outside the audited lists now blocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.gen.formats_keras_tf_hf import _function, _node, _saved_model
from scanner.findings import Severity
from tests.harness import findings, inspect_bytes, path_verdict

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("abort_init_savedmodel", "TF-DISRUPTIVE-OP"),
        ("collective_savedmodel", "TF-DISRUPTIVE-OP"),
        ("recv_savedmodel", "TF-DISRUPTIVE-OP"),
        ("decodeproto_savedmodel", "TF-FILE-OP"),
        ("tf1_dump_tensor_savedmodel", "TF-FILE-OP"),
        ("tf1_skipgram_savedmodel", "TF-FILE-OP"),
        ("tf1_sleep_identity_savedmodel", "TF-DISRUPTIVE-OP"),
    ],
)
def test_real_savedmodels_block(name: str, rule: str) -> None:
    decision, by_rule = path_verdict(SAMPLES / name)
    assert decision == "block"
    assert any(f.severity >= Severity.HIGH for f in by_rule[rule])


def _fn_model(*nodes: bytes, top: tuple[bytes, ...] = ()) -> bytes:
    return _saved_model(list(top), [_function("__inference_f_99", list(nodes))])


@pytest.mark.parametrize(
    ("node", "rule"),
    [
        (_node("a", "Abort"), "TF-DISRUPTIVE-OP"),
        (_node("r", "_HostRecv"), "TF-DISRUPTIVE-OP"),
        (_node("r", "_Recv"), "TF-DISRUPTIVE-OP"),
        (_node("c", "CollectiveGatherV2"), "TF-DISRUPTIVE-OP"),
        (_node("n", "NcclAllReduce"), "TF-DISRUPTIVE-OP"),
        (_node("i", "InfeedDequeueTuple"), "TF-DISRUPTIVE-OP"),
        (_node("s", "SleepDataset"), "TF-DISRUPTIVE-OP"),
        (_node("m", "MlirPassthroughOp", s_attrs={"mlir_module": "func.func @main() {}"}), "TF-HIDDEN-GRAPH"),
        (_node("m", "XlaCallModule"), "TF-HIDDEN-GRAPH"),
        (_node("m", "XlaCustomCallV2", s_attrs={"call_target_name": "system"}), "TF-HIDDEN-GRAPH"),
        (_node("p", "DecodeProtoV2", s_attrs={"descriptor_source": "/etc/passwd"}), "TF-FILE-OP"),
        (_node("p", "EncodeProto", s_attrs={"descriptor_source": "file:///etc/passwd"}), "TF-FILE-OP"),
        (
            _node("c", "Copy", s_attrs={"debug_ops_spec": "DebugIdentity;grpc://10.0.0.1:6064;0"}),
            "TF-FILE-OP",
        ),
        (_node("rc", "RemoteCall"), "TF-NETWORK-OP"),
        (_node("d", "DumpTensor", s_attrs={"log_dir_path": "/root/.ssh"}), "TF-FILE-OP"),
        (_node("s", "Skipgram", s_attrs={"filename": "/etc/shadow"}), "TF-FILE-OP"),
        (_node("s", "SleepOp"), "TF-DISRUPTIVE-OP"),
        (_node("h", "XlaHostCompute"), "TF-DISRUPTIVE-OP"),
    ],
)
@pytest.mark.parametrize("where", ["function", "graph"])
def test_registered_but_disruptive_ops_block(node: bytes, rule: str, where: str) -> None:
    data = _fn_model(node) if where == "function" else _saved_model([node], [])
    fr = inspect_bytes(data, "saved_model.pb")
    assert any(f.severity >= Severity.HIGH for f in findings(fr, rule)), [f.rule_id for f in fr.findings]


def test_queue_reads_warn() -> None:
    fr = inspect_bytes(_fn_model(_node("q", "QueueDequeueV2")), "saved_model.pb")
    assert [f.severity for f in findings(fr, "TF-DISRUPTIVE-OP")] == [Severity.MEDIUM]


@pytest.mark.parametrize("source", ["local://", "bytes://\x0a\x00"])
def test_proto_ops_with_the_linked_pool_or_inline_bytes_pass(source: str) -> None:
    fr = inspect_bytes(
        _fn_model(_node("p", "DecodeProtoV2", s_attrs={"descriptor_source": source})), "saved_model.pb"
    )
    assert not [f for f in fr.findings if f.severity >= Severity.MEDIUM]


def test_pbtxt_savedmodel_judged_the_same() -> None:
    text = b"""saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" tensorflow_version: "2.21.0" }
  graph_def {
    node { name: "a" op: "Ab" 'ort' attr { key: "exit_without_error" value { b: true } } }
  }
}
"""
    fr = inspect_bytes(text, "saved_model.pbtxt")
    assert any(f.severity >= Severity.HIGH for f in findings(fr, "TF-DISRUPTIVE-OP")), fr.format


@pytest.mark.parametrize(
    "op", ["ZeroOutCustom", "IO>KafkaReadableInit", "Addons>Foo", "SimpleMLLoadModelFromPath"]
)
def test_ops_outside_the_audited_lists_block(op: str) -> None:
    fr = inspect_bytes(_fn_model(_node("u", op)), "saved_model.pb")
    assert [f.severity for f in findings(fr, "TF-UNKNOWN-OP")] == [Severity.HIGH]


@pytest.mark.parametrize(
    "op", ["_MklNativeConv2D", "RiscAdd", "QuantizedConcatV2", "WordpieceTokenizeWithOffsets"]
)
def test_measured_compute_and_tensorflow_text_ops_pass(op: str) -> None:
    fr = inspect_bytes(_fn_model(_node("k", op)), "saved_model.pb")
    assert not [f for f in fr.findings if f.severity >= Severity.MEDIUM], [f.message for f in fr.findings]


def test_real_tensorflow_text_savedmodel_allows() -> None:
    """tensorflow-text 2.21.1 BertTokenizer / WhitespaceTokenizer / FastWordpieceTokenizer / normalize_utf8
    under tf.saved_model.save (loads and runs in TF 2.21 with tensorflow_text imported)."""
    decision, by_rule = path_verdict(SAMPLES / "tf_text_tokenizers_savedmodel")
    assert decision == "allow", {r: [f.message for f in fs] for r, fs in by_rule.items()}
