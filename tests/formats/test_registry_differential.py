"""Which sniffer claims which file, and what the scan then finds, against an explicit table of the sniff order.

The guard for changing how the format registry is built (issue #13: importing every handler module at start-up
is ~90 M instructions of a local pickle scan; splitting cheap sniffers from lazily imported inspectors is the
lever): whatever the registry becomes, for every fixture file and a set of edge cases

- ``detect.sniff_reporting`` must pick the handler a plain first-claim walk over ``SNIFF_ORDER`` picks (every
  sniffer imported eagerly, in this order), with the same crashed sniffers;
- a whole inspection (members, polyglot view, name checks) must give the same top-level format, inspected
  formats, rule ids and coverage as the same inspection with that reference walk swapped in;
- ``registry.SNIFFED_BEFORE_PICKLE`` and the name-based ``claimed_handlers`` must match the table.

The expectation is computed, not stored: other engineers change analyzers (and so rule ids) all the time, and
this test is about the dispatch, not the findings. A new handler is one new row here, in its sniff position.
"""

from __future__ import annotations

import functools
import importlib
import io
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scanner.formats import detect, registry
from scanner.formats.interface import SNIFF_BYTES, FormatHandler
from scanner.io.reader import BytesReader, FileReader, ReaderError
from tests.harness import REPO, benign_pickle, evil_pickle, inspect_bytes, inspect_file, rule_ids

# (handler name, module, attribute), in sniff order: a copy of registry.HANDLERS as of issue #13
SNIFF_ORDER: tuple[tuple[str, str, str], ...] = (
    ("native-binary", "scanner.formats.code_files", "NATIVE_BINARY"),
    ("lfs-pointer", "scanner.formats.code_files", "LFS_POINTER"),
    ("torch-export-pt2", "scanner.formats.torch.pt2_archive", "TORCH_EXPORT_PT2"),
    ("torch-package", "scanner.formats.torch.torch_package", "TORCH_PACKAGE"),
    ("torchserve-mar", "scanner.formats.torchserve_mar", "TORCHSERVE_MAR"),
    ("torchscript", "scanner.formats.torch.torchscript", "TORCHSCRIPT"),
    ("gguf", "scanner.formats.gguf_file", "GGUF"),
    ("keras-h5", "scanner.formats.keras.keras_h5", "KERAS_H5"),
    ("keras-zip", "scanner.formats.keras.keras_zip", "KERAS_ZIP"),
    ("skops", "scanner.formats.skops_file", "SKOPS"),
    ("numpy-npy", "scanner.formats.numpy_npy", "NUMPY_NPY"),
    ("numpy-npz", "scanner.formats.numpy_npy", "NUMPY_NPZ"),
    ("pytorch-zip", "scanner.formats.torch.torch_zip", "PYTORCH_ZIP"),
    ("7z-archive", "scanner.formats.sevenzip", "SEVENZIP_ARCHIVE"),
    ("bzip2", "scanner.formats.compressed", "BZIP2"),
    ("gzip", "scanner.formats.compressed", "GZIP"),
    ("joblib-zfile", "scanner.formats.compressed", "JOBLIB_ZFILE"),
    ("lz4-frame", "scanner.formats.compressed", "LZ4_FRAME"),
    ("lzma-alone", "scanner.formats.compressed", "LZMA_ALONE"),
    ("pytorch-legacy", "scanner.formats.torch_legacy", "PYTORCH_LEGACY"),
    ("pytorch-legacy-tar", "scanner.formats.torch_legacy", "PYTORCH_LEGACY_TAR"),
    ("xz", "scanner.formats.compressed", "XZ"),
    ("zlib", "scanner.formats.compressed", "ZLIB"),
    ("zstd", "scanner.formats.compressed", "ZSTD"),
    ("torchserve-tgz", "scanner.formats.torchserve_mar", "TORCHSERVE_TGZ"),
    ("nemo-archive", "scanner.formats.nemo_file", "NEMO_ARCHIVE"),
    ("safetensors", "scanner.formats.safetensors_file", "SAFETENSORS"),
    ("tar-archive", "scanner.formats.tar_archive", "TAR_ARCHIVE"),
    ("zip-archive", "scanner.formats.zip.handler", "ZIP_ARCHIVE"),
    ("tflite", "scanner.formats.tensorflow.tflite", "TFLITE"),
    ("coreml", "scanner.formats.coreml_file", "COREML"),
    ("keras-metadata-pb", "scanner.formats.tensorflow.tf_savedmodel", "KERAS_METADATA_PB"),
    ("tf-savedmodel", "scanner.formats.tensorflow.tf_savedmodel", "TF_SAVEDMODEL"),
    ("tf-savedmodel-text", "scanner.formats.tensorflow.tf_pbtxt", "TF_SAVEDMODEL_TEXT"),
    ("onnx", "scanner.formats.onnx.onnx_model", "ONNX"),
    ("onnx-ort", "scanner.formats.onnx.onnx_model", "ONNX_ORT"),
    ("tf-checkpoint-index", "scanner.formats.tensorflow.tf_savedmodel", "TF_CHECKPOINT_INDEX"),
    ("tf-fingerprint", "scanner.formats.tensorflow.tf_savedmodel", "TF_FINGERPRINT"),
    ("sentencepiece", "scanner.formats.sentencepiece_file", "SENTENCEPIECE"),
    ("coreml-weights", "scanner.formats.coreml_file", "COREML_WEIGHTS"),
    ("pickle", "scanner.formats.pickle.handler", "PICKLE"),
    ("catboost", "scanner.formats.tree_models", "CATBOOST"),
    ("executorch-pte", "scanner.formats.torch.pt2_archive", "EXECUTORCH_PTE"),
    ("xgboost-binary", "scanner.formats.tree_models", "XGBOOST_BINARY"),
    ("xgboost-ubjson", "scanner.formats.tree_models", "XGBOOST_UBJSON"),
    ("msgpack", "scanner.formats.msgpack_file", "MSGPACK"),
    ("lightgbm-text", "scanner.formats.tree_models", "LIGHTGBM_TEXT"),
    ("notebook", "scanner.formats.code_files", "NOTEBOOK"),
    ("image", "scanner.formats.data_files", "IMAGE"),
    ("json", "scanner.formats.data_files", "JSON"),
    ("script", "scanner.formats.code_files", "SCRIPT"),
    ("python-source", "scanner.formats.code_files", "PYTHON_SOURCE"),
    ("text", "scanner.formats.data_files", "TEXT"),
)


@functools.cache
def reference_handlers() -> tuple[FormatHandler, ...]:
    return tuple(getattr(importlib.import_module(mod), attr) for _, mod, attr in SNIFF_ORDER)


def reference_sniff(reader: Any) -> tuple[FormatHandler | None, list[str]]:
    """The first-claim walk ``detect.sniff_reporting`` is specified as, over the eager table."""
    head = reader.head(SNIFF_BYTES)
    crashed: list[str] = []
    for h in reference_handlers():
        try:
            if h.sniff(head, reader):
                return h, crashed
        except ReaderError:
            raise
        except Exception as exc:
            crashed.append(f"{h.name}: {type(exc).__name__}: {exc}"[:200])
    return None, crashed


def _fixture_files() -> list[Path]:
    root = REPO / "fixtures"
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc",)
        and p.stat().st_size < 8 << 20
    )


def _edge_cases() -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = [("empty.bin", b"")]
    cases += [(f"byte-{b:02x}.bin", bytes([b])) for b in range(256)]
    heads = {}
    for p in _fixture_files():  # every distinct magic, truncated
        with p.open("rb") as fh:
            head = fh.read(64)
        heads.setdefault(head[:8], (p.name, head))
    for _magic, (name, head) in sorted(heads.items()):
        for n in (1, 2, 3, 4, 6, 8, 12, 16, 32, 64):
            if n <= len(head):
                cases.append((f"trunc{n}-{name}", head[:n]))
    # polyglots (tests/formats/test_pickle_polyglot_view.py): a tar whose first member name is a pickle, a
    # safetensors header that starts like a pickle protocol, GGUF/zip heads followed by a pickle
    payload = b"cposix\nsystem\n(S'touch /tmp/x'\ntR."
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
            for n, data in ((payload.decode("latin-1"), b"weights"), ("config.json", b"{}")):
                ti = tarfile.TarInfo(n)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
        cases.append((f"polyglot-tar-{fmt}.tar", buf.getvalue()))
    for header_len in (0x0280, 0x0380, 0x0480):
        header = b'{"__metadata__":{"format":"pt"}}'.ljust(header_len, b" ")
        cases.append((f"st-{header_len:x}.safetensors", struct.pack("<Q", header_len) + header))
    cases.append(("gguf-pickle.gguf", b"GGUF" + evil_pickle(2)))
    cases.append(("evil.pkl", evil_pickle()))
    cases.append(("benign.pkl", benign_pickle()))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("archive/data.pkl", evil_pickle(2))
    cases.append(("pickle-then-zip.bin", evil_pickle(2) + zbuf.getvalue()))
    cases.append(("zip-then-pickle.bin", zbuf.getvalue() + evil_pickle(2)))
    return cases


def _summary(fr: Any) -> tuple[Any, ...]:
    return (fr.format, tuple(fr.formats), tuple(sorted(rule_ids(fr))), fr.coverage)


def _compare_one(name: str, inspect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _summary(inspect())
    with monkeypatch.context() as m:
        m.setattr(detect, "sniff_reporting", reference_sniff)
        ref = _summary(inspect())
    assert real == ref, name


def test_the_registry_is_the_table() -> None:
    assert [h.name for h in registry.handlers()] == [n for n, _, _ in SNIFF_ORDER]
    assert [h.name for h in reference_handlers()] == [n for n, _, _ in SNIFF_ORDER]  # the table's own rows
    pickle_at = [n for n, _, _ in SNIFF_ORDER].index("pickle")
    assert registry.SNIFFED_BEFORE_PICKLE == frozenset(n for n, _, _ in SNIFF_ORDER[:pickle_at])
    for name, _, _ in SNIFF_ORDER:
        assert registry.by_name(name).name == name


def test_names_claim_the_same_handlers() -> None:
    def reference_claimed(name: str) -> list[str]:
        base = name.lower().rsplit("/", 1)[-1]
        best: list[str] = []
        best_len = 0
        for h in reference_handlers():
            for ending in h.claims:
                if base.endswith(ending) and len(ending) >= best_len:
                    if len(ending) > best_len:
                        best, best_len = [], len(ending)
                    best.append(h.name)
        return best

    names = {p.name for p in _fixture_files()} | {f"x{e}" for h in reference_handlers() for e in h.claims}
    for name in sorted(names):
        assert [h.name for h in detect.claimed_handlers(name)] == reference_claimed(name), name


def test_every_fixture_and_edge_case_is_sniffed_as_the_table_says() -> None:
    for p in _fixture_files():
        real, ref = (
            detect.sniff_reporting(FileReader(p, name=p.name)),
            reference_sniff(FileReader(p, name=p.name)),
        )
        assert (real[0] and real[0].name, real[1]) == (ref[0] and ref[0].name, ref[1]), p
    for name, data in _edge_cases():
        if not data:
            continue
        real, ref = detect.sniff_reporting(BytesReader(data, name)), reference_sniff(BytesReader(data, name))
        assert (real[0] and real[0].name, real[1]) == (ref[0] and ref[0].name, ref[1]), name


@pytest.mark.slow
@pytest.mark.parametrize(
    "family", sorted({p.relative_to(REPO / "fixtures").parts[0] for p in _fixture_files()})
)
def test_every_fixture_is_inspected_the_same(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for p in _fixture_files():
        if p.relative_to(REPO / "fixtures").parts[0] == family:
            _compare_one(str(p), lambda p=p: inspect_file(p), monkeypatch)


@pytest.mark.slow
def test_every_edge_case_is_inspected_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, data in _edge_cases():
        _compare_one(name, lambda name=name, data=data: inspect_bytes(data, name), monkeypatch)
