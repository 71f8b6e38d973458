"""Repository-level checks: safetensors shard indexes and ONNX external data, local and remote snapshots."""

from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
from onnx import TensorProto, helper

from scanner.findings import Coverage, Severity
from tests.harness import FIXTURES, remote_snapshot, rule_ids, scan, scan_snapshot


def st(tensors: dict[str, int]) -> bytes:
    hdr, off = {}, 0
    for name, n in tensors.items():
        hdr[name] = {"dtype": "U8", "shape": [n], "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(hdr).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * off


def index(wm: dict[str, str]) -> bytes:
    return json.dumps({"metadata": {}, "weight_map": wm}).encode()


def test_remote_index_against_shards() -> None:
    files = {
        "sub/model.safetensors.index.json": index(
            {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s1.safetensors"}
        ),
        "sub/s1.safetensors": st({"a": 4, "c": 4}),
        "sub/s2.safetensors": st({"b": 2}),
    }
    res = scan_snapshot(remote_snapshot(files))
    assert all(not fr.findings for fr in res.values()), {
        p: [f.message for f in fr.findings] for p, fr in res.items()
    }
    files["sub/model.safetensors.index.json"] = index(
        {
            "a": "s1.safetensors",
            "z": "s2.safetensors",
            "q": "s3.safetensors",
            "e": "/abs/x.safetensors",
            "w": "..\\x.safetensors",
        }
    )
    fr = scan_snapshot(remote_snapshot(files))["sub/model.safetensors.index.json"]
    sev = sorted(
        (f.severity.value, f.message.split(" ")[0])
        for f in fr.findings
        if f.rule_id == "SAFETENSORS-INDEX-MISMATCH"
    )
    assert [s for s, _ in sev].count("high") == 3 and [s for s, _ in sev].count("medium") == 1, sev


def test_broken_index_json() -> None:
    fr = scan_snapshot(remote_snapshot({"model.safetensors.index.json": b'{"weight_map": [1]}'}))[
        "model.safetensors.index.json"
    ]
    assert "SAFETENSORS-INDEX-MISMATCH" in rule_ids(fr)


def test_index_scanned_alone_finds_shards_on_disk(tmp_path) -> None:
    shutil.copytree(FIXTURES / "safetensors" / "sharded_ok", tmp_path / "m")
    report = scan(tmp_path / "m" / "model.safetensors.index.json")
    assert "SAFETENSORS-INDEX-MISMATCH" not in rule_ids(report)
    os.remove(tmp_path / "m" / "model-00002-of-00002.safetensors")
    assert "SAFETENSORS-INDEX-MISMATCH" in rule_ids(scan(tmp_path / "m" / "model.safetensors.index.json"))


def onnx_ext(location: str, length: int = 16, offset: int = 0) -> bytes:
    t = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2, 2], data_location=TensorProto.EXTERNAL)
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g", [x], [y], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def test_remote_external_data() -> None:
    weights = np.arange(4, dtype=np.float32).tobytes()
    res = scan_snapshot(
        remote_snapshot({"onnx/model.onnx": onnx_ext("data/w.bin"), "onnx/data/w.bin": weights})
    )
    assert rule_ids(res["onnx/model.onnx"]) == {"ONNX-EXTERNAL-DATA"}
    data = res["onnx/data/w.bin"]
    assert data.format == "onnx-external-data" and data.coverage is Coverage.FULL
    assert all(f.severity is Severity.INFO for f in data.findings)
    res = scan_snapshot(remote_snapshot({"model.onnx": onnx_ext("w.bin", offset=8), "w.bin": weights}))
    assert "ONNX-EXTERNAL-DATA-RANGE" in rule_ids(res["model.onnx"])
    res = scan_snapshot(remote_snapshot({"model.onnx": onnx_ext("w.bin")}))
    assert "ONNX-EXTERNAL-DATA-MISSING" in rule_ids(res["model.onnx"])


def test_external_data_file_that_is_code_is_not_vouched_for() -> None:
    pickle_bytes = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93."
    res = scan_snapshot(
        remote_snapshot({"model.onnx": onnx_ext("w.bin"), "w.bin": pickle_bytes + b"\0" * 16})
    )
    assert res["w.bin"].format != "onnx-external-data"


def test_single_local_model_uses_the_file_beside_it(tmp_path) -> None:
    (tmp_path / "model.onnx").write_bytes(onnx_ext("w.bin"))
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    assert rule_ids(scan(tmp_path / "model.onnx")) == {"ONNX-EXTERNAL-DATA"}
    (tmp_path / "w.bin").write_bytes(b"\0" * 8)
    assert "ONNX-EXTERNAL-DATA-RANGE" in rule_ids(scan(tmp_path / "model.onnx"))


def test_external_data_link_leaving_the_model_folder(tmp_path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.bin").write_bytes(b"\0" * 16)
    (tmp_path / "model" / "model.onnx").write_bytes(onnx_ext("w.bin"))
    os.symlink(tmp_path / "elsewhere" / "secret.bin", tmp_path / "model" / "w.bin")
    report = scan(tmp_path)
    hits = [f for f in report.all_findings() if f.rule_id == "ONNX-EXTERNAL-DATA-PATH"]
    assert hits and hits[0].severity is Severity.CRITICAL
    assert report.verdict.decision.value == "block"
