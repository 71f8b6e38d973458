"""Red-team round 3: SavedModel vocabulary assets, graphs held as data, tf.data service, TF >= 2.16 fingerprints.

Samples (``samples/``) were written by tensorflow-cpu 2.21.0 (``tf.saved_model.save``, keras 3.15.1
``model.export``, tf_keras 2.21 ``model.save``). Every tf.lookup vocabulary table initializes with
InitializeTableFromTextFileV2 from the SavedModel's own asset, and TF >= 2.16 writes a uuid (field 7) into
fingerprint.pb: both made real benign SavedModels block. The asset filename is joined to ``assets/`` by the
loader, so an absolute one reads any host file (``absolute_asset_savedmodel``: TF 2.21 loads /etc/hostname
into the table). ``dataset_from_graph_savedmodel`` keeps a serialized tf.data GraphDef (TextLineDataset of
/etc/hostname) in a variable and runs it with DatasetFromGraph: TF 2.21 returns the file's content.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.gen.formats_keras_tf_hf import _len, _node, _saved_model, _vint
from scanner.findings import Severity
from tests.harness import findings, inspect_bytes, path_verdict, rule_ids

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    "name",
    [
        "asset_vocab_savedmodel",
        "keras3_export_savedmodel",
        "tf_keras_savedmodel",
        "tf1_asset_vocab_savedmodel",  # TF1 Builder: the AssetFileDef is in the saved_model_assets collection
    ],
)
def test_real_benign_savedmodels_allow(name: str) -> None:
    decision, by_rule = path_verdict(SAMPLES / name)
    assert decision == "allow", {r: [f.message for f in fs] for r, fs in by_rule.items()}
    assert "FORMAT-UNKNOWN" not in by_rule


def test_fingerprint_with_uuid_is_recognised() -> None:
    fr = inspect_bytes((SAMPLES / "asset_vocab_savedmodel" / "fingerprint.pb").read_bytes(), "fingerprint.pb")
    assert fr.format == "tf-fingerprint" and not fr.findings


def test_fingerprint_field_7_must_be_a_uuid() -> None:
    fp = _vint(1, 1) + _vint(2, 2) + _vint(3, 3) + _len(6, _vint(1, 1))
    assert inspect_bytes(fp + _len(7, "2030927092477939861624"), "fingerprint.pb").format == "tf-fingerprint"
    assert inspect_bytes(fp + _len(7, b"\x80\x04\x95payload"), "fingerprint.pb").format != "tf-fingerprint"


@pytest.mark.parametrize("name", ["absolute_asset_savedmodel", "tf1_absolute_asset_savedmodel"])
def test_absolute_asset_path_blocks(name: str) -> None:
    """TF 2.21 tf.saved_model.load (TF2) and tf.compat.v1.saved_model.loader.load (TF1, the path from the
    saved_model_assets collection) both initialize the table from /etc/hostname."""
    decision, by_rule = path_verdict(SAMPLES / name)
    assert decision == "block"
    assert any("/etc/hostname" in f.message and f.severity is Severity.HIGH for f in by_rule["TF-FILE-OP"])


def test_dataset_from_graph_blocks() -> None:
    decision, by_rule = path_verdict(SAMPLES / "dataset_from_graph_savedmodel")
    assert decision == "block" and "TF-HIDDEN-GRAPH" in by_rule


# ---------------------------------------------------------------- hand-built shapes of the table initializer


def _fn(name: str, args: list[str], nodes: list[bytes]) -> bytes:
    sig = _len(1, name) + b"".join(_len(2, _len(1, a)) for a in args)
    return _len(1, sig) + b"".join(_len(3, n) for n in nodes)


def _model(
    top: list[bytes],
    fns: list[bytes],
    assets: list[tuple[str, str]],
    kinds: list[int],
    bound: dict[str, list[int]],
) -> bytes:
    graph = b"".join(_len(1, n) for n in top) + _len(2, b"".join(_len(1, f) for f in fns))
    objs = b"".join(_len(1, _len(k, b"")) for k in kinds)
    objs += b"".join(
        _len(2, _len(1, name) + _len(2, _len(2, b"".join(_varint(i) for i in ids))))
        for name, ids in bound.items()
    )
    meta = _len(2, graph) + b"".join(_len(6, _len(1, _len(1, t)) + _len(2, f)) for t, f in assets)
    meta += _len(7, objs)
    return _vint(1, 1) + _len(2, meta)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


INIT = "__inference__initializer_30"
ASSET, RESOURCE, CONSTANT = 5, 10, 9


def _init_fn(filename_input: str) -> bytes:
    return _fn(
        INIT,
        ["asset_filepath", "table_handle"],
        [
            _node("Const", "Const", s_attrs={"value": "/etc/passwd"}),
            _node("init", "InitializeTableFromTextFileV2", ("table_handle", filename_input)),
        ],
    )


def _table_findings(data: bytes) -> list:
    return findings(inspect_bytes(data, "saved_model.pb"), "TF-FILE-OP")


def test_table_from_own_asset_is_info() -> None:
    data = _model(
        [],
        [_init_fn("asset_filepath")],
        [("asset_path:0", "vocab.txt")],
        [4, ASSET, RESOURCE],
        {INIT: [1, 2]},
    )
    fs = _table_findings(data)
    assert fs and all(f.severity is Severity.INFO for f in fs), [f.message for f in fs]


@pytest.mark.parametrize(
    ("filename_input", "kinds", "bound"),
    [
        ("Const:output:0", [4, ASSET, RESOURCE], [1, 2]),  # a path constant in the function
        ("asset_filepath", [4, CONSTANT, RESOURCE], [1, 2]),  # the capture is a constant, not an asset
        ("asset_filepath", [4, ASSET, RESOURCE], []),  # no bound inputs: a call argument
        ("asset_filepath", [4, ASSET, RESOURCE], [7, 2]),  # a node id outside the object graph
    ],
)
def test_table_from_anything_but_an_asset_is_high(
    filename_input: str, kinds: list[int], bound: list[int]
) -> None:
    data = _model([], [_init_fn(filename_input)], [("asset_path:0", "vocab.txt")], kinds, {INIT: bound})
    assert any(f.severity is Severity.HIGH for f in _table_findings(data))


@pytest.mark.parametrize(
    "fname", ["/etc/passwd", "../../etc/passwd", "a/../../x", "C:\\x", "gs://b/v.txt", "~/.ssh/id"]
)
def test_asset_filename_outside_assets_is_high(fname: str) -> None:
    data = _model(
        [], [_init_fn("asset_filepath")], [("asset_path:0", fname)], [4, ASSET, RESOURCE], {INIT: [1, 2]}
    )
    assert any(f.severity is Severity.HIGH and "asset file" in f.message for f in _table_findings(data))


def test_tf1_graph_table_from_asset_tensor_is_info_and_from_const_is_high() -> None:
    ok = _node("init", "InitializeTableFromTextFileV2", ("table", "asset_path"))
    data = _model([_node("asset_path", "Const"), ok], [], [("asset_path:0", "vocab.txt")], [], {})
    assert all(f.severity is Severity.INFO for f in _table_findings(data))
    bad = _node("init", "InitializeTableFromTextFileV2", ("table", "other_const"))
    data = _model([_node("other_const", "Const"), bad], [], [("asset_path:0", "vocab.txt")], [], {})
    assert any(f.severity is Severity.HIGH for f in _table_findings(data))


@pytest.mark.parametrize("op", ["DataServiceDatasetV4", "RegisterDatasetV2"])
def test_tf_data_service_is_network(op: str) -> None:
    assert "TF-NETWORK-OP" in rule_ids(inspect_bytes(_saved_model([_node("d", op)], []), "saved_model.pb"))


@pytest.mark.parametrize("op", ["ListSnapshotChunksDataset", "SnapshotNestedDatasetReader", "RecordInput"])
def test_snapshot_readers_are_file_ops(op: str) -> None:
    fr = inspect_bytes(_saved_model([_node("d", op)], []), "saved_model.pb")
    assert any(f.evidence.get("op") == op and f.severity is Severity.HIGH for f in findings(fr, "TF-FILE-OP"))


def test_dataset_from_graph_in_the_top_graph() -> None:
    fr = inspect_bytes(_saved_model([_node("g", "DatasetFromGraph")], []), "saved_model.pb")
    assert "TF-HIDDEN-GRAPH" in rule_ids(fr) and fr.max_severity is Severity.HIGH


# ---------------------------------------------------------------- tensor-bundle index sniffing


def _index_trailer() -> bytes:
    import struct

    return bytes(40) + struct.pack("<Q", 0xDB4775248B80FB57)


@pytest.mark.parametrize("name", ["model.pkl", "pytorch_model.bin", "variables.index"])
def test_pickle_with_a_table_magic_trailer_is_still_a_pickle(name: str) -> None:
    """pickle.load stops at STOP: 48 trailing bytes ending with the LevelDB magic made the file a
    tf-checkpoint-index (inspected as nothing: allow/warn); python pickle.load of it runs os.system."""
    from tests.harness import evil_pickle

    fr = inspect_bytes(evil_pickle() + _index_trailer(), name)
    assert fr.format == "pickle" and fr.max_severity is Severity.CRITICAL


def test_real_bundle_indexes_are_recognised() -> None:
    for sm in ("asset_vocab_savedmodel", "keras3_export_savedmodel", "tf_keras_savedmodel"):
        data = (SAMPLES / sm / "variables" / "variables.index").read_bytes()
        assert inspect_bytes(data, "variables.index").format == "tf-checkpoint-index", sm


# ---------------------------------------------------------------- TFLite / pickle polyglot


def _tflite_pickle_polyglot(body: bytes) -> bytes:
    """SHORT_BINUNICODE (0x8c) of length 6 swallows the root offset's upper bytes and "TFL3"; the opcode byte
    and the length make the root offset 0x8c + 6 * 256; the real flatbuffer is placed so its root lands there."""
    import struct

    from tests.harness import fixture

    orig = fixture("tensorflow/benign.tflite").read_bytes()
    base = 0x8C + 6 * 256 - struct.unpack("<I", orig[:4])[0]
    head = b"\x8c\x06\x00\x00TFL3" + body
    return head + b"\x00" * (base - len(head)) + orig


def test_tflite_pickle_polyglot_is_analyzed_as_a_pickle() -> None:
    # python pickle.load of these bytes runs posix.system (checked with CPython 3.11 in a throwaway venv)
    body = b"0cposix\nsystem\nX\x04\x00\x00\x00true\x85R."
    for name in ("model.tflite", "model.pkl"):
        fr = inspect_bytes(_tflite_pickle_polyglot(body), name)
        assert fr.format == "tflite"
        assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr) and fr.max_severity is Severity.CRITICAL


def test_real_tflite_start_is_not_a_pickle() -> None:
    from tests.harness import fixture

    fr = inspect_bytes(fixture("tensorflow/benign.tflite").read_bytes(), "m.tflite")
    assert fr.format == "tflite" and not fr.findings
