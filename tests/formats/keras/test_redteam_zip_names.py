"""Red-team: zip member names as Python's zipfile reads them (cut at the first NUL).

keras.saving and TorchServe open members through ``zipfile``, whose ZipInfo drops everything from a NUL on:
a member stored as ``config.json\\x00x`` (or ``handler.py\\x00``) is the one the loader reads. The name anomaly
alone blocks; the payload behind it must also be judged, so a policy that tolerates the anomaly still blocks.
"""

from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path

from tests.harness import make_zip, path_verdict


def _nul(data: bytes, fake: bytes, real: bytes) -> bytes:
    assert len(fake) == len(real)
    return data.replace(fake, real)


def _keras_config(layer: dict) -> bytes:
    model = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [layer]}}
    return json.dumps({**model, "registered_name": None}).encode()


def test_keras_config_behind_a_nul_name_is_analyzed(tmp_path: Path) -> None:
    code = compile("1 + 1", "x", "eval")
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "l",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": base64.b64encode(marshal.dumps(code)).decode()},
            },
        },
    }
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}
    blob = make_zip(
        {
            "metadata.json": b'{"keras_version": "3.5.0"}',
            "config.json": _keras_config(dense),
            "model.weights.h5": b"",
            "config.jsonQx": _keras_config(lam),
        }
    )
    p = tmp_path / "m.keras"
    p.write_bytes(_nul(blob, b"config.jsonQx", b"config.json\x00x"))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "KERAS-LAMBDA-CODE" in rules


def test_mar_handler_behind_a_nul_name_is_code(tmp_path: Path) -> None:
    manifest = {
        "runtime": "python",
        "model": {"modelName": "m", "modelVersion": "1", "handler": "handler.py"},
    }
    blob = make_zip(
        {"MAR-INF/MANIFEST.json": json.dumps(manifest).encode(), "handler.pyQ": b"x = 1\n"},
    )
    p = tmp_path / "m.mar"
    p.write_bytes(_nul(blob, b"handler.pyQ", b"handler.py\x00"))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert any(f.evidence.get("role") == "handler" for f in rules.get("CODE-EXECUTED-BY-LOADER", [])), rules
