"""HDF5 and .keras files through the real engine: configs, user blocks, datasets, links."""

from __future__ import annotations

import h5py
import numpy as np

from scanner.formats.keras.keras_h5 import find_superblock
from scanner.io.reader import BytesReader
from tests.harness import fixture, inspect_bytes, rule_ids


def test_benign_models_clean() -> None:
    for name in ("keras/benign_conv_dense.keras", "keras/benign_conv_dense.h5"):
        fr = inspect_bytes(fixture(name).read_bytes(), name.split("/")[1])
        assert fr.format in ("keras-zip", "keras-h5")
        assert not fr.findings, [f.message for f in fr.findings]
        assert fr.coverage.value == "full"


def test_keras_zip_inspects_weights_member() -> None:
    fr = inspect_bytes(fixture("keras/benign_conv_dense.keras").read_bytes(), "m.keras")
    assert any(m.endswith("!model.weights.h5") for m in fr.members)


def test_superblock_search_user_block(tmp_path) -> None:
    p = tmp_path / "u.h5"
    with h5py.File(p, "w", userblock_size=2048) as f:
        f["x"] = np.zeros(3)
    data = p.read_bytes()
    assert find_superblock(data[:4096], BytesReader(data, "u")) == 2048
    fr = inspect_bytes(data, "u.h5")
    assert fr.format == "keras-h5" and not fr.findings  # zero-filled user block is not content


def test_user_block_text_is_inspected(tmp_path) -> None:
    p = tmp_path / "u.h5"
    with h5py.File(p, "w", userblock_size=512) as f:
        f["x"] = np.zeros(3)
    data = bytearray(p.read_bytes())
    data[:5] = b"\x7fELF\x02"
    fr = inspect_bytes(bytes(data), "u.h5")
    assert "KERAS-HDF5-USERBLOCK" in rule_ids(fr)
    assert any(m.endswith("<userblock>") for m in fr.members)


def test_external_link_and_external_storage(tmp_path) -> None:
    p = tmp_path / "e.h5"
    with h5py.File(p, "w") as f:
        f["link"] = h5py.ExternalLink("/etc/passwd", "/")
        f.create_dataset("ext", shape=(4,), dtype="u1", external=[("/etc/hostname", 0, 4)])
    fr = inspect_bytes(p.read_bytes(), "e.h5")
    msgs = [f.message for f in fr.findings if f.rule_id == "KERAS-HDF5-EXTERNAL"]
    assert len(msgs) == 2, msgs


def test_huge_declared_dataset() -> None:
    fr = inspect_bytes(fixture("keras/huge_dataset.h5").read_bytes(), "w.h5")
    assert "KERAS-DATASET-SIZE" in rule_ids(fr)


def test_compressed_dataset_within_ratio_is_fine(tmp_path) -> None:
    p = tmp_path / "c.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("z", data=np.zeros((256, 256), dtype="f4"), compression="gzip", chunks=(64, 64))
    assert "KERAS-DATASET-SIZE" not in rule_ids(inspect_bytes(p.read_bytes(), "c.h5"))


def test_invalid_model_config_json_fails_closed(tmp_path) -> None:
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", '
    fr = inspect_bytes(p.read_bytes(), "m.h5")
    assert "KERAS-CONFIG-INVALID" in rule_ids(fr) and fr.coverage.value != "full"


def test_not_hdf5_after_signature() -> None:
    fr = inspect_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200, "x.h5")
    assert "KERAS-HDF5-UNREADABLE" in rule_ids(fr) and fr.coverage.value != "full"


def test_hanging_or_crashing_hdf5_library_is_a_finding(monkeypatch, tmp_path) -> None:
    """The h5py child is killed at its time limit (or dies); the file is reported, the scan goes on."""
    import sys

    import scanner.formats.keras.keras_h5 as keras_h5

    data = fixture("keras/benign_conv_dense.h5").read_bytes()
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    die = tmp_path / "die.sh"
    die.write_text("#!/bin/sh\nkill -SEGV $$\n")
    die.chmod(0o755)
    monkeypatch.setattr(keras_h5, "PROBE_SECONDS", 1.0)
    for fake in (hang, die):
        monkeypatch.setattr(sys, "executable", str(fake))
        fr = inspect_bytes(data, "m.h5")
        assert "KERAS-HDF5-UNREADABLE" in rule_ids(fr) and fr.coverage.value != "full", fr.findings
