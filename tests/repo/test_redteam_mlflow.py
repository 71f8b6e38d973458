"""Red-team MLflow folders: code folders that are the model folder itself or lie outside it, and the module
names MLflow's own flavors import from the model (keras_module, keras_module.txt, pickle_module_info.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import path_verdict


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


SKLEARN = (
    "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
    "    code: {code}\n  sklearn:\n    pickled_model: model.pkl\n"
)


@pytest.mark.parametrize("code", [".", "./", "sub/.."])
def test_code_folder_is_the_model_folder(tmp_path: Path, code: str) -> None:
    """_add_code_from_conf_to_system_path puts model_dir/'.' on sys.path: a sklearn.py shadows sklearn."""
    root = _folder(tmp_path / "m", {"MLmodel": SKLEARN.format(code=code), "sklearn.py": "x = 1\n"})
    decision, rules = path_verdict(root)
    assert decision == "block", rules
    assert any(f.path == "sklearn.py" for f in rules["CODE-EXECUTED-BY-LOADER"])


@pytest.mark.parametrize("code", ["/tmp/shared_code", "..", "../shared", "C:/code"])
def test_code_folder_outside_the_model(tmp_path: Path, code: str) -> None:
    root = _folder(tmp_path / "m", {"MLmodel": SKLEARN.format(code=code)})
    decision, rules = path_verdict(root)
    assert decision == "block", rules
    assert "CARRIER-CODE-MISSING" in rules


def test_keras_module_from_elsewhere(tmp_path: Path) -> None:
    mlmodel = (
        "flavors:\n  python_function:\n    loader_module: mlflow.tensorflow\n    data: data\n"
        "  tensorflow:\n    keras_module: evil_keras\n    save_format: tf\n"
    )
    decision, rules = path_verdict(_folder(tmp_path / "m", {"MLmodel": mlmodel}))
    assert decision == "block"
    assert "CARRIER-CODE-MISSING" in rules


def test_keras_module_in_code_folder_is_code(tmp_path: Path) -> None:
    mlmodel = (
        "flavors:\n  python_function:\n    loader_module: mlflow.tensorflow\n    code: code\n"
        "  tensorflow:\n    keras_module: my_keras\n    code: code\n"
    )
    root = _folder(tmp_path / "m", {"MLmodel": mlmodel, "code/my_keras.py": "x = 1\n"})
    decision, rules = path_verdict(root)
    assert decision == "block"
    assert any(f.path == "code/my_keras.py" for f in rules["CODE-EXECUTED-BY-LOADER"])


@pytest.mark.parametrize(
    ("name", "value", "blocks"),
    [
        ("data/pickle_module_info.txt", "sneaky_unpickler", True),
        ("data/pickle_module_info.txt", "mlflow.pytorch.pickle_module", False),
        ("data/keras_module.txt", "evil_keras", True),
        ("data/keras_module.txt", "tensorflow.keras", False),
    ],
)
def test_module_name_files(tmp_path: Path, name: str, value: str, blocks: bool) -> None:
    mlmodel = (
        "flavors:\n  python_function:\n    loader_module: mlflow.pytorch\n    data: data\n"
        "  pytorch:\n    model_data: data\n"
    )
    decision, rules = path_verdict(_folder(tmp_path / "m", {"MLmodel": mlmodel, name: value}))
    assert (decision == "block") is blocks, rules
    assert ("CARRIER-CODE-MISSING" in rules) is blocks


@pytest.mark.parametrize("flavor", ["python_function", "langchain", "llama_index"])
def test_model_code_path_in_any_flavor_is_code(tmp_path: Path, flavor: str) -> None:
    """langchain/llama_index read model_code_path from their own flavor section too (older models)."""
    mlmodel = f"flavors:\n  python_function:\n    loader_module: mlflow.langchain\n  {flavor}:\n"
    mlmodel += "    model_code_path: chain.py\n"
    decision, rules = path_verdict(_folder(tmp_path / "m", {"MLmodel": mlmodel, "chain.py": "x = 1\n"}))
    assert decision == "block"
    assert any(f.path == "chain.py" for f in rules["CODE-EXECUTED-BY-LOADER"])


def test_model_code_path_is_loaded_by_basename(tmp_path: Path) -> None:
    """os.path.join(model_dir, basename(model_code_path)): the recorded absolute/sub path is not what runs."""
    mlmodel = (
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        "    model_code_path: /Users/me/project/sub/agent.py\n"
    )
    root = _folder(tmp_path / "m", {"MLmodel": mlmodel, "agent.py": "x = 1\n", "sub/agent.py": "x = 2\n"})
    decision, rules = path_verdict(root)
    assert decision == "block"
    assert [f.path for f in rules["CODE-EXECUTED-BY-LOADER"] if f.severity.value == "high"] == ["agent.py"]


def test_model_code_path_any_suffix(tmp_path: Path) -> None:
    """spec_from_file_location picks a loader by suffix: a .pyc is executed as bytecode."""
    mlmodel = "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n    model_code_path: agent.pyc\n"
    root = _folder(tmp_path / "m", {"MLmodel": mlmodel})
    (root / "agent.pyc").write_bytes(b"\xcb\x0d\x0d\x0a" + b"\x00" * 12)
    decision, rules = path_verdict(root)
    assert decision == "block"
    assert any(f.path == "agent.pyc" for f in rules["CODE-EXECUTED-BY-LOADER"])
