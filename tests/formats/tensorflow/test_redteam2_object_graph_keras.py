"""Red-team: Keras layer configs inside saved_model.pb (SavedModels without keras_metadata.pb).

tf.keras reads each Keras object's config from keras_metadata.pb, and when that file is absent (models
saved before TF 2.5, or a keras_metadata.pb simply deleted) from the deprecated
``SavedUserObject.metadata`` of the object graph in saved_model.pb. A Lambda with marshalled bytecode
there was never analyzed.
"""

from __future__ import annotations

import base64
import json
import marshal

from fixtures.gen.formats_keras_tf_hf import _len, _saved_model, _vint
from scanner.findings import Severity
from scanner.formats.parsers.protobuf_wire import iter_fields
from tests.harness import inspect_bytes, rule_ids


def _lambda_metadata() -> str:
    code = base64.b64encode(marshal.dumps(compile("lambda x: x", "<l>", "eval"))).decode()
    cfg = {"name": "l", "function": [code, None, None], "function_type": "lambda"}
    return json.dumps({"class_name": "Lambda", "name": "l", "config": cfg})


def _with_object_graph(objects: list[tuple[str, str]]) -> bytes:
    nodes = b"".join(
        _len(1, _len(4, _len(1, ident) + _len(2, _vint(1, 1)) + _len(3, meta))) for ident, meta in objects
    )
    base = _saved_model([], [])
    # schema version, then the one meta_graphs record: add the object graph (MetaGraphDef field 7) to it
    assert base[:3] == b"\x08\x01\x12"
    (meta_graph,) = [bytes(v) for f, _wt, v in iter_fields(base) if f == 2]
    return _vint(1, 1) + _len(2, meta_graph + _len(7, nodes))


def test_lambda_in_object_graph_metadata_blocks() -> None:
    fr = inspect_bytes(_with_object_graph([("_tf_keras_layer", _lambda_metadata())]), "saved_model.pb")
    assert fr.format == "tf-savedmodel"
    assert "KERAS-LAMBDA-CODE" in rule_ids(fr)


def test_non_keras_user_objects_are_not_parsed_as_configs() -> None:
    fr = inspect_bytes(_with_object_graph([("trackable_dict_wrapper", "not json")]), "saved_model.pb")
    assert all(f.severity is Severity.INFO for f in fr.findings), [f.message for f in fr.findings]


def test_benign_keras_object_metadata_stays_clean() -> None:
    meta = json.dumps({"class_name": "Dense", "name": "d", "config": {"units": 4, "activation": "relu"}})
    fr = inspect_bytes(_with_object_graph([("_tf_keras_layer", meta)]), "saved_model.pb")
    assert all(f.severity is Severity.INFO for f in fr.findings), [f.message for f in fr.findings]
