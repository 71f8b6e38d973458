"""Red-team round 9: a TF.js ``model.json`` whose weightsManifest paths leave the model folder.

tensorflowjs 4.22 ``read_weights`` (what ``tfjs.converters.load_keras_model`` and ``keras_tfjs_loader`` use)
opens ``os.path.join(base_path, path)`` for every manifest path: ``../secret.bin`` was read into the Dense
kernel (measured in a throwaway venv), and an absolute path replaces the base; tfjs-node's ``file://`` handler
joins the same way. The scan judges modelTopology as a Keras config but allowed the paths. The fix belongs in
``scanner/formats/data_files.py`` (the JSON handler that recognises model.json), not in a format of this family:
a weights path that is absolute, has a ``..`` segment, a scheme or a backslash should be a blocking finding.
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


@pytest.mark.xfail(
    strict=True, reason="TF.js weightsManifest paths are not judged (scanner/formats/data_files.py)"
)
@pytest.mark.parametrize("path", ["../secret.bin", "/etc/passwd", "shard1/../../../x.bin", "..\\..\\x.bin"])
def test_tfjs_weights_path_outside_the_model_folder_blocks(path: str) -> None:
    results = scan_files({"model.json": _model_json([path]), "group1-shard1of1.bin": b"\0" * 40})
    fr = results["model.json"]
    assert fr.max_severity is not None and fr.max_severity.value in ("high", "critical"), fr.findings
