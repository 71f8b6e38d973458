"""Truncated and bit-flipped files for every new parser: a finding or a clean verdict, never a crash or a hang."""

from __future__ import annotations

import random
import time
import zlib

import pytest

from scanner.findings import Coverage, Severity
from tests.harness import fixture, inspect_bytes, mutations, scan_files

pytestmark = pytest.mark.fuzz

CASES = [
    ("sentencepiece/tokenizer.model", 60),
    ("sentencepiece/sentencepiece.bpe.model", 40),
    ("msgpack/flax_model.msgpack", 120),
    ("msgpack/list_weights.msgpack", 60),
    ("coreml/benign_nn.mlmodel", 80),
    ("coreml/nested_custom.mlmodel", 80),
    ("coreml/benign.mlpackage/Data/com.apple.CoreML/weights/weight.bin", 80),
]


def _judged(fr) -> bool:  # type: ignore[no-untyped-def]
    """Either clean and fully covered, or carrying a finding."""
    return bool(fr.findings) or fr.coverage is Coverage.FULL


@pytest.mark.parametrize(("rel", "n"), CASES, ids=[c[0] for c in CASES])
def test_mutations_never_escape(rel: str, n: int) -> None:
    data = fixture(rel).read_bytes()
    name = rel.rsplit("/", 1)[-1]
    for i, (_, m) in enumerate(
        mutations(
            data, zlib.crc32(rel.encode()), random_cuts=n // 2, flips=n // 2, flips_per=range(1, 9), head=4096
        )
    ):
        t0 = time.monotonic()
        fr = inspect_bytes(m, name)
        assert time.monotonic() - t0 < 5, f"{rel} mutant {i} took too long"
        crashed = [f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR"]
        assert not crashed, f"{rel} mutant {i}: {crashed}"
        assert _judged(fr), f"{rel} mutant {i}: silent partial result"


def test_truncated_files_are_never_allowed_silently() -> None:
    """A cut file must not come out clean: it is either flagged or recognized as something complete."""
    for rel, _n in CASES:
        data = fixture(rel).read_bytes()
        for cut in (len(data) // 3, len(data) // 2, len(data) - 5):
            if rel.endswith("weight.bin") and not any(data[cut:]):
                continue  # only the zero padding after the last blob was cut: the blobs are all there
            fr = inspect_bytes(data[:cut], rel.rsplit("/", 1)[-1])
            assert fr.max_severity is not None and fr.max_severity >= Severity.MEDIUM, (rel, cut, fr.format)


def test_openvino_xml_mutations_never_crash_the_repo_check() -> None:
    xml = fixture("openvino/benign_ir/openvino_model.xml").read_bytes()
    weights = fixture("openvino/benign_ir/openvino_model.bin").read_bytes()
    rng = random.Random(5)
    for i in range(60):
        b = bytearray(xml)
        if i % 2:
            b = b[: rng.randrange(1, len(b))]
        else:
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] = rng.choice(b'<>"=&/ 0123456789abcxyz\x00')
        res = scan_files({"openvino_model.xml": bytes(b), "openvino_model.bin": weights})
        errors = [f.message for fr in res.values() for f in fr.findings if f.rule_id == "INSPECTOR-ERROR"]
        assert not errors, (i, errors)
        b_fr = res["openvino_model.bin"]
        assert b_fr.format in ("unknown", "openvino-weights")
