"""Every format handler, in sniff order: the first whose sniffer claims the content inspects it.

Adding a format is one new module defining its ``FormatHandler`` and one line
here. Order matters only where two sniffers could claim the same bytes: the more
specific layout goes first (a PyTorch zip before a generic zip, a TorchServe tgz
before a gzip), lenient text-like sniffers last. Importing this module imports
the handler modules, so they keep heavy libraries (onnx, h5py, py7zr, jinja2, …)
inside the functions that inspect.
"""

from __future__ import annotations

from . import (
    code_files,
    compressed,
    coreml_file,
    data_files,
    gguf_file,
    msgpack_file,
    nemo_file,
    numpy_npy,
    safetensors_file,
    sentencepiece_file,
    sevenzip,
    skops_file,
    tar_archive,
    torch_legacy,
    torchserve_mar,
    tree_models,
)
from .interface import FormatHandler
from .keras import keras_h5, keras_zip
from .onnx import onnx_model
from .pickle import handler as pickle_handler
from .tensorflow import tf_pbtxt, tf_savedmodel, tflite
from .torch import pt2_archive, torch_package, torch_zip, torchscript
from .zip import handler as zip_handler

HANDLERS: tuple[FormatHandler, ...] = (
    code_files.NATIVE_BINARY,  # ELF/PE/Mach-O: a self-extracting exe is also a zip, judged as both
    code_files.LFS_POINTER,  # tiny text that would otherwise read as "text"
    pt2_archive.TORCH_EXPORT_PT2,  # zip layouts with a known loader: before the generic zip
    torch_package.TORCH_PACKAGE,
    torchserve_mar.TORCHSERVE_MAR,
    torchscript.TORCHSCRIPT,  # a TorchScript zip is also a PyTorch zip
    gguf_file.GGUF,
    keras_h5.KERAS_H5,  # HDF5, also behind a user block
    keras_zip.KERAS_ZIP,
    skops_file.SKOPS,  # a zip with schema.json: before npz (it holds .npy members) and the generic zip
    numpy_npy.NUMPY_NPY,
    numpy_npy.NUMPY_NPZ,  # npz is a zip
    torch_zip.PYTORCH_ZIP,
    sevenzip.SEVENZIP_ARCHIVE,
    compressed.BZIP2,
    compressed.GZIP,
    compressed.JOBLIB_ZFILE,
    compressed.LZ4_FRAME,
    compressed.LZMA_ALONE,
    torch_legacy.PYTORCH_LEGACY,  # starts with a pickle: before the plain pickle
    torch_legacy.PYTORCH_LEGACY_TAR,  # a tar with a known layout: before the generic tar
    compressed.XZ,
    compressed.ZLIB,
    compressed.ZSTD,
    torchserve_mar.TORCHSERVE_TGZ,  # tars with a known layout: before the generic tar
    nemo_file.NEMO_ARCHIVE,
    safetensors_file.SAFETENSORS,  # before zip: a safetensors/zip polyglot is judged as both
    tar_archive.TAR_ARCHIVE,
    zip_handler.ZIP_ARCHIVE,  # every zip no layout above claimed
    tflite.TFLITE,
    coreml_file.COREML,
    tf_savedmodel.KERAS_METADATA_PB,
    tf_savedmodel.TF_SAVEDMODEL,
    tf_pbtxt.TF_SAVEDMODEL_TEXT,  # saved_model.pbtxt: loaders fall back to it without saved_model.pb
    onnx_model.ONNX,  # protobuf sniffers: structure checks, before the looser ones below
    onnx_model.ONNX_ORT,
    tf_savedmodel.TF_CHECKPOINT_INDEX,
    tf_savedmodel.TF_FINGERPRINT,
    sentencepiece_file.SENTENCEPIECE,
    coreml_file.COREML_WEIGHTS,
    pickle_handler.PICKLE,  # a pickle may be any bytes: after every format with a magic number
    tree_models.CATBOOST,
    pt2_archive.EXECUTORCH_PTE,
    tree_models.XGBOOST_BINARY,
    tree_models.XGBOOST_UBJSON,
    msgpack_file.MSGPACK,
    tree_models.LIGHTGBM_TEXT,  # text formats, most specific first
    code_files.NOTEBOOK,
    data_files.IMAGE,
    data_files.JSON,
    code_files.SCRIPT,
    code_files.PYTHON_SOURCE,
    data_files.TEXT,  # claims any text: last
)


def handlers() -> tuple[FormatHandler, ...]:
    """Every handler in sniff order."""
    return HANDLERS


SNIFFED_BEFORE_PICKLE = frozenset(h.name for h in HANDLERS[: HANDLERS.index(pickle_handler.PICKLE)])
"""Names of the handlers whose sniffers run ahead of the pickle one: what they claim is never offered to it."""


def by_name(name: str) -> FormatHandler:
    for h in HANDLERS:
        if h.name == name:
            return h
    raise KeyError(name)
