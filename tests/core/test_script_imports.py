"""The scripts beside the package (benchmarks, profile and language measurements, fixture generators) import
names that exist in scanner/: a refactor that moves a name must move their imports too, not break them silently
(they are not imported by any test otherwise)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.harness import REPO

SCRIPTS = sorted(
    p
    for folder in ("benchmarks", "signatures", "fixtures")
    for p in (REPO / folder).rglob("*.py")
    if "__pycache__" not in p.parts
)


def _scanner_imports(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scanner":
            out += [(node.lineno, node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, "") for a in node.names if a.name.split(".")[0] == "scanner"]
    return out


def test_there_are_scripts_to_check() -> None:
    assert sum(bool(_scanner_imports(p)) for p in SCRIPTS) >= 4


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_scanner_name_a_script_imports_exists(path: Path) -> None:
    missing = []
    for line, module, name in _scanner_imports(path):
        mod = importlib.import_module(module)
        if name and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{path.name}:{line}: {module}.{name}")
    assert not missing
