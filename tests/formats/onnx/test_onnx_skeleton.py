"""ONNX models with embedded weights are judged from a bounded skeleton: flat memory, few bytes read."""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx import ModelProto, TensorProto, helper

from scanner.findings import Coverage
from scanner.formats.onnx import onnx_skeleton
from scanner.formats.onnx.onnx_skeleton import SkeletonError, build_skeleton
from scanner.io.reader import BytesReader
from scanner.limits import DEFAULT_LIMITS
from tests.harness import FIXTURES, fuzz_one, header_mutations, inspect_bytes, inspect_file, rule_ids
from tests.memory import peak_rss_rise

from .test_onnx import X, Y, arr, model

MB = 1 << 20
FL = TensorProto.FLOAT


# --- hand-written protobuf (the big file is never held in memory) -------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _vi(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _value_info(name: str, dims: list[int]) -> bytes:
    shape = b"".join(_ld(1, _vi(1, d)) for d in dims)
    return _ld(1, name.encode()) + _ld(2, _ld(1, _vi(1, FL) + _ld(2, shape)))


def write_sparse_onnx(path: Path, raw_bytes: int, dims: list[int], extra_nodes: bytes = b"") -> int:
    """x -> Add(x, W) -> y with W's raw_data a file hole of ``raw_bytes``; returns the file size."""
    node = _ld(1, _ld(1, b"x") + _ld(1, b"W") + _ld(2, b"y") + _ld(3, b"add") + _ld(4, b"Add"))
    tensor_head = (
        b"".join(_vi(1, d) for d in dims)
        + _vi(2, FL)
        + _ld(8, b"W")
        + _varint(9 << 3 | 2)
        + _varint(raw_bytes)
    )
    tensor_len = len(tensor_head) + raw_bytes
    tail = _ld(11, _value_info("x", [1, dims[-1]])) + _ld(12, _value_info("y", [1, dims[-1]]))
    init_field = _varint(5 << 3 | 2) + _varint(tensor_len)
    graph_len = len(node) + len(extra_nodes) + len(_ld(2, b"g")) + len(init_field) + tensor_len + len(tail)
    with open(path, "wb") as f:
        f.write(_vi(1, 8) + _ld(2, b"test") + _varint(7 << 3 | 2) + _varint(graph_len))
        f.write(node + extra_nodes + _ld(2, b"g") + init_field + tensor_head)
        f.seek(raw_bytes, os.SEEK_CUR)  # the payload is a hole: no disk, no memory
        f.write(tail + _ld(8, _ld(1, b"") + _vi(2, 17)))
    return path.stat().st_size


# --- peak memory of a scan, measured in a forked child --------------------------------------------------------
_peak = peak_rss_rise


def test_300mb_embedded_initializer_scans_in_flat_memory(tmp_path: Path) -> None:
    n = 300 * MB // 4
    path = tmp_path / "big.onnx"
    size = write_sparse_onnx(path, n * 4, [n // 1024, 1024])
    inspect_bytes(
        model([helper.make_node("Relu", ["x"], ["y"])]), "warm.onnx"
    )  # imports and rule DB outside the measure
    fr, peak = _peak(lambda: inspect_file(path))
    assert fr.format == "onnx" and fr.coverage is Coverage.FULL, (
        fr.coverage_notes,
        [f.message for f in fr.findings],
    )
    assert fr.findings == []
    assert peak < 150 * MB, peak
    assert fr.bytes_read < size // 100, fr.bytes_read


def test_raw_data_mismatch_on_stripped_tensor_still_fires(tmp_path: Path) -> None:
    path = tmp_path / "short.onnx"
    write_sparse_onnx(path, 4 * 1000 * 999, [1000, 1000])  # one row short: 3.9 MB of raw_data, never read
    fr = inspect_file(path)
    hits = [f for f in fr.findings if f.rule_id == "ONNX-SHAPE-ABUSE"]
    assert hits and "3996000 bytes" in hits[0].message and hits[0].evidence["raw_offset"] > 0, [
        f.message for f in fr.findings
    ]
    assert fr.bytes_read < 100_000


def test_big_constants_are_stripped_everywhere_and_small_ones_kept() -> None:
    big = arr("big", np.zeros((512, 512), np.float32))  # 1 MiB of raw_data
    typed = helper.make_tensor(
        "typed", FL, [300_000], np.zeros(300_000, np.float32).tolist()
    )  # packed float_data
    sparse = helper.make_sparse_tensor(
        arr("sv", np.ones(100_000, np.float32)), arr("si", np.arange(100_000, dtype=np.int64)), [200_000]
    )
    const_big = helper.make_node("Constant", [], ["cb"], value=arr("cbv", np.ones((300, 300), np.float32)))
    body = helper.make_graph(
        [helper.make_node("Identity", ["bw"], ["o"])],
        "body",
        [],
        [helper.make_tensor_value_info("o", FL, None)],
        [arr("bw", np.ones((200, 200), np.float32))],
    )
    if_node = helper.make_node("If", ["c"], ["z"], then_branch=body, else_branch=body)
    pyop = helper.make_node(
        "PyOp",
        ["X"],
        ["Y"],
        module="evil",
        class_name="C",
        compute="run",
        blob=arr("fb", np.ones((200, 200), np.float32)),
    )
    fn = helper.make_function("local", "F", ["X"], ["Y"], [pyop], [helper.make_opsetid("", 17)])
    g = helper.make_graph(
        [
            helper.make_node("Add", ["x", "big"], ["y"]),
            const_big,
            if_node,
            helper.make_node("F", ["x"], ["w"], domain="local"),
            helper.make_node("Tile", ["x", "reps"], ["t"]),
        ],
        "g",
        [X],
        [Y],
        [big, typed, arr("c", True), arr("reps", np.array([1 << 20, 1 << 20], np.int64))],
        sparse_initializer=[sparse],
    )
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[fn]
    )
    m.ir_version = 8
    data = m.SerializeToString()
    sk = build_skeleton(BytesReader(data, "m.onnx"), max_graph_depth=64)
    assert len(sk.data) < 20_000 < len(data) // 100
    assert len(sk.tensors) == 8 and all(
        t.values_hidden for t in sk.tensors
    )  # big, typed, sv, si, cbv, bw (then+else), fb
    parsed = ModelProto()
    parsed.ParseFromString(sk.data)
    assert [n.op_type for n in parsed.graph.node] == ["Add", "Constant", "If", "F", "Tile"]
    small = next(t for t in parsed.graph.initializer if t.name == "reps")
    assert sk.stripped(small) is None and len(small.raw_data) == 16  # a shape constant keeps its values
    fr = inspect_bytes(data, "m.onnx")
    assert {"ONNX-PYOP", "ONNX-SHAPE-ABUSE"} <= rule_ids(fr) and fr.coverage is Coverage.FULL
    assert not any("raw_data holds" in f.message for f in fr.findings)  # stripped sizes match their shapes


def test_forged_marker_is_ignored() -> None:
    t = arr("reps", np.array([1 << 20, 1 << 20], np.int64))
    kv = t.metadata_props.add()
    kv.key, kv.value = "modelward.stripped.0000000000000000", "0"
    pad = helper.make_node("Identity", ["x"], ["p"], doc_string="d" * 100_000)  # forces the wire walk
    data = model([helper.make_node("Tile", ["x", "reps"], ["t"]), pad], [t])
    assert "ONNX-SHAPE-ABUSE" in rule_ids(inspect_bytes(data, "m.onnx"))


@pytest.mark.slow
def test_huge_doc_strings_and_attribute_lists_are_cut_not_copied() -> None:
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        nodes_values=np.ones(200_000, np.float32).tolist(),
        nodes_featureids=list(range(200_000)),
        doc_string="n" * 2_000_000,
    )
    data = model([node], domains=["ai.onnx.ml"])
    sk = build_skeleton(BytesReader(data, "m.onnx"), max_graph_depth=64)
    parsed = ModelProto()
    parsed.ParseFromString(sk.data)
    attrs = {a.name: a for a in parsed.graph.node[0].attribute}
    assert (
        2 <= len(attrs["nodes_values"].floats) <= onnx_skeleton.KEEP // 5
    )  # proto2 lists are unpacked: 5 bytes each
    assert 2 <= len(attrs["nodes_featureids"].ints) <= onnx_skeleton.KEEP // 2
    assert (
        attrs["nodes_featureids"].ints[:3] == [0, 1, 2]
        and len(sk.data) < 3 * onnx_skeleton.KEEP < len(data) // 10
    )
    fr = inspect_bytes(data, "m.onnx")
    assert rule_ids(fr) == {"ONNX-METADATA-LARGE"}  # the dropped doc string still counts
    assert fr.coverage is Coverage.FULL


def test_skeleton_cap_reports_partial_and_keeps_what_was_read() -> None:
    pyop = helper.make_node("PyOp", ["x"], ["p"], module="m", class_name="C", compute="run")
    filler = [helper.make_node("Relu", ["x"], [f"r{i}"], name="n" * 200) for i in range(2000)]
    data = model([pyop, *filler, helper.make_node("Relu", ["x"], ["y"])])
    fr = inspect_bytes(data, "m.onnx", replace(DEFAULT_LIMITS, max_onnx_structure_bytes=100_000))
    assert "ONNX-PYOP" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL
    assert any(
        f.evidence.get("limit") == "max_skeleton_bytes" for f in fr.findings if f.rule_id == "LIMIT-EXCEEDED"
    )


def test_cap_inside_a_run_of_big_tensors_leaves_no_half_tensor() -> None:
    inits = [arr(f"w{i}", np.ones((100, 100), np.float32)) for i in range(40)]
    data = model([helper.make_node("Relu", ["x"], ["y"])], inits)
    for cap in range(300, 2000, 97):
        sk = build_skeleton(BytesReader(data, "m.onnx"), max_graph_depth=64, max_bytes=cap)
        assert sk.stopped is not None and sk.stopped[0] == "max_skeleton_bytes"
        parsed = ModelProto()
        parsed.ParseFromString(sk.data)
        assert 0 < len(parsed.graph.initializer) < 40
        for t in parsed.graph.initializer:
            info = sk.stripped(t)
            assert info is not None and info.raw_len == 40_000 and list(t.dims) == [100, 100]


def test_deep_big_subgraphs_hit_the_recursion_cap() -> None:
    g = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "leaf",
        [],
        [Y],
        [arr("w", np.ones((200, 200), np.float32))],
    )
    for _ in range(6):
        g = helper.make_graph(
            [helper.make_node("If", ["c"], ["y"], then_branch=g, else_branch=g)], "lvl", [], [Y]
        )
    fr = inspect_bytes(
        model(g.node, [arr("c", True)]), "m.onnx", limits=replace(DEFAULT_LIMITS, max_graph_recursion=3)
    )
    assert fr.coverage is Coverage.PARTIAL
    assert any(
        f.evidence.get("limit") == "max_graph_recursion" for f in fr.findings if f.rule_id == "LIMIT-EXCEEDED"
    )


def test_malformed_big_model_is_invalid_with_offset() -> None:
    data = bytearray(
        model([helper.make_node("Add", ["x", "W"], ["y"])], [arr("W", np.zeros((300, 300), np.float32))])
    )
    data += _ld(
        7, b"\x2a" + _varint(1 << 32) + bytes(100_000)
    )  # a second graph whose initializer claims 4 GiB
    fr = inspect_bytes(bytes(data), "m.onnx")
    bad = [f for f in fr.findings if f.rule_id == "ONNX-INVALID"]
    assert bad and "offset" in bad[0].message and fr.coverage is Coverage.NONE


# --- equivalence and fuzzing ----------------------------------------------------------------------------------
ONNX_FIXTURES = sorted(p for p in (FIXTURES / "onnx").rglob("*.onnx") if p.stat().st_size < 64_000)


def _align(orig, skel, sk, keep: int) -> None:  # noqa: ANN001 - protobuf messages of one type
    """Undo in ``orig`` what the skeleton is allowed to leave out, so the two can be compared whole."""
    if skel.DESCRIPTOR.name == "TensorProto":
        info = sk.stripped(skel)
        keep_props = [(kv.key, kv.value) for kv in skel.metadata_props if kv.key != sk.marker]
        del skel.metadata_props[:]
        for k, v in keep_props:
            skel.metadata_props.add(key=k, value=v)
        if info is not None:
            if info.raw_len is not None:
                assert len(orig.raw_data) == info.raw_len
                orig.ClearField("raw_data")
            for num in info.dropped:
                name = orig.DESCRIPTOR.fields_by_number[num].name
                orig.ClearField(name)
                skel.ClearField(name)
    if skel.DESCRIPTOR.name == "AttributeProto":  # oversized lists and strings are cut to a prefix
        for name in ("floats", "ints", "strings"):
            a, b = getattr(orig, name), getattr(skel, name)
            if list(a) != list(b):
                assert min(2, len(a)) <= len(b) <= len(a) and all(
                    x.startswith(y) if name == "strings" else x == y for x, y in zip(a, b, strict=False)
                )
                orig.ClearField(name)
                getattr(orig, name).extend(b)
        if orig.s != skel.s:
            assert orig.s.startswith(skel.s) and len(skel.s) == onnx_skeleton.PREFIX
            orig.s = skel.s
    if "doc_string" in skel.DESCRIPTOR.fields_by_name and len(orig.doc_string) > keep and not skel.doc_string:
        orig.doc_string = ""
    for fd in skel.DESCRIPTOR.fields:
        if fd.message_type is None:
            continue
        if fd.is_repeated:
            a, b = getattr(orig, fd.name), getattr(skel, fd.name)
            assert len(a) == len(b), fd.name
            for x, y in zip(a, b, strict=True):
                _align(x, y, sk, keep)
        elif orig.HasField(fd.name):
            _align(getattr(orig, fd.name), getattr(skel, fd.name), sk, keep)


@pytest.mark.parametrize("keep", [0, 24, 300])
@pytest.mark.parametrize("path", ONNX_FIXTURES, ids=[str(p.relative_to(FIXTURES)) for p in ONNX_FIXTURES])
def test_skeleton_equals_the_model_minus_stripped_payloads(path: Path, keep: int) -> None:
    data = path.read_bytes()
    orig = ModelProto()
    try:
        orig.ParseFromString(data)
    except Exception:  # noqa: BLE001 - the corrupt fixture: the builder must refuse it too, or hand over something the parser refuses
        try:
            sk = build_skeleton(BytesReader(data, path.name), max_graph_depth=64, keep=keep)
        except SkeletonError:
            return
        with pytest.raises(Exception):  # noqa: B017, PT011
            ModelProto().ParseFromString(sk.data)
        return
    sk = build_skeleton(BytesReader(data, path.name), max_graph_depth=64, keep=keep)
    assert sk.stopped is None
    skel = ModelProto()
    skel.ParseFromString(sk.data)
    _align(orig, skel, sk, keep)
    assert orig == skel


def test_skeleton_builder_fuzz() -> None:
    """Truncations and bit flips with a tiny keep so every message is walked: SkeletonError or a parseable result."""
    t0 = time.monotonic()
    rnd = random.Random(11)
    for path in ONNX_FIXTURES:
        data = path.read_bytes()
        for label, blob in header_mutations(data, rnd.randrange(1 << 16), n=60):
            for keep in (0, 16):
                try:
                    sk = build_skeleton(
                        BytesReader(blob, path.name), max_graph_depth=8, keep=keep, max_bytes=4096
                    )
                except SkeletonError as exc:
                    assert "offset" in str(exc) or "nested" in str(exc) or "varint" in str(exc), (
                        label,
                        str(exc),
                    )
                    continue
                assert len(sk.data) <= 4096 + 64 * (len(sk.tensors) + 1), label
    assert time.monotonic() - t0 < 60


def test_fuzzed_big_models_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole inspector over mutated fixtures with the wire walk forced on: findings or clean, never a crash."""
    monkeypatch.setattr(onnx_skeleton, "KEEP", 8)
    for path in ONNX_FIXTURES:
        data = path.read_bytes()
        for _, blob in header_mutations(data, len(data), n=25):
            fuzz_one(blob, path.name)
