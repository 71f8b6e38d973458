"""Every format handler, in sniff order: the first whose sniffer claims the content inspects it.

Adding a format is one new module defining its ``FormatHandler`` and one row here. Order matters only where
two sniffers could claim the same bytes: the more specific layout goes first (a PyTorch zip before a generic
zip, a TorchServe tgz before a gzip), lenient text-like sniffers last.

Importing this module imports no handler module (issue #13: importing all of them was ~90 M instructions of a
one-pickle scan). Each row names the module and attribute of the handler; ``handlers()`` gives stand-ins with
the handler's name, family, claims and ``can_carry_code``, whose ``inspect`` imports the module and runs the
real inspector, and whose ``sniff`` runs the real sniffer, importing its module first. A row may carry a gate
from ``sniff_gates``: a cheap necessary condition of that sniffer (its first check or a magic number it
requires), so a file the gate turns away never imports the module; an exact gate *is* the sniffer.
``HANDLERS`` (resolved on first access) is the tuple of the handler modules' own objects, in the same order.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from . import sniff_gates as g
from .interface import FormatHandler, InspectContext

if TYPE_CHECKING:
    from ..io.reader import Reader

Sniffer = Callable[[bytes, "Reader"], bool]


class Row(NamedTuple):
    """One handler: where it is defined, what the dispatcher needs before importing it, and its gate."""

    name: str
    module: str  # relative to scanner.formats
    attr: str
    family: str
    claims: tuple[str, ...] = ()
    can_carry_code: bool = False
    gate: Sniffer | None = None
    exact: bool = False  # the gate is the handler's sniffer itself


# fmt: off
ROWS: tuple[Row, ...] = (
    # ELF/PE/Mach-O: a self-extracting exe is also a zip, judged as both
    Row("native-binary", ".code_files", "NATIVE_BINARY", "native", claims=(".so", ".dll", ".dylib", ".pyd", ".exe"), can_carry_code=True, gate=g.native_binary),
    Row("lfs-pointer", ".code_files", "LFS_POINTER", "lfs-pointer", gate=g.lfs_pointer),  # tiny text that would otherwise read as "text"
    # zip layouts with a known loader: before the generic zip
    Row("torch-export-pt2", ".torch.pt2_archive", "TORCH_EXPORT_PT2", "pt2", claims=(".pt2",), can_carry_code=True, gate=g.pt2_layout),
    Row("torch-package", ".torch.torch_package", "TORCH_PACKAGE", "pickle", claims=(".pt", ".package"), can_carry_code=True, gate=g.torch_package_layout),
    Row("torchserve-mar", ".torchserve_mar", "TORCHSERVE_MAR", "torchserve", claims=(".mar",), can_carry_code=True, gate=g.torchserve_layout),
    # a TorchScript zip is also a PyTorch zip
    Row("torchscript", ".torch.torchscript", "TORCHSCRIPT", "pickle", claims=(".ptl", ".torchscript"), can_carry_code=True, gate=g.torchscript_layout),
    Row("gguf", ".gguf_file", "GGUF", "gguf", claims=(".gguf",), gate=g.gguf),
    Row("keras-h5", ".keras.keras_h5", "KERAS_H5", "keras", claims=(".h5", ".hdf5", ".keras"), can_carry_code=True, gate=g.keras_h5, exact=True),  # also behind a user block
    Row("keras-zip", ".keras.keras_zip", "KERAS_ZIP", "keras", claims=(".keras",), can_carry_code=True, gate=g.keras_zip_layout),
    # a zip with schema.json: before npz (it holds .npy members) and the generic zip
    Row("skops", ".skops_file", "SKOPS", "skops", claims=(".skops",), can_carry_code=True, gate=g.skops_layout),
    Row("numpy-npy", ".numpy_npy", "NUMPY_NPY", "numpy", claims=(".npy",), can_carry_code=True, gate=g.npy),
    Row("numpy-npz", ".numpy_npy", "NUMPY_NPZ", "numpy", claims=(".npz",), can_carry_code=True, gate=g.npz_layout),  # npz is a zip
    Row("pytorch-zip", ".torch.torch_zip", "PYTORCH_ZIP", "pickle", claims=(".pt", ".pth", ".bin", ".ckpt"), can_carry_code=True, gate=g.looks_like_zip),
    Row("7z-archive", ".sevenzip", "SEVENZIP_ARCHIVE", "archive", claims=(".7z",), gate=g.sevenzip),
    Row("bzip2", ".compressed", "BZIP2", "compressed", claims=(".bz2", ".tbz2", ".tbz"), gate=g.bzip2),
    Row("gzip", ".compressed", "GZIP", "compressed", claims=(".gz", ".tgz"), gate=g.gzip),
    Row("joblib-zfile", ".compressed", "JOBLIB_ZFILE", "compressed", claims=(".joblib", ".pkl", ".pickle", ".sav"), gate=g.joblib_zfile),
    Row("lz4-frame", ".compressed", "LZ4_FRAME", "compressed", claims=(".lz4",), gate=g.lz4),
    Row("lzma-alone", ".compressed", "LZMA_ALONE", "compressed", claims=(".lzma",), gate=g.lzma_alone),
    # starts with a pickle: before the plain pickle
    Row("pytorch-legacy", ".torch_legacy", "PYTORCH_LEGACY", "pickle", claims=(".pt", ".pth", ".bin", ".ckpt"), can_carry_code=True, gate=g.legacy_torch_stream),
    # a tar with a known layout: before the generic tar
    Row("pytorch-legacy-tar", ".torch_legacy", "PYTORCH_LEGACY_TAR", "pickle", claims=(".pt", ".pth", ".tar"), can_carry_code=True, gate=g.legacy_torch_tar),
    Row("xz", ".compressed", "XZ", "compressed", claims=(".xz", ".txz"), gate=g.xz),
    Row("zlib", ".compressed", "ZLIB", "compressed", claims=(".z",), gate=g.zlib),
    Row("zstd", ".compressed", "ZSTD", "compressed", claims=(".zst", ".zstd", ".tzst"), gate=g.zstd),
    # tars with a known layout: before the generic tar
    Row("torchserve-tgz", ".torchserve_mar", "TORCHSERVE_TGZ", "archive", can_carry_code=True, gate=g.tar_layout),
    Row("nemo-archive", ".nemo_file", "NEMO_ARCHIVE", "archive", can_carry_code=True, gate=g.tar_layout),
    # before zip: a safetensors/zip polyglot is judged as both
    Row("safetensors", ".safetensors_file", "SAFETENSORS", "safetensors", claims=(".safetensors",), gate=g.safetensors, exact=True),
    Row("tar-archive", ".tar_archive", "TAR_ARCHIVE", "archive", claims=(".tar",), gate=g.tar_layout),
    # every zip no layout above claimed
    Row("zip-archive", ".zip.handler", "ZIP_ARCHIVE", "zip", claims=(".zip",), gate=g.looks_like_zip, exact=True),
    Row("tflite", ".tensorflow.tflite", "TFLITE", "tflite", claims=(".tflite",), can_carry_code=True, gate=g.tflite),
    Row("coreml", ".coreml_file", "COREML", "coreml", claims=(".mlmodel",), gate=g.coreml_model),
    Row("keras-metadata-pb", ".tensorflow.tf_savedmodel", "KERAS_METADATA_PB", "tensorflow", can_carry_code=True, gate=g.keras_metadata_pb),
    Row("tf-savedmodel", ".tensorflow.tf_savedmodel", "TF_SAVEDMODEL", "tensorflow", claims=(".pb",), can_carry_code=True, gate=g.tf_saved_model),
    # saved_model.pbtxt: loaders fall back to it without saved_model.pb
    Row("tf-savedmodel-text", ".tensorflow.tf_pbtxt", "TF_SAVEDMODEL_TEXT", "tensorflow", claims=("saved_model.pbtxt",), can_carry_code=True, gate=g.tf_pbtxt),
    # protobuf sniffers: structure checks, before the looser ones below
    Row("onnx", ".onnx.onnx_model", "ONNX", "onnx", claims=(".onnx",), gate=g.onnx),
    Row("onnx-ort", ".onnx.onnx_model", "ONNX_ORT", "onnx", claims=(".ort",), gate=g.onnx_ort),
    Row("tf-checkpoint-index", ".tensorflow.tf_savedmodel", "TF_CHECKPOINT_INDEX", "tensorflow", claims=(".index",), gate=g.tf_bundle_index),
    Row("tf-fingerprint", ".tensorflow.tf_savedmodel", "TF_FINGERPRINT", "tensorflow", gate=g.tf_fingerprint),
    Row("sentencepiece", ".sentencepiece_file", "SENTENCEPIECE", "tokenizer", gate=g.sentencepiece),
    Row("coreml-weights", ".coreml_file", "COREML_WEIGHTS", "coreml", claims=(".bin",), gate=g.coreml_weights),
    # a pickle may be any bytes: after every format with a magic number
    Row("pickle", ".pickle.handler", "PICKLE", "pickle", claims=(".pkl", ".pickle", ".pck", ".pcl", ".dill", ".joblib", ".pt", ".pth", ".ckpt", ".sav"), can_carry_code=True),
    Row("catboost", ".tree_models", "CATBOOST", "catboost", claims=(".cbm",), gate=g.catboost),
    Row("executorch-pte", ".torch.pt2_archive", "EXECUTORCH_PTE", "executorch", claims=(".pte",), gate=g.executorch),
    Row("xgboost-binary", ".tree_models", "XGBOOST_BINARY", "xgboost", claims=(".bin",), gate=g.xgboost_binary),
    Row("xgboost-ubjson", ".tree_models", "XGBOOST_UBJSON", "xgboost", claims=(".ubj", ".bin"), gate=g.xgboost_ubjson),
    Row("msgpack", ".msgpack_file", "MSGPACK", "msgpack", claims=(".msgpack", "lookups.bin"), gate=g.msgpack),
    Row("lightgbm-text", ".tree_models", "LIGHTGBM_TEXT", "text", gate=g.lightgbm_text),  # text formats, most specific first
    Row("notebook", ".code_files", "NOTEBOOK", "notebook", claims=(".ipynb",), can_carry_code=True, gate=g.notebook),
    Row("image", ".data_files", "IMAGE", "image", claims=(".png", ".jpg", ".jpeg", ".gif", ".webp")),
    Row("json", ".data_files", "JSON", "json", claims=(".json",)),
    Row("script", ".code_files", "SCRIPT", "script", can_carry_code=True, gate=g.script),
    Row("python-source", ".code_files", "PYTHON_SOURCE", "python", claims=(".py",), can_carry_code=True, gate=g.python_source),
    Row("text", ".data_files", "TEXT", "text", claims=(".txt", ".md")),  # claims any text: last
)
# fmt: on


@functools.cache
def real(module: str, attr: str) -> FormatHandler:
    """The handler object its module defines (importing the module)."""
    handler: FormatHandler = getattr(importlib.import_module(module, __package__), attr)
    return handler


def _stand_in(row: Row) -> FormatHandler:
    module, attr, gate = row.module, row.attr, row.gate

    def sniff_lazily(head: bytes, reader: Reader) -> bool:
        return real(module, attr).sniff(head, reader)

    def sniff_gated(head: bytes, reader: Reader) -> bool:
        return gate is not None and gate(head, reader) and real(module, attr).sniff(head, reader)

    sniff: Sniffer = sniff_lazily if gate is None else gate if row.exact else sniff_gated

    def inspect(reader: Reader, ctx: InspectContext) -> None:
        real(module, attr).inspect(reader, ctx)

    return FormatHandler(
        row.name, sniff, inspect, family=row.family, claims=row.claims, can_carry_code=row.can_carry_code
    )


_HANDLERS: tuple[FormatHandler, ...] = tuple(_stand_in(r) for r in ROWS)
_BY_NAME = {h.name: h for h in _HANDLERS}


def handlers() -> tuple[FormatHandler, ...]:
    """Every handler in sniff order (stand-ins that import a handler's module when they need it)."""
    return _HANDLERS


SNIFFED_BEFORE_PICKLE = frozenset(r.name for r in ROWS[: [r.name for r in ROWS].index("pickle")])
"""Names of the handlers whose sniffers run ahead of the pickle one: what they claim is never offered to it."""


def by_name(name: str) -> FormatHandler:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(name) from None


def real_handlers() -> tuple[FormatHandler, ...]:
    """The handler modules' own objects, in sniff order (imports every handler module)."""
    return tuple(real(r.module, r.attr) for r in ROWS)


def __getattr__(name: str) -> Any:
    if name == "HANDLERS":  # the eager tuple, for tools and tests that walk the handler modules
        return real_handlers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
