"""Cheap necessary conditions for sniffers whose modules the registry imports only when they can claim.

Each gate is False only where its handler's own sniffer is False too (the first check that sniffer makes, or a
magic-number prefix it requires), so a file no gate lets through never imports that handler's module. The real
sniffer still decides when the gate passes. Two sniffers (HDF5, safetensors) live here whole: their handler
modules use these very functions, so the gate is the sniffer. ``tests/core/test_startup_registry_split.py``
checks every gate against its sniffer over the fixture corpus and the edge cases of the registry differential
test, and the constants below against the handler modules' own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..io.reader import Reader
from .parsers.tar_header import BLOCK, checksum_ok, looks_like_tar_header
from .zip.listing import list_names
from .zip.listing import looks_like_zip as looks_like_zip

# looks_like_zip: the first check of every zip-layout sniffer, and the generic zip sniffer itself

LFS_HEAD = (
    b"version https://git-lfs.github.com/spec/",
    b"version https://hawser.github.com/spec/",
)  # code_files
MACHO_MAGICS = (
    b"\xfe\xed\xfa\xce",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xcf\xfa\xed\xfe",
)  # code_files._MACHO
NATIVE_MAGICS = frozenset(
    (b"\x7fELF", *MACHO_MAGICS, b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca")
)  # + fat Mach-O
GGUF_MAGIC = b"GGUF"  # gguf_file.MAGIC
NPY_MAGIC = b"\x93NUMPY"  # numpy_npy.MAGIC
SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"  # sevenzip.MAGIC
GZIP_MAGIC = b"\x1f\x8b\x08"  # compressed.GZIP_MAGIC
XZ_MAGIC = b"\xfd7zXZ\x00"  # compressed.XZ_MAGIC
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # compressed.ZSTD_MAGIC
LZ4_MAGIC = b"\x04\x22\x4d\x18"  # compressed.LZ4_MAGIC
TORCH_MAGIC_LONG = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch_legacy.MAGIC_LONG
TORCH_PROTOCOL_PICKLE = b"M\xe9\x03."  # torch_legacy.PROTOCOL_PICKLE
COREML_BLOB_VERSION = 2  # coreml_file.BLOB_VERSION
HDF5_SIG = b"\x89HDF\r\n\x1a\n"
REMOTE_PROBE_LIMIT = 1 << 16
HDF5_NAMES = (".h5", ".hdf5", ".keras", ".he5", ".nc")
SAFETENSORS_SNIFF_MAX_LEN = 1 << 40
SAFETENSORS_WS = b" \t\r\n"
ONNX_MODEL_FIELDS = {
    1: 0,
    2: 2,
    3: 2,
    4: 2,
    5: 0,
    6: 2,
    7: 2,
    8: 2,
    14: 2,
    20: 2,
    25: 2,
    26: 2,
}  # onnx_model._MODEL_FIELDS
TF_PBTXT_TOP_FIELDS = ("saved_model_schema_version", "meta_graphs")  # tensorflow.tf_pbtxt.TOP_FIELDS
TORCHSERVE_MANIFEST = "MAR-INF/MANIFEST.json"  # torchserve_mar.MANIFEST
TORCHSCRIPT_PICKLES = ("/constants.pkl", "/bytecode.pkl")  # torchscript._sniff
KERAS_CONFIG = "config.json"  # keras_zip._sniff
SKOPS_SCHEMA = "schema.json"  # skops_file.SCHEMA
CATBOOST_MAGIC = b"CBM1"  # tree_models._CBM_MAGIC
PYTHON_WORDS = (b"import ", b"from ", b"def ", b"class ", b"#!")  # python_ast._PY_LINE, the shebang
XGB_PARAM = 136  # tree_models._XGB_PARAM: the legacy binary header before its two name lengths


# zip layouts: each sniffer reads the central directory's names after ``looks_like_zip``; the gate asks the same
# cached listing for a name that sniffer requires (issue #13: a torch checkpoint passed every zip gate and
# imported the TorchScript, torch.package, TorchServe, torch.export, Keras, skops and npz modules)


def _zip_with(head: bytes, reader: Reader, wanted: Callable[[str], bool]) -> bool:
    return looks_like_zip(head, reader) and any(wanted(n) for n in list_names(reader))


def pt2_layout(head: bytes, reader: Reader) -> bool:
    """torch.export: a ``<root>/archive_format`` record (``pt2_archive._ROOT``)."""
    return _zip_with(head, reader, lambda n: "/archive_format" in n)


def torch_package_layout(head: bytes, reader: Reader) -> bool:
    """torch.package: a ``<root>/.data/extern_modules`` record (``torch_package._MARKER``)."""
    return _zip_with(head, reader, lambda n: "/.data/extern_modules" in n)


def torchserve_layout(head: bytes, reader: Reader) -> bool:
    return _zip_with(head, reader, lambda n: n == TORCHSERVE_MANIFEST)


def torchscript_layout(head: bytes, reader: Reader) -> bool:
    """TorchScript: ``<root>/code/…``, ``<root>/constants.pkl`` or ``<root>/bytecode.pkl``."""
    return _zip_with(head, reader, lambda n: "/code/" in n or n.endswith(TORCHSCRIPT_PICKLES))


def keras_zip_layout(head: bytes, reader: Reader) -> bool:
    """Keras v3: a root ``config.json`` (names cut at NUL, as Python's zipfile reads them)."""
    return _zip_with(head, reader, lambda n: n.startswith(KERAS_CONFIG))


def skops_layout(head: bytes, reader: Reader) -> bool:
    return _zip_with(head, reader, lambda n: n.startswith(SKOPS_SCHEMA))


def npz_layout(head: bytes, reader: Reader) -> bool:
    """npz: every member a ``.npy`` (so at least one)."""
    return _zip_with(head, reader, lambda n: n.endswith(".npy"))


def tar_layout(head: bytes, reader: Reader) -> bool:
    """The TorchServe tgz, NeMo and generic tar sniffers start with ``looks_like_tar_header``."""
    return looks_like_tar_header(head)


def native_binary(head: bytes, reader: Reader) -> bool:
    """ELF, PE (``MZ``, then its ``PE`` header), Mach-O, fat Mach-O: ``code_files.native_kind``'s magic numbers."""
    return head[:4] in NATIVE_MAGICS or head[:2] == b"MZ"


def lfs_pointer(head: bytes, reader: Reader) -> bool:
    return head.startswith(LFS_HEAD)


def legacy_torch_tar(head: bytes, reader: Reader) -> bool:
    return len(head) >= BLOCK and checksum_ok(head[:BLOCK])


def legacy_torch_stream(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x80" and (TORCH_MAGIC_LONG in head[:32] or TORCH_PROTOCOL_PICKLE in head[1:])


def gguf(head: bytes, reader: Reader) -> bool:
    return head[:4] == GGUF_MAGIC


def npy(head: bytes, reader: Reader) -> bool:
    return head.startswith(NPY_MAGIC)


def sevenzip(head: bytes, reader: Reader) -> bool:
    return head[:6] == SEVENZIP_MAGIC


def gzip(head: bytes, reader: Reader) -> bool:
    return head[:3] == GZIP_MAGIC


def bzip2(head: bytes, reader: Reader) -> bool:
    return head[:3] == b"BZh"


def joblib_zfile(head: bytes, reader: Reader) -> bool:
    return head[:2] == b"ZF"


def lz4(head: bytes, reader: Reader) -> bool:
    return head[:4] == LZ4_MAGIC


def lzma_alone(head: bytes, reader: Reader) -> bool:
    return head[:2] == b"\x5d\x00"


def xz(head: bytes, reader: Reader) -> bool:
    return head[:6] == XZ_MAGIC


def zlib(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x78"


def zstd(head: bytes, reader: Reader) -> bool:
    return head[:4] == ZSTD_MAGIC


def tflite(head: bytes, reader: Reader) -> bool:
    return head[4:8] == b"TFL3"


def coreml_model(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x08"


def coreml_weights(head: bytes, reader: Reader) -> bool:
    return (
        reader.size >= 128 and len(head) >= 68 and struct.unpack_from("<I", head, 4)[0] == COREML_BLOB_VERSION
    )


def sentencepiece(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x0a"


def tf_pbtxt(head: bytes, reader: Reader) -> bool:
    """The text SavedModel sniffer takes a file whose first word is one of these fields."""
    return any(f.encode() in head[:4096] for f in TF_PBTXT_TOP_FIELDS)


# binary formats sniffed after the pickle one: the first check each sniffer makes


def catboost(head: bytes, reader: Reader) -> bool:
    return head[:4] == CATBOOST_MAGIC


def executorch(head: bytes, reader: Reader) -> bool:
    """A flatbuffer whose file identifier is ``ET`` and two digits (``pt2_archive._PTE``)."""
    return head[4:6] == b"ET"


def xgboost_binary(head: bytes, reader: Reader) -> bool:
    """The legacy binary model's first name length sits past its fixed parameter block."""
    return len(head) >= XGB_PARAM + 8


def xgboost_ubjson(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"{"


def msgpack(head: bytes, reader: Reader) -> bool:
    """A map or an array type byte first (fixmap, fixarray, array16/32, map16/32)."""
    return bool(head) and (0x80 <= head[0] <= 0x9F or head[0] in (0xDC, 0xDD, 0xDE, 0xDF))


def lightgbm_text(head: bytes, reader: Reader) -> bool:
    """LightGBM's text model starts ``tree`` then ``version=v…`` (``tree_models._LGB_HEAD``)."""
    return head[:4] == b"tree"


# code sniffed after the pickle one


def notebook(head: bytes, reader: Reader) -> bool:
    return b'"cells"' in head


def script(head: bytes, reader: Reader) -> bool:
    """A shebang line (``code_files._SHEBANG``)."""
    return head[:2] == b"#!"


def python_source(head: bytes, reader: Reader) -> bool:
    """A ``.py`` name, a shebang, or a word that starts a statement ``python_ast.looks_like_python`` looks
    for: the sniffer claims nothing else."""
    return str(getattr(reader, "name", "")).lower().endswith(".py") or any(w in head for w in PYTHON_WORDS)


# protobuf sniffers: the first tag byte each requires


def tf_saved_model(head: bytes, reader: Reader) -> bool:
    return head[:1] in (b"\x08", b"\x12")


def keras_metadata_pb(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x0a"


def tf_fingerprint(head: bytes, reader: Reader) -> bool:
    return head[:1] == b"\x08" and reader.size <= 512


def tf_bundle_index(head: bytes, reader: Reader) -> bool:
    return reader.size >= 48 and head[:2] == b"\x00\x00"


def onnx(head: bytes, reader: Reader) -> bool:
    """ir_version first, or (fields in any order) a first tag that is a ModelProto field other than ir_version."""
    if len(head) < 4:
        return False
    tag = head[0]
    return tag == 0x08 or (ONNX_MODEL_FIELDS.get(tag >> 3) == tag & 7 and tag >> 3 != 1)


def onnx_ort(head: bytes, reader: Reader) -> bool:
    return head[4:8] == b"ORTM"


# sniffers split out of their handler modules whole (the handler uses this very function: an exact gate)


def find_superblock(head: bytes, reader: Reader) -> int | None:
    """Offset of the HDF5 signature: 0 or a power of two from 512 up (the user block size).

    HDF5 files are opened by name (.h5 / .keras loaders), so a remote file with
    another name is probed only within its first 64 KiB: each probe is a round trip.
    """
    if head[:8] == HDF5_SIG:
        return 0
    limit = reader.size
    if reader.remote and not reader.name.lower().endswith(HDF5_NAMES):
        limit = min(limit, REMOTE_PROBE_LIMIT)
    off = 512
    while off + 8 <= limit:
        chunk = head[off : off + 8] if off + 8 <= len(head) else reader.read(off, 8)
        if chunk == HDF5_SIG:
            return off
        off *= 2
    return None


def keras_h5(head: bytes, reader: Reader) -> bool:
    return find_superblock(head, reader) is not None


def safetensors(head: bytes, reader: Reader) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head)
    if n < 2 or n > SAFETENSORS_SNIFF_MAX_LEN:
        return False
    return head[8:].lstrip(SAFETENSORS_WS)[:1] == b"{"
