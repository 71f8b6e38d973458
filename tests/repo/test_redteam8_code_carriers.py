"""Red-team round 8: YAML merge keys in configs read as plain data.

``parse_yaml_config`` (MLmodel, NeMo model_config.yaml, the repository trust_remote_code check) composed the
document and kept ``<<`` as an ordinary key, while ``yaml.safe_load`` (MLflow's ``Model.load``) and OmegaConf's
SafeLoader apply it (flatten_mapping: the merged mapping's keys, overridden by the node's own). An MLmodel whose
``python_function`` took ``loader_module`` and ``code`` from ``<<: *base`` was allowed; MLflow 3.18
``pyfunc.load_model`` put ``code/`` on sys.path and imported the module (marker file written from inside
``_load_pyfunc``, nothing at import time).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.analysis.config_yaml import parse_yaml_config
from tests.harness import path_verdict

LOADER = 'def _load_pyfunc(path):\n    with open(path + ".seen", "w") as f:\n        f.write("x")\n    return None\n'


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@pytest.mark.parametrize(
    "mlmodel",
    [
        "base: &b\n  loader_module: evil_loader\n  code: code\n"
        "flavors:\n  python_function:\n    <<: *b\n    python_version: 3.11.7\n",
        # a list of merged mappings: the first one wins
        "a: &a {loader_module: evil_loader}\nb: &b {loader_module: mlflow.sklearn, code: code}\n"
        "flavors:\n  python_function:\n    <<: [*a, *b]\n",
        # the whole flavors mapping merged in
        "f: &f\n  python_function: {loader_module: evil_loader, code: code}\nflavors:\n  <<: *f\n",
    ],
)
def test_mlmodel_merge_keys_applied(tmp_path: Path, mlmodel: str) -> None:
    root = _folder(tmp_path / "m", {"MLmodel": mlmodel, "code/evil_loader.py": LOADER})
    decision, rules = path_verdict(root)
    assert decision == "block", rules
    assert [f.path for f in rules["CODE-EXECUTED-BY-LOADER"]] == ["code/evil_loader.py"]


def test_own_keys_override_merged(tmp_path: Path) -> None:
    """The node's own loader_module wins over a merged one (as flatten_mapping orders them): MLflow's own flavor."""
    mlmodel = (
        "b: &b {loader_module: evil_loader}\n"
        "flavors:\n  python_function:\n    <<: *b\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
    )
    root = _folder(tmp_path / "m", {"MLmodel": mlmodel})
    decision, rules = path_verdict(root)
    assert "CARRIER-CODE-MISSING" not in rules and "CODE-EXECUTED-BY-LOADER" not in rules, rules


def test_parse_yaml_config_merges_like_safe_load() -> None:
    text = b'a: &a {x: 1, y: 2}\nb: &b {y: 3}\nc: {<<: [*a, *b], x: 9}\nd: {"<<": *a}\n'
    data = parse_yaml_config(text).data
    assert data["c"] == {"x": 9, "y": 2}
    assert data["d"] == {"<<": {"x": 1, "y": 2}}  # a quoted "<<" is a plain key


def test_merge_growth_is_bounded() -> None:
    """Merges of merges grow quadratically (each level copies the last): past the node budget it fails closed."""
    lines = ["l0: &l0 {k0: 0}"]
    lines += [f"l{i}: &l{i} {{<<: *l{i - 1}, k{i}: {i}}}" for i in range(1, 1500)]
    cfg = parse_yaml_config(("\n".join(lines) + "\n").encode())
    assert cfg.error is not None and "nodes" in cfg.error
