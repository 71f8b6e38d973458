"""Real checkpoints written by torch/numpy/sklearn/joblib must pass; the sniffer must not claim other formats."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from io import BytesIO

import pytest

from scanner.findings import Coverage, Severity
from scanner.formats.pickle.handler import sniff
from scanner.io.reader import BytesReader

from .assembler import DATA, scan

BENIGN = sorted(
    p for p in DATA.iterdir() if p.suffix in (".pkl", ".joblib") and not p.name.startswith("code_")
)


def test_corpus_present() -> None:
    names = {p.name for p in BENIGN}
    assert {
        "torch_dtypes.data.pkl",
        "hf_rng_state.data.pkl",
        "sk_forest.joblib",
        "numpy_array_p5.pkl",
    } <= names


@pytest.mark.parametrize("path", BENIGN, ids=lambda p: p.name)
def test_benign_real_pickles_have_nothing_above_low(path) -> None:  # type: ignore[no-untyped-def]
    r = scan(path.read_bytes(), name=path.name)
    assert r.format == "pickle"
    above = [(f.rule_id, f.message) for f in r.findings if f.severity > Severity.LOW]
    assert above == []
    assert r.coverage is Coverage.FULL


@pytest.mark.parametrize("name", ["code_dill_lambda.pkl", "code_cloudpickle_lambda.pkl"])
def test_dill_and_cloudpickle_functions_are_code(name: str) -> None:
    r = scan((DATA / name).read_bytes(), name=name)
    assert any(f.rule_id == "PICKLE-CODE-OBJECT" for f in r.findings)


def test_torch_pickles_only_report_persistent_ids_outside_a_container() -> None:
    r = scan((DATA / "torch_dtypes.data.pkl").read_bytes())
    assert {f.rule_id for f in r.findings} == {"PICKLE-PERSISTENT-ID"}
    assert r.findings[0].evidence["count"] == 14


NOT_PICKLES = {
    "readme": b"# Model card\n\nThis model was trained on ...\n" * 40,
    "text_c": b"config\nvalue\nmore text follows here\n",
    "text_I": b"Installation\n============\n",
    "text_paren": b"(see below)\nsome words\n",
    "json": json.dumps({"architectures": ["Bert"], "hidden_size": 768}).encode(),
    "json_list": b"[1, 2, 3]",
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "safetensors": struct.pack("<Q", 64) + b'{"__metadata__":{"format":"pt"}}' + b" " * 32,
    "random": os.urandom(4096),
    "gguf": b"GGUF\x03\x00\x00\x00" + b"\x00" * 64,
    "empty_lines": b"\n\n\n",
    "csv": b"a,b,c\n1,2,3\n",
}


@pytest.mark.parametrize("name", sorted(NOT_PICKLES))
def test_sniff_rejects_other_formats(name: str) -> None:
    data = NOT_PICKLES[name]
    assert not sniff(data[:4096], BytesReader(data, name))


def test_sniff_rejects_zip() -> None:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    data = buf.getvalue()
    assert not sniff(data[:4096], BytesReader(data, "z"))


@pytest.mark.parametrize(
    "data",
    [
        b"(lp0\nI1\naI2\na.",
        b"cos\nsystem\n(S'touch /tmp/modelward-canary'\ntR.",
        b"cos\nsystem\n(S'touch /tmp/modelward-canary'\ntR\xff\xff",  # broken tail after the payload
        b"I42\n.",
    ],
)
def test_sniff_claims_protocol_0_pickles(data: bytes) -> None:
    assert sniff(data, BytesReader(data, "p"))


def test_long_protocol0_stream_claimed_from_head() -> None:
    import pickle

    data = pickle.dumps(list(range(5000)), protocol=0)
    assert sniff(data[:4096], BytesReader(data, "p"))
    assert scan(data).findings == []


def test_raw_pickle_named_safetensors_is_still_analyzed() -> None:
    import pickle

    from .assembler import Evil

    r = scan(pickle.dumps(Evil(), protocol=2), name="model.safetensors")
    assert r.format == "pickle"
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in r.findings)
