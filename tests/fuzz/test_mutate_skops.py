"""Truncate and bit-flip a real .skops file and its schema.json: findings or a clean pass, never a crash or a hang."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest

from scanner.findings import Coverage
from tests.harness import fixture, fuzz_one, mutations

pytestmark = pytest.mark.fuzz

SAMPLE = fixture("skops/benign_logreg_sparse_object.skops").read_bytes()
# every loader that calls something (partial, defaultdict, numpy scalars, generators, Tree, loss ...): skops 0.16.0
ZOO = (Path(__file__).parents[1] / "formats" / "skops" / "data" / "benign_zoo.skops").read_bytes()


def _with_schema(schema: bytes, sample: bytes = SAMPLE) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(sample)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, schema if info.filename == "schema.json" else zin.read(info.filename))
    return buf.getvalue()


def test_mutated_archive_never_crashes() -> None:
    edges = {1, 10, 30, len(SAMPLE) // 2, len(SAMPLE) - 22, len(SAMPLE) - 1}
    for i, (_, mutated) in enumerate(mutations(SAMPLE, zlib.crc32(b"skops"), cuts=edges, flips=30)):
        fr = fuzz_one(mutated, "fuzz.skops")
        assert fr.findings or fr.coverage is Coverage.FULL, i


def test_mutated_schema_never_crashes() -> None:
    with zipfile.ZipFile(io.BytesIO(SAMPLE)) as z:
        schema = z.read("schema.json")
    for i, (_, mutated) in enumerate(
        mutations(schema, zlib.crc32(b"skops-schema"), random_cuts=8, flips=40, overwrites=10)
    ):
        fr = fuzz_one(_with_schema(mutated), "fuzz.skops")
        assert fr.findings or fr.coverage is Coverage.FULL, i


def test_mutated_zoo_schema_never_crashes() -> None:
    """Mutations of a schema whose values reach the argument rules (gadgets.yaml) through every calling loader."""
    with zipfile.ZipFile(io.BytesIO(ZOO)) as z:
        schema = z.read("schema.json")
    for i, (_, mutated) in enumerate(
        mutations(schema, zlib.crc32(b"skops-zoo"), random_cuts=6, flips=40, overwrites=10)
    ):
        fr = fuzz_one(_with_schema(mutated, ZOO), "fuzz.skops")
        assert fr.findings or fr.coverage is Coverage.FULL, i
