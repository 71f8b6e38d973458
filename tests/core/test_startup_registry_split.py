"""Start-up (issue #13): the format registry imports a handler's module only when that handler can claim the file.

``registry.handlers()`` are stand-ins built from ``registry.ROWS``: a row's gate (``sniff_gates``) is a cheap
necessary condition of the handler's own sniffer, its inspector is imported when it runs. Checked here:

- a one-pickle scan by the real console script imports no module of a format it never inspects;
- every gate lets through everything its sniffer claims (fixture corpus and the differential test's edge cases),
  and an exact gate is the sniffer itself;
- a stand-in has the name, family, name endings and ``can_carry_code`` of the handler it stands for, and
  ``sniff_gates``' magic numbers are the handler modules' own.

The dispatch itself (which handler claims what, and what the whole inspection finds) is guarded by
``tests/formats/test_registry_differential.py``.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.formats import registry, sniff_gates
from scanner.formats.interface import SNIFF_BYTES
from scanner.io.reader import BytesReader, FileReader
from tests.formats.test_registry_differential import _edge_cases, _fixture_files

_DUMP = """
import atexit, runpy, sys
out, script = sys.argv[1], sys.argv[2]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = [script, *sys.argv[3:]]
runpy.run_path(script, run_name="__main__")
"""

# handler modules whose sniffers are gated (or run after the pickle one): a pickle never imports them
NOT_FOR_A_PICKLE = (
    "scanner.formats.compressed",
    "scanner.formats.coreml_file",
    "scanner.formats.data_files",
    "scanner.formats.gguf_file",
    "scanner.formats.keras.keras_zip",
    "scanner.formats.msgpack_file",
    "scanner.formats.nemo_file",
    "scanner.formats.numpy_npy",
    "scanner.formats.sentencepiece_file",
    "scanner.formats.sevenzip",
    "scanner.formats.skops_file",
    "scanner.formats.tensorflow.tflite",
    "scanner.formats.tensorflow.tf_pbtxt",
    "scanner.formats.torch.pt2_archive",
    "scanner.formats.torch.torch_package",
    "scanner.formats.torch.torchscript",
    "scanner.formats.tree_models",
    "scanner.formats.zip.handler",
)


def _console_script() -> Path:
    script = Path(sys.executable).with_name("modelward")
    if not script.exists():
        pytest.skip("no modelward console script beside this interpreter")
    return script


def _modules(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    dump = tmp_path / "modules.txt"
    res = subprocess.run(
        [sys.executable, "-c", _DUMP, str(dump), str(_console_script()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "CI"},
        stdin=subprocess.DEVNULL,
    )
    return res, set(dump.read_text().split("\n")) if dump.exists() else set()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_scan_imports_no_other_format(tmp_path: Path, protocol: int) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=protocol))
    res, loaded = _modules(tmp_path, "scan", "-q", str(small))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ALLOW" in res.stdout
    assert "scanner.formats.pickle.handler" in loaded  # the dump is real: the pickle was inspected
    assert "scanner.formats.registry" in loaded
    assert sorted(m for m in NOT_FOR_A_PICKLE if m in loaded) == []


SNIFF_A_PICKLE = """
import pickle, sys
from scanner.formats.detect import sniff
from scanner.io.reader import BytesReader
for protocol in (2, 3, 4, 5):
    data = pickle.dumps({"coef": [0.1, 0.2], "name": "x" * 300, "n": 10**30}, protocol=protocol)
    assert sniff(BytesReader(data, "m.pkl")).name == "pickle"
print(" ".join(sorted(m for m in sys.modules if m.startswith("scanner.formats."))))
"""


def test_sniffing_a_pickle_imports_only_the_gates() -> None:
    """Whatever else the process imports (the repository checks do import some format modules), sniffing a
    binary pickle walks all 40 sniffers ahead of the pickle one and imports no handler module but the pickle's."""
    out = subprocess.run(
        [sys.executable, "-c", SNIFF_A_PICKLE], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = {m for m in out.stdout.split() if not m.startswith("scanner.formats.pickle")}
    assert loaded == {
        "scanner.formats.detect",
        "scanner.formats.interface",
        "scanner.formats.parsers",
        "scanner.formats.parsers.tar_header",
        "scanner.formats.registry",
        "scanner.formats.sniff_gates",
        "scanner.formats.zip",
        "scanner.formats.zip.listing",
    }


@pytest.mark.slow
def test_a_zip_scan_imports_its_inspector_on_demand(tmp_path: Path) -> None:
    """The other way round: the stand-in really imports the handler module when its format is inspected."""
    import zipfile

    z = tmp_path / "plain.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    res, loaded = _modules(tmp_path, "scan", "-q", str(z))
    assert "scanner.formats.zip.handler" in loaded, res.stdout + res.stderr
    assert "scanner.formats.data_files" in loaded  # its member, sniffed as text
    assert "scanner.formats.gguf_file" not in loaded


def test_stand_ins_describe_their_handlers() -> None:
    for row, stand_in in zip(registry.ROWS, registry.handlers(), strict=True):
        real = registry.real(row.module, row.attr)
        assert (stand_in.name, stand_in.family, stand_in.claims, stand_in.can_carry_code) == (
            real.name,
            real.family,
            real.claims,
            real.can_carry_code,
        ), row.name
        if row.exact:
            assert stand_in.sniff is real.sniff, row.name  # an exact gate is the sniffer itself


def test_gate_constants_are_the_handler_modules_own() -> None:
    def const(module: str, name: str) -> object:
        return getattr(importlib.import_module(f"scanner.formats.{module}"), name)

    assert sniff_gates.LFS_HEAD == const("code_files", "_LFS_HEAD")
    assert set(sniff_gates.MACHO_MAGICS) == set(const("code_files", "_MACHO"))  # type: ignore[call-overload]
    assert sniff_gates.GGUF_MAGIC == const("gguf_file", "MAGIC")
    assert sniff_gates.NPY_MAGIC == const("numpy_npy", "MAGIC")
    assert sniff_gates.SEVENZIP_MAGIC == const("sevenzip", "MAGIC")
    assert sniff_gates.GZIP_MAGIC == const("compressed", "GZIP_MAGIC")
    assert sniff_gates.XZ_MAGIC == const("compressed", "XZ_MAGIC")
    assert sniff_gates.ZSTD_MAGIC == const("compressed", "ZSTD_MAGIC")
    assert sniff_gates.LZ4_MAGIC == const("compressed", "LZ4_MAGIC")
    assert sniff_gates.TORCH_MAGIC_LONG == const("torch_legacy", "MAGIC_LONG")
    assert sniff_gates.TORCH_PROTOCOL_PICKLE == const("torch_legacy", "PROTOCOL_PICKLE")
    assert sniff_gates.COREML_BLOB_VERSION == const("coreml_file", "BLOB_VERSION")
    assert sniff_gates.ONNX_MODEL_FIELDS == const("onnx.onnx_model", "_MODEL_FIELDS")
    assert sniff_gates.TF_PBTXT_TOP_FIELDS == const("tensorflow.tf_pbtxt", "TOP_FIELDS")
    assert sniff_gates.TORCHSERVE_MANIFEST == const("torchserve_mar", "MANIFEST")
    assert sniff_gates.SKOPS_SCHEMA == const("skops_file", "SCHEMA")
    assert sniff_gates.CATBOOST_MAGIC == const("tree_models", "_CBM_MAGIC")
    assert sniff_gates.XGB_PARAM == const("tree_models", "_XGB_PARAM")
    assert const("code_files", "_SHEBANG").pattern.startswith(rb"^#!")  # type: ignore[attr-defined]
    py_line = importlib.import_module("scanner.analysis.python_ast")._PY_LINE.pattern
    starts = [alt.split(" ")[0] + " " for alt in py_line.removeprefix("^(?:").removesuffix(")").split("|")]
    assert starts == ["import ", "from ", "def ", "class ", "async "]  # "async def " holds "def "
    assert all(w.decode() in py_line for w in sniff_gates.PYTHON_WORDS[:-1])
    assert const("tree_models", "_LGB_HEAD").pattern.startswith(rb"^tree")  # type: ignore[attr-defined]
    assert const("torch.pt2_archive", "_PTE").pattern == rb"^.{4}ET[0-9]{2}"  # type: ignore[attr-defined]
    assert sniff_gates.KERAS_CONFIG in const("keras.keras_zip", "KERAS_MEMBERS")  # type: ignore[operator]
    assert const("torch.pt2_archive", "_ROOT").pattern == r"^([^/]+)/archive_format$"  # type: ignore[attr-defined]
    assert const("torch.torch_package", "_MARKER").pattern == r"^([^/]+)/\.data/extern_modules$"  # type: ignore[attr-defined]


def _gate_misses(readers: list[tuple[str, object]]) -> list[str]:
    """Files a handler's own sniffer claims but its gate turns away (each would be mis-dispatched)."""
    gated = [(r, registry.real(r.module, r.attr)) for r in registry.ROWS if r.gate is not None]
    misses = []
    for label, reader in readers:
        head = reader.head(SNIFF_BYTES)  # type: ignore[attr-defined]
        for row, real in gated:
            try:
                claims = real.sniff(head, reader)
            except Exception:  # a crashing sniffer must crash behind its gate too: the differential test
                continue
            if claims and not (row.gate and row.gate(head, reader)):
                misses.append(f"{row.name}: {label}")
    return misses


def test_every_gate_passes_what_its_sniffer_claims_in_the_fixtures() -> None:
    files = _fixture_files()
    assert len(files) > 500
    assert _gate_misses([(str(p), FileReader(p, name=p.name)) for p in files]) == []


def test_every_gate_passes_what_its_sniffer_claims_in_the_edge_cases() -> None:
    cases = [(n, BytesReader(d, n)) for n, d in _edge_cases() if d]
    assert _gate_misses(cases) == []  # type: ignore[arg-type]


def test_gates_pass_magic_heads_padded_out() -> None:
    """Each magic a gate keys on, followed by filler of several kinds: the gate never decides alone."""
    heads = [
        b"\x7fELF\x02\x01\x01",
        b"MZ",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe\x00\x00\x00\x02",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:",
        b"GGUF",
        b"\x93NUMPY",
        b"7z\xbc\xaf\x27\x1c",
        b"\x1f\x8b\x08",
        b"BZh9",
        b"ZF0x10",
        b"\x04\x22\x4d\x18",
        b"\x5d\x00\x00\x80\x00",
        b"\xfd7zXZ\x00",
        b"\x78\x9c",
        b"\x28\xb5\x2f\xfd",
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
        b"\x80\x02M\xe9\x03.\x80\x02",
        b"\x00\x00\x00\x00TFL3",
        b"\x08\x04",
        b"\x08\x07\x12\x04\x0a\x02\x08\x01",
        b"\x12\x04\x0a\x02\x08\x01",
        b"\x3a\x00\x08\x07",
        b"\x0a\x05",
        b"\x00\x00\x05\x08\x01",
        b"\x00\x00\x00\x00ORTM",
        b"\x01\x00\x00\x00\x02\x00\x00\x00",
        b"meta_graphs {",
        b"# c\nsaved_model_schema_version: 1\n",
    ]
    fills = [b"", b"\x00" * 300, b"\xff" * 300, bytes(range(256)) * 2, b" {} " * 100]
    cases = [(f"{h[:8]!r}+{i}", BytesReader(h + f, "x")) for h in heads for i, f in enumerate(fills)]
    assert _gate_misses(cases) == []  # type: ignore[arg-type]
