"""Red-team: a SavedModel in protobuf text format (``saved_model.pbtxt``).

TensorFlow's SavedModel loaders read ``saved_model.pbtxt`` when the folder has no ``saved_model.pb``.
The same PyFunc / file-system ops in text used to be taken for plain text and allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.findings import Severity
from scanner.formats.tensorflow.tf_pbtxt import TextFormatError, parse, tokenize
from tests.harness import inspect_bytes, path_verdict, rule_ids

EVIL = b"""# exported by hand
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" tensorflow_version: "2.15.0" }
  graph_def {
    node { name: "path" op: "Const" attr { key: "dtype" value { type: DT_STRING } }
           attr { key: "value" value { tensor { dtype: DT_STRING tensor_shape {} string_val: "/etc/passwd" } } } }
    node { name: "call" op: "StatefulPartitionedCall" input: "path"
           attr { key: "f" value { func { name: "__inference_serve_12" } } } }
    library {
      function {
        signature { name: "__inference_serve_12" input_arg { name: "p" type: DT_STRING } }
        node_def { name: "cb" op: 'Py' "Func" input: "p" attr { key: "token" value { s: "pyfunc_0" } } }
        node_def { name: "w" op: "\\127riteFile" input: "p" input: "p" }
      }
    }
  }
}
"""


def test_text_saved_model_with_pyfunc_and_write_file_blocks(tmp_path: Path) -> None:
    fr = inspect_bytes(EVIL, "saved_model.pbtxt")
    assert fr.format == "tf-savedmodel-text"
    assert {"TF-PYFUNC", "TF-FILE-OP"} <= rule_ids(fr)
    d = tmp_path / "sm"
    d.mkdir()
    (d / "saved_model.pbtxt").write_bytes(EVIL)
    verdict, _ = path_verdict(d / "saved_model.pbtxt")
    assert verdict == "block"


def test_text_saved_model_found_whatever_its_name() -> None:
    fr = inspect_bytes(EVIL.replace(b"# exported by hand\n", b""), "model.txt")
    assert "TF-PYFUNC" in rule_ids(fr)


def test_benign_text_saved_model_has_no_blocking_finding() -> None:
    benign = b"""saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: ["serve"] }
  graph_def {
    node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
    node { name: "y" op: "Relu" input: "x" }
  }
  signature_def { key: "serving_default" value { method_name: "tensorflow/serving/predict" } }
}
"""
    fr = inspect_bytes(benign, "saved_model.pbtxt")
    assert fr.format == "tf-savedmodel-text"
    assert all(f.severity is not None and f.severity <= Severity.LOW for f in fr.findings), [
        f.message for f in fr.findings
    ]


def test_malformed_text_saved_model_fails_closed() -> None:
    fr = inspect_bytes(
        b"saved_model_schema_version: 1\nmeta_graphs { graph_def { node {", "saved_model.pbtxt"
    )
    assert "TF-PROTOBUF-INVALID" in rule_ids(fr)


@pytest.mark.parametrize(
    "text",
    [b"a: {", b"a: [1 2]", b'a: "\\q"', b"}", b"a: [{b: 1} c]", b"a " * 2],
)
def test_tokenizer_rejects_bad_syntax(text: bytes) -> None:
    with pytest.raises(TextFormatError):
        parse(tokenize(text), 1000)


def test_parser_handles_lists_angles_and_joined_strings() -> None:
    tree = parse(tokenize(b"a: [1, 2] b < c: \"x\" 'y' > d: [{e: 1}, <e: 2>]; f []"), 1000)
    assert tree == [("a", "1"), ("a", "2"), ("b", [("c", "xy")]), ("d", [("e", "1")]), ("d", [("e", "2")])]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = b"saved_model_schema_version: 1 meta_graphs " + b"{ a " * 5000 + b"{" + b"}" * 5001
    fr = inspect_bytes(text, "saved_model.pbtxt")
    assert "TF-PROTOBUF-INVALID" in rule_ids(fr)


@pytest.mark.parametrize("name", ["config.pbtxt", "label_map.pbtxt", "graph.pbtxt"])
def test_other_protobuf_text_files_are_not_named_like_a_saved_model(name: str) -> None:
    # a Triton model folder's config.pbtxt warned on every benign repository (FORMAT-NAME-MISMATCH)
    fr = inspect_bytes(b'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 8\n', name)
    assert "FORMAT-NAME-MISMATCH" not in rule_ids(fr)


def test_a_saved_model_pbtxt_that_is_not_one_is_still_a_mismatch() -> None:
    fr = inspect_bytes(b"\x80\x04K\x01.", "saved_model.pbtxt")
    assert "FORMAT-NAME-MISMATCH" in rule_ids(fr)
