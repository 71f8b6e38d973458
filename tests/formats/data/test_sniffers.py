"""The new sniffers claim only their own formats: every other fixture keeps its format, random bytes stay unknown."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scanner.findings import Coverage, Severity
from scanner.formats.detect import sniff
from scanner.formats.registry import by_name
from scanner.io.reader import BytesReader, FileReader
from tests.harness import FIXTURES, REPO, fixture, inspect_bytes, rule_ids

OWN_FORMATS = {"sentencepiece", "msgpack", "coreml", "coreml-weights"}
OWN_FIXTURES = {FIXTURES / family for family in ("sentencepiece", "msgpack", "coreml", "openvino")} | {
    FIXTURES
    / "carriers"
    / "spacy"
    / "full_blank_sentencizer"  # spaCy's nlp.to_disk: msgpack tokenizer and vocab
}
SAMPLES = [
    *(REPO / "tests").glob("**/pickle/data/**/*"),
    *(REPO / "tests" / "formats" / "samples").rglob("*"),
]
FOREIGN = sorted(
    p
    for p in [*FIXTURES.rglob("*"), *SAMPLES]
    if p.is_file() and not OWN_FIXTURES & set(p.parents) and p.name != "manifest.json"
)


def test_corpus_is_not_empty() -> None:
    assert len(FOREIGN) > 200  # the sweep below means something only over the whole corpus


@pytest.mark.parametrize("name", sorted(OWN_FORMATS))
def test_own_sniffer_claims_no_foreign_fixture(name: str) -> None:
    handler = by_name(name)
    claimed = []
    for p in FOREIGN:
        with FileReader(p) as r:
            if handler.sniff(r.head(4096), r):
                claimed.append(str(p.relative_to(REPO)))
    assert not claimed, f"{name} claims foreign fixtures: {claimed[:10]}"


EXPECTED = {
    "sentencepiece/tokenizer.model": "sentencepiece",
    "sentencepiece/sentencepiece.bpe.model": "sentencepiece",
    "sentencepiece/bad_utf8_piece.model": "sentencepiece",
    "sentencepiece/trailing_junk.model": "sentencepiece",
    "sentencepiece/spiece.model": "sentencepiece",
    "sentencepiece/pickle_renamed/tokenizer.model": "pickle",
    "msgpack/flax_model.msgpack": "msgpack",
    "msgpack/list_weights.msgpack": "msgpack",
    "msgpack/trailing.msgpack": "msgpack",
    "msgpack/shape_mismatch.msgpack": "msgpack",
    "msgpack/truncated.msgpack": "msgpack",
    "coreml/benign_nn.mlmodel": "coreml",
    "coreml/custom_layer.mlmodel": "coreml",
    "coreml/nested_custom.mlmodel": "coreml",
    "coreml/custom_model.mlmodel": "coreml",
    "coreml/truncated.mlmodel": "coreml",
    "coreml/benign.mlpackage/Data/com.apple.CoreML/model.mlmodel": "coreml",
    "coreml/benign.mlpackage/Data/com.apple.CoreML/weights/weight.bin": "coreml-weights",
    "coreml/benign.mlpackage/Manifest.json": "json",
    "openvino/benign_ir/openvino_model.xml": "text",
    "openvino/benign_ir/openvino_model.bin": None,
}


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_detected_format(rel: str) -> None:
    with FileReader(fixture(rel)) as r:
        h = sniff(r)
    assert (h.name if h else None) == EXPECTED[rel]


@pytest.mark.parametrize(
    "rel",
    [
        "sentencepiece/tokenizer.model",
        "sentencepiece/sentencepiece.bpe.model",
        "msgpack/flax_model.msgpack",
        "msgpack/list_weights.msgpack",
        "coreml/benign_nn.mlmodel",
    ],
)
def test_benign_is_judged_fully(rel: str) -> None:
    fr = inspect_bytes(fixture(rel).read_bytes(), Path(rel).name)
    assert fr.coverage is Coverage.FULL, fr.coverage_notes
    assert all(f.severity <= Severity.INFO for f in fr.findings), [
        (f.rule_id, f.message) for f in fr.findings
    ]


def test_pickle_named_tokenizer_model_is_still_a_pickle() -> None:
    fr = inspect_bytes(
        fixture("sentencepiece/pickle_renamed/tokenizer.model").read_bytes(), "tokenizer.model"
    )
    assert fr.format == "pickle"
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH


def _random_blobs(n: int, seed: int, first: bytes | None = None) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        size = rng.choice([64, 300, 4096, 20_000])
        b = bytearray(rng.getrandbits(8) for _ in range(size))
        if first is not None:
            b[0] = first[rng.randrange(len(first))]
        out.append(bytes(b))
    return out


def test_random_binary_stays_unknown() -> None:
    for i, blob in enumerate(_random_blobs(150, seed=11)):
        fr = inspect_bytes(blob, f"weights_{i}.bin")
        assert fr.format not in OWN_FORMATS, (i, fr.format)


# first bytes our sniffers look at: protobuf field 1 (0x08, 0x0a), msgpack maps and arrays
PREFIXES = bytes([0x08, 0x0A, *range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF])


def test_random_binary_with_our_first_bytes_is_still_blocked() -> None:
    """Whatever the sniffers make of random bytes, nothing unjudged is allowed."""
    for i, blob in enumerate(_random_blobs(300, seed=12, first=PREFIXES)):
        fr = inspect_bytes(blob, f"blob_{i}")
        if fr.format in OWN_FORMATS:
            assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH, (
                i,
                fr.format,
                rule_ids(fr),
            )
        elif fr.format == "unknown":
            assert "FORMAT-UNKNOWN" in rule_ids(fr)


def test_sniffers_never_raise_on_tiny_inputs() -> None:
    for name in sorted(OWN_FORMATS):
        h = by_name(name)
        for data in (
            b"",
            b"\x0a",
            b"\x0a\x05",
            b"\x08\x04\x12",
            b"\x81",
            b"\xde\xff\xff",
            b"\x02\x00\x00\x00" * 40,
        ):
            assert h.sniff(data, BytesReader(data, "x")) in (True, False)


# Small protobufs with no NUL byte are valid UTF-8, so the catch-all text sniffer claims them when the strict
# sniffer did not; the loader the name picks still parses them as binary.
@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "saved_model.pb",
            b"\x12\x21\x12\x1f\x0a\x0e\x0a\x05Const\x12\x05Const\x0a\x0d\x0a\x03bad\x12\x06PyFunc",
        ),
        ("model.onnx", b':\x1f\n\x1b\n\x01x\x12\x01y\x1a\x01n"\x04PyOp:\x08com.evil\x12\x01gB\x02\x10\x11'),
        ("model.tflite", b"\x1c\x01\x02TFL3\x14\x16\x18"),
        ("weights.pt", b"\x02\x03binary\x04\x05\x06"),
    ],
    ids=["savedmodel", "onnx-no-ir", "tflite", "pt"],
)
def test_binary_named_content_that_only_looks_like_text_is_high(name: str, data: bytes) -> None:
    fr = inspect_bytes(data, name)
    if fr.format == "text":
        hits = [f for f in fr.findings if f.rule_id == "FORMAT-NAME-MISMATCH"]
        assert hits and hits[0].severity is Severity.HIGH, [(f.rule_id, f.message) for f in fr.findings]
    assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH, (fr.format, rule_ids(fr))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("model.onnx", b"version https://example/not-lfs\nsome notes\n"),
        ("weights.bin", b"<html><body>404 Not Found</body></html>\n"),
        ("notes.pt", b"col1\tcol2\r\n\x0cpage\x1b[0m\n"),
    ],
)
def test_plain_text_under_a_binary_name_stays_medium(name: str, data: bytes) -> None:
    fr = inspect_bytes(data, name)
    assert fr.format == "text"
    hits = [f for f in fr.findings if f.rule_id == "FORMAT-NAME-MISMATCH"]
    assert hits and hits[0].severity is Severity.MEDIUM
