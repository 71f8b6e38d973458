"""Issue #12 item 5: valid but huge headers and graphs cost bounded memory and time, or are blocked as a limit.

Caps are sized to what real files need (safetensors headers < 1 MB, ONNX exports ~30k nodes,
GGUF vocabularies ~256k tokens); above them the file is LIMIT-EXCEEDED with partial coverage.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from scanner.findings import Coverage
from scanner.formats.safetensors_file import read_header
from scanner.io.reader import BytesReader, FileReader
from scanner.limits import DEFAULT_LIMITS, Limits
from tests import bombs
from tests.harness import inspect_file, rule_ids
from tests.memory import peak_rss_rise

pytestmark = pytest.mark.slow

RISE_CAP = 80 << 20  # above a ~70 MB process baseline this keeps a scan under the 150 MB goal


def _limit(fr, name: str) -> None:  # type: ignore[no-untyped-def]
    limits = [f.evidence.get("limit") for f in fr.findings if f.rule_id == "LIMIT-EXCEEDED"]
    assert name in limits, [(f.rule_id, f.message) for f in fr.findings]
    assert fr.coverage is Coverage.PARTIAL


def _safetensors(path: Path, header: bytes) -> Path:
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


# --------------------------------------------------------------------------- safetensors


def test_safetensors_header_over_the_real_file_cap_is_a_limit_not_parsed(tmp_path: Path) -> None:
    path = bombs.safetensors_big_header(
        tmp_path / "h.safetensors", DEFAULT_LIMITS.max_safetensors_header + (1 << 20)
    )
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    _limit(fr, "max_safetensors_header")
    assert "SAFETENSORS-INVALID" not in rule_ids(
        fr
    )  # the loader would accept it: a cost limit, not a format error
    assert rise < 20 << 20, rise


def test_safetensors_header_with_too_many_json_values_is_a_limit(tmp_path: Path) -> None:
    for body in (
        b"[" + b"{}," * 700_000 + b"{}]",
        b"[" + b'"ab",' * 700_000 + b'""]',
        b"[" + b"1," * 900_000 + b"1]",
    ):
        path = _safetensors(tmp_path / "v.safetensors", b'{"a":' + body + b"}")
        fr, rise = peak_rss_rise(lambda p=path: inspect_file(p))
        _limit(fr, "max_json_values")
        assert rise < 30 << 20, rise


def test_safetensors_header_just_under_the_caps_parses_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.safetensors_big_header(
        tmp_path / "ok.safetensors", DEFAULT_LIMITS.max_safetensors_header - (256 << 10)
    )
    t0 = time.monotonic()
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    assert time.monotonic() - t0 < 10
    assert fr.coverage is Coverage.FULL and not rule_ids(fr), rule_ids(fr)
    assert rise < RISE_CAP, rise


def test_read_header_default_caps_apply_to_the_shard_index_check(tmp_path: Path) -> None:
    """The repository check reads shard headers through the same function: the cap holds there too."""
    meta = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(3)}
    raw = json.dumps(meta).encode()
    ok = read_header(BytesReader(struct.pack("<Q", len(raw)) + raw + bytes(12), "s"))
    assert ok.parsed and set(ok.tensors) == {"t0", "t1", "t2"}
    with FileReader(bombs.safetensors_big_header(tmp_path / "b.safetensors", 5 << 20)) as r:
        h = read_header(r)
    assert not h.parsed and h.limit is not None and h.limit[0] == "max_safetensors_header"


# --------------------------------------------------------------------------- ONNX


def test_onnx_graph_over_the_node_cap_is_a_limit_in_bounded_memory(tmp_path: Path) -> None:
    path = bombs.onnx_many_nodes(tmp_path / "n.onnx", DEFAULT_LIMITS.max_onnx_nodes + 5_000)
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    _limit(fr, "max_onnx_nodes")
    assert rise < RISE_CAP, rise


def test_onnx_nodes_with_many_tiny_fields_are_a_limit_in_bounded_memory(tmp_path: Path) -> None:
    """3-byte input names cost ~45 bytes each once parsed: the walk counts fields, not bytes."""
    graph = bytearray()
    ins = bombs._pb_field(1, b"x") * 600
    for i in range(2000):
        graph += bombs._pb_field(1, ins + bombs._pb_field(2, b"t%d" % i) + bombs._pb_field(4, b"Sum"))
    model = b"\x08\x08" + bombs._pb_field(8, b"\x10\x11") + bombs._pb_field(7, bytes(graph))
    path = tmp_path / "w.onnx"
    path.write_bytes(model)
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    _limit(fr, "max_onnx_fields")
    assert rise < RISE_CAP, rise


def test_onnx_graph_under_the_caps_is_judged_whole(tmp_path: Path) -> None:
    path = bombs.onnx_many_nodes(tmp_path / "ok.onnx", DEFAULT_LIMITS.max_onnx_nodes - 5_000)
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    assert fr.coverage is Coverage.FULL and "LIMIT-EXCEEDED" not in rule_ids(fr), rule_ids(fr)
    assert rise < RISE_CAP, rise


# --------------------------------------------------------------------------- GGUF


def test_gguf_token_array_over_the_cap_is_a_limit_without_reading_it(tmp_path: Path) -> None:
    path = bombs.gguf_many_tokens(
        tmp_path / "t.gguf", DEFAULT_LIMITS.max_gguf_array_strings + 1, distinct=False
    )
    t0 = time.monotonic()
    fr = inspect_file(path)
    assert time.monotonic() - t0 < 3
    _limit(fr, "max_gguf_array_strings")
    assert fr.bytes_read < 1 << 20


def test_gguf_big_vocabulary_is_walked_fast_and_checked(tmp_path: Path) -> None:
    path = bombs.gguf_many_tokens(tmp_path / "v.gguf", 1_000_000)
    t0 = time.monotonic()
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    assert time.monotonic() - t0 < 8  # one read call per string took ~3.5 s per million
    assert fr.coverage is Coverage.FULL and not rule_ids(fr), rule_ids(fr)
    assert rise < 20 << 20, rise
    # every element's length is still checked: a lying one deep in the array is found
    data = bytearray(path.read_bytes())
    at = data.rfind(b"t999999") - 8
    data[at : at + 8] = struct.pack("<Q", 1 << 40)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    assert "GGUF-LIMIT" in rule_ids(inspect_file(bad))
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:-5])
    assert rule_ids(inspect_file(cut)) & {"GGUF-LIMIT", "GGUF-INVALID"}


def test_gguf_counts_over_the_caps_are_limits(tmp_path: Path) -> None:
    limits = Limits(max_gguf_tensors=10, max_gguf_kvs=10, max_gguf_array_strings=5)
    path = tmp_path / "c.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 11, 0) + bytes(11 * 40))
    _limit(inspect_file(path, limits), "max_gguf_tensors")
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 11) + bytes(11 * 40))
    _limit(inspect_file(path, limits), "max_gguf_kvs")
    _limit(inspect_file(bombs.gguf_many_tokens(tmp_path / "t.gguf", 6), limits), "max_gguf_array_strings")
    assert "LIMIT-EXCEEDED" not in rule_ids(
        inspect_file(bombs.gguf_many_tokens(tmp_path / "u.gguf", 5), limits)
    )


# --------------------------------------------------------------------------- generic JSON (data_files)


def test_json_value_bound_never_undercounts() -> None:
    from scanner.formats.parsers.json_cost import reader_value_bound, value_bound

    for doc in ({"a": [1, 2, {"b": []}]}, [[], {}, "x,y"], {"k": "[{"}, 5, []):
        raw = json.dumps(doc).encode()
        created = raw.count(b"{") + raw.count(b"[")  # containers, plus one per element after the first
        assert value_bound(raw) >= created
        assert reader_value_bound(BytesReader(raw, "j")) == value_bound(raw)


def test_json_that_would_cost_too_much_to_parse_is_checked_as_text(tmp_path: Path) -> None:
    objs = tmp_path / "objs.json"
    objs.write_bytes(b"[" + b"{}," * 3_000_000 + b"{}]")  # 9 MB that json.loads turns into ~250 MB of dicts
    fr, rise = peak_rss_rise(lambda: inspect_file(objs))
    assert rule_ids(fr) == {"JSON-NOT-VALIDATED"}, rule_ids(fr)
    assert rise < 30 << 20, rise
    small = tmp_path / "small.json"
    small.write_bytes(b'{"a": [1, 2,]}')  # few values: still parsed, so still found invalid
    assert "JSON-INVALID" in rule_ids(inspect_file(small))


def test_keras_config_that_would_cost_too_much_to_parse_is_a_limit(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        z.writestr("config.json", b'{"config": [' + b"{}," * 600_000 + b"{}]}", zipfile.ZIP_STORED)
        z.writestr("model.weights.h5", b"")
    fr, rise = peak_rss_rise(lambda: inspect_file(path))
    _limit(fr, "max_json_values")
    assert rise < 40 << 20, rise
