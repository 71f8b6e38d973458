"""Red-team round 9: a TF.js ``model.json`` whose weightsManifest paths leave the model folder.

tensorflowjs 4.22 ``read_weights`` (what ``tfjs.converters.load_keras_model`` and ``keras_tfjs_loader`` use)
opens ``os.path.join(base_path, path)`` for every manifest path: ``../secret.bin`` was read into the Dense
kernel (measured in a throwaway venv), and an absolute path replaces the base; tfjs-node's ``file://`` handler
joins the same way. The scan judged modelTopology as a Keras config but allowed the paths; the JSON handler
(``scanner/formats/data_files.py``) now judges every manifest path as ONNX external-data locations are judged
(TF-JS-WEIGHTS-PATH, high).
"""

from __future__ import annotations

import json

import pytest

from tests.harness import scan_files


def _model_json(paths: list[str]) -> str:
    topo = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 4]}}
            ],
        },
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }
    manifest = [
        {
            "paths": paths,
            "weights": [
                {"name": "d/kernel", "shape": [4, 2], "dtype": "float32"},
                {"name": "d/bias", "shape": [2], "dtype": "float32"},
            ],
        }
    ]
    return json.dumps({"format": "layers-model", "modelTopology": topo, "weightsManifest": manifest})


@pytest.mark.parametrize("path", ["../secret.bin", "/etc/passwd", "shard1/../../../x.bin", "..\\..\\x.bin"])
def test_tfjs_weights_path_outside_the_model_folder_blocks(path: str) -> None:
    results = scan_files({"model.json": _model_json([path]), "group1-shard1of1.bin": b"\0" * 40})
    fr = results["model.json"]
    assert fr.max_severity is not None and fr.max_severity.value in ("high", "critical"), fr.findings


def test_tfjs_weights_inside_the_folder_are_allowed() -> None:
    results = scan_files(
        {"model.json": _model_json(["group1-shard1of1.bin"]), "group1-shard1of1.bin": b"\0" * 40}
    )
    assert "TF-JS-WEIGHTS-PATH" not in {f.rule_id for f in results["model.json"].findings}
