"""Truncated and bit-flipped fixtures: a finding or a clean verdict, never an escaping exception or a hang."""

from __future__ import annotations

import time
import zlib

import pytest

from tests.harness import fixture, inspect_bytes, mutations

pytestmark = pytest.mark.fuzz

CASES = [
    # HDF5 goes through the h5py child process (~0.3 s each): fewer mutants, a short probe timeout
    ("keras/benign_conv_dense.h5", 16),
    ("keras/lambda_legacy.h5", 10),
    ("keras/userblock_pickle.h5", 10),
    ("keras/benign_conv_dense.keras", 16),
    ("keras/lambda_marshal.keras", 16),
    ("tensorflow/benign_savedmodel/saved_model.pb", 80),
    ("tensorflow/malicious_saved_model.pb", 80),
    ("tensorflow/keras_metadata.pb", 80),
    ("tensorflow/benign.tflite", 80),
    ("tensorflow/flex_custom.tflite", 80),
    ("hf-repo/demo.ipynb", 40),
    ("hf-repo/standalone_tool.py", 40),
    ("hf-repo/pytorch_model.bin", 40),
    ("hf-repo/libcustom_ops.so", 40),
    ("hf-repo/install.sh", 40),
]


@pytest.mark.parametrize(("rel", "n"), CASES, ids=[c[0] for c in CASES])
def test_mutations_never_escape(rel: str, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import scanner.formats.keras.keras_h5 as keras_h5

    monkeypatch.setattr(keras_h5, "PROBE_SECONDS", 4.0)
    data = fixture(rel).read_bytes()
    name = rel.rsplit("/", 1)[-1]
    for i, (_, m) in enumerate(
        mutations(data, zlib.crc32(rel.encode()), random_cuts=n // 2, flips=n // 2, flips_per=range(1, 9))
    ):
        t0 = time.monotonic()
        fr = inspect_bytes(m, name)
        assert time.monotonic() - t0 < 10, f"{rel} mutant {i} took too long"
        crashed = [f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR"]
        assert not crashed, f"{rel} mutant {i}: {crashed}"
