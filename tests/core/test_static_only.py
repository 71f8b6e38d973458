"""Guard for the first rule of the product: nothing in scanner/ deserializes or executes model content."""

from __future__ import annotations

import ast

from tests.harness import REPO

FORBIDDEN_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("_pickle", "load"),
    ("_pickle", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("torch", "load"),
    ("joblib", "load"),
    ("marshal", "loads"),
    ("marshal", "load"),
    ("keras", "load_model"),
    ("models", "load_model"),
    ("jit", "load"),
}
FORBIDDEN_NAMES = {"eval", "exec", "__import__"}
# The one exception, and why: the start-up cache of dataclass methods reads back code objects this process
# compiled from ``dataclasses``' own texts, only after their HMAC (key outside the cache folder) verifies. It
# never sees model bytes; tests/core/test_dataclass_code.py shows a planted file never runs.
EXCEPTIONS = {("scanner/dataclass_code.py", "marshal.loads")}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_scanner_never_deserializes_or_executes():
    offenders = []
    for py in sorted((REPO / "scanner").rglob("*.py")):
        tree = ast.parse(py.read_text(), filename=str(py))
        for call in _calls(tree):
            fn = call.func
            where = f"{py.relative_to(REPO)}:{call.lineno}"
            if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
                if (fn.value.id, fn.attr) in FORBIDDEN_CALLS and (
                    str(py.relative_to(REPO)),
                    f"{fn.value.id}.{fn.attr}",
                ) not in EXCEPTIONS:
                    offenders.append(f"{where} {fn.value.id}.{fn.attr}")
                if fn.attr == "Unpickler" or fn.attr == "load" and fn.value.id in {"np", "numpy"}:
                    offenders.append(f"{where} {fn.value.id}.{fn.attr}")
            if isinstance(fn, ast.Attribute) and fn.attr == "Unpickler":
                offenders.append(f"{where} Unpickler")
            if isinstance(fn, ast.Name) and fn.id in FORBIDDEN_NAMES:
                offenders.append(f"{where} {fn.id}")
            for kw in call.keywords:
                if kw.arg in {"allow_pickle", "trust_remote_code"} and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    offenders.append(f"{where} {kw.arg}=")
    assert not offenders, "static-only rule broken:\n" + "\n".join(offenders)
