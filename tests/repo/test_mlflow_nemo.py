"""MLflow model folders and NeMo archives: what their loaders import is judged, unreadable configs fail closed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scanner.analysis.config_yaml import parse_yaml_config
from tests.harness import FIXTURES, make_tar, path_verdict

CARRIERS = FIXTURES / "carriers"


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


PYFUNC = "flavors:\n  python_function:\n{body}mlflow_version: 2.14.1\n"


@pytest.mark.parametrize(
    "module", ["mlflow.sklearn", "mlflow.pytorch", "mlflow.transformers", "mlflow.pyfunc.model"]
)
def test_mlflow_own_flavors_are_the_library(tmp_path: Path, module: str) -> None:
    root = _folder(tmp_path / "m", {"MLmodel": PYFUNC.format(body=f"    loader_module: {module}\n")})
    decision, rules = path_verdict(root)
    assert decision == "allow", rules
    assert "CARRIER-MODEL" in rules


def test_mlflow_code_folder_every_file_is_code(tmp_path: Path) -> None:
    root = _folder(
        tmp_path / "m",
        {
            "MLmodel": PYFUNC.format(body="    code: code\n    loader_module: loader.main\n"),
            "code/loader/__init__.py": "",
            "code/loader/main.py": "def _load_pyfunc(p):\n    return p\n",
            "code/util.py": "X = 1\n",
        },
    )
    decision, rules = path_verdict(root)
    assert decision == "block"
    ev = {f.evidence["file"]: f.evidence for f in rules["CODE-EXECUTED-BY-LOADER"]}
    assert set(ev) == {"code/loader/__init__.py", "code/loader/main.py", "code/util.py"}
    main = ev["code/loader/main.py"]
    assert main["role"] == "loader_module"
    assert main["sha256"] == hashlib.sha256(b"def _load_pyfunc(p):\n    return p\n").hexdigest()


@pytest.mark.parametrize(
    "body",
    [
        "    loader_module: acme.loader\n",
        "    loader_module: mlflowx.sklearn\n",
        "    loader_module: mlflow_evil\n",
    ],
)
def test_mlflow_loader_module_from_elsewhere(tmp_path: Path, body: str) -> None:
    root = _folder(tmp_path / "m", {"MLmodel": PYFUNC.format(body=body)})
    decision, rules = path_verdict(root)
    assert decision == "block" and "CARRIER-CODE-MISSING" in rules


@pytest.mark.parametrize(
    "text",
    [
        "flavors: [\n",
        "flavors:\n  a: !!python/object/apply:os.system ['id']\n",
        "just a string\n",
        "a:\n" + "  " * 2000 + "b: 1\n",
        "x: " + "[" * 5000,
    ],
)
def test_mlflow_unreadable_mlmodel_fails_closed(tmp_path: Path, text: str) -> None:
    root = _folder(tmp_path / "m", {"MLmodel": text})
    decision, rules = path_verdict(root)
    assert decision == "block"
    assert "CARRIER-CONFIG-INVALID" in rules


@pytest.mark.parametrize(
    ("env", "risky"),
    [
        ("dependencies:\n- pip:\n  - scikit-learn==1.5\n", False),
        ("dependencies:\n- pip:\n  - git+https://example.invalid/x.git\n", True),
        (
            "dependencies:\n- pip:\n  - --extra-index-url https://pypi.example.invalid/simple\n  - torch\n",
            True,
        ),
        ("dependencies:\n- pip:\n  - pkg @ https://example.invalid/pkg.whl\n", True),
    ],
)
def test_mlflow_environment(tmp_path: Path, env: str, risky: bool) -> None:
    root = _folder(
        tmp_path / "m",
        {
            "MLmodel": PYFUNC.format(
                body="    loader_module: mlflow.sklearn\n    env:\n      conda: conda.yaml\n"
            ),
            "conda.yaml": env,
        },
    )
    decision, rules = path_verdict(root)
    assert decision == ("warn" if risky else "allow")
    assert "CARRIER-ENVIRONMENT" in rules


def test_mlflow_cloudpickle_python_model_blocks() -> None:
    decision, rules = path_verdict(CARRIERS / "mlflow" / "custom_loader")
    assert decision == "block"
    assert "CODE-EXECUTED-BY-LOADER" in rules


# ------------------------------------------------------------------------------------------------ NeMo
def _nemo(tmp_path: Path, cfg: bytes) -> Path:
    p = tmp_path / "m.nemo"
    p.write_bytes(make_tar([("./model_config.yaml", cfg), ("./tokenizer.vocab", b"a\nb\n")]))
    return p


@pytest.mark.parametrize(
    ("cfg", "decision", "rule"),
    [
        (
            b"target: nemo.collections.nlp.models.TokenClassificationModel\nencoder:\n  _target_: torch.nn.Identity\n",
            "allow",
            "CARRIER-MODEL",
        ),
        (b"target: nemo.collections.tts.models.FastPitchModel\n", "allow", "CARRIER-MODEL"),
        (b"encoder:\n  _target_: subprocess.Popen\n  args: [id]\n", "block", "CONFIG-TARGET-DANGEROUS"),
        (b"encoder:\n  _target_: my_lab.models.Encoder\n", "block", "CONFIG-TARGET-UNLISTED"),
        (b"encoder:\n  _target_: nemo.__builtins__.eval\n", "block", "CONFIG-TARGET-DANGEROUS"),
        (b"target: my_lab.models.EvilModel\n", "block", "CONFIG-TARGET-UNLISTED"),
        (b"target: nemo.collections.asr.models.ctc_models.open_dict\n", "block", "CONFIG-TARGET-UNLISTED"),
        (b"target: os.system\n", "block", "CONFIG-TARGET-DANGEROUS"),
        (b"items: &a [1, 2]\nmore: *a\nx: !!python/name:os.system ''\n", "block", "CARRIER-CONFIG-INVALID"),
        (b"a: {b: [\n", "block", "CARRIER-CONFIG-INVALID"),
        (b"a: " + b"[" * 3000 + b"]" * 3000 + b"\n", "block", "CARRIER-CONFIG-INVALID"),
    ],
)
def test_nemo_config_variants(tmp_path: Path, cfg: bytes, decision: str, rule: str) -> None:
    got, rules = path_verdict(_nemo(tmp_path, cfg))
    assert got == decision, rules
    assert rule in rules


def test_yaml_aliases_are_not_expanded() -> None:
    doc = b"a: &a [x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
        for i in range(20)
    )
    cfg = parse_yaml_config(doc)
    assert cfg.error is None
    assert isinstance(cfg.data, dict)


def test_mlflow_oversized_environment_fails_closed(tmp_path: Path) -> None:
    root = _folder(
        tmp_path / "m",
        {
            "MLmodel": PYFUNC.format(
                body="    loader_module: mlflow.sklearn\n    env:\n      conda: conda.yaml\n"
            ),
            "conda.yaml": "dependencies:\n- pip:\n" + "  - pkg==1.0\n" * 40000,
        },
    )
    decision, rules = path_verdict(root)
    assert decision == "block" and "CARRIER-CONFIG-INVALID" in rules


def test_oversized_nemo_config_fails_closed(tmp_path: Path) -> None:
    got, rules = path_verdict(_nemo(tmp_path, b"a: 1\n" * 100_000))
    assert got == "block" and "CARRIER-CONFIG-INVALID" in rules


def test_mlflow_code_entry_of_unexpected_type_fails_closed(tmp_path: Path) -> None:
    root = _folder(
        tmp_path / "m",
        {"MLmodel": PYFUNC.format(body="    code: [a, b]\n    loader_module: mlflow.sklearn\n")},
    )
    decision, rules = path_verdict(root)
    assert decision == "block" and "CARRIER-CONFIG-INVALID" in rules
