"""The format registry is one explicit ordered list: nothing forgotten, no duplicate, sniffing stays import-light."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import scanner.formats as formats_pkg
from scanner.formats.interface import FormatHandler
from scanner.formats.registry import HANDLERS, by_name, handlers
from tests.harness import REPO


def _declared() -> dict[str, list[FormatHandler]]:
    """Module -> the FormatHandler objects at its top level, for every module under scanner/formats."""
    out: dict[str, list[FormatHandler]] = {}
    for mod in pkgutil.walk_packages(formats_pkg.__path__, prefix="scanner.formats."):
        found = [v for v in vars(importlib.import_module(mod.name)).values() if isinstance(v, FormatHandler)]
        if found:
            out[mod.name] = found
    return out


def test_every_declared_handler_is_registered() -> None:
    declared = _declared()
    assert len(declared) >= 20  # the walk really found the handler modules
    registered = {id(h) for h in HANDLERS}
    forgotten = [f"{m}:{h.name}" for m, hs in declared.items() for h in hs if id(h) not in registered]
    assert forgotten == []


def test_handler_names_are_unique_and_resolvable() -> None:
    names = [h.name for h in handlers()]
    assert len(names) == len(set(names))
    assert all(by_name(n) is h for n, h in zip(names, handlers(), strict=True))


def test_sniff_order_puts_specific_layouts_first() -> None:
    order = [h.name for h in handlers()]
    for specific, generic in [
        ("pytorch-zip", "zip-archive"),
        ("torchscript", "pytorch-zip"),
        ("numpy-npz", "zip-archive"),
        ("pytorch-legacy", "pickle"),
        ("pytorch-legacy-tar", "tar-archive"),
        ("torchserve-tgz", "tar-archive"),
        ("safetensors", "zip-archive"),
        ("pickle", "text"),
    ]:
        assert order.index(specific) < order.index(generic), (specific, generic)
    assert order[-1] == "text"


def test_registry_and_a_pickle_sniff_import_no_heavy_library() -> None:
    heavy = ["onnx", "h5py", "py7zr", "zstandard", "lz4", "numpy", "jinja2", "google.protobuf", "msgpack"]
    code = (
        "import pickle, sys\n"
        "from scanner.formats.detect import sniff\n"
        "from scanner.io.reader import BytesReader\n"
        "assert sniff(BytesReader(pickle.dumps({'a': 1}), 'm.pkl')).name == 'pickle'\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
