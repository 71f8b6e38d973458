"""Red-team round 5: sentence-transformers class references are classes it calls ``.load`` on, not hydra targets.

Each shape ran with sentence-transformers 6.3 / transformers 5.24 (trust_remote_code=True, the model folder as the
working directory), diffusers 0.30.3 or pip 24, and was allowed (the last two: not judged as code / risky):

- modules.json ``type`` (and Router ``types``, WordEmbeddings ``tokenizer_class``) outside ``sentence_transformers.``
  is imported with import_from_string: ``importlib.import_module`` of the whole path, then of its parent, so every
  package ``__init__.py`` on the way runs. ``ldm.models.autoencoder.AutoencoderKL`` with only ``ldm/__init__.py``
  in the folder ran it: the hydra allowlist vouched for the name. Environment classes were allowed the same way
  (``torch.nn.Identity``, ``nemo...ConvASREncoder``) and anything under ``sentence_transformers.`` by prefix.
- Router.load falls back to the folder's config.json and imports every type before reading ``structure``; the
  check skipped a config.json without ``structure``.
- Dense.load imports ``activation_function`` before ``Dense(**config)`` checks its arguments; the check only read
  it when the config had ``in_features``/``out_features``.
- ``tokenizer_name_or_path`` in sentence_bert_config.json loads the tokenizer (and its auto_map code) from another
  repository or path.
- diffusers/peft ``importlib.import_module("pkg.evil")`` runs ``pkg/__init__.py`` too; only ``pkg/evil.py`` was code.
- requirement lines naming local folders or archives (pip builds them: setup.py runs, even under --dry-run) were not
  called risky; neither were conda.yaml channels or packages given as URLs or paths (documented conda behaviour: a
  package's link scripts run at install; not run here, conda is not installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import path_verdict, rule_ids, scan_files

QUIET = "class Evil:\n    def __init__(self):\n        self.x = 1\n"


def _modules(t: str, path: str = "") -> str:
    return json.dumps([{"idx": 0, "name": "0", "path": path, "type": t}])


def _loaded(res: dict, path: str) -> bool:
    return path in res and "CODE-EXECUTED-BY-LOADER" in rule_ids(res[path])


def _write(root: Path, files: dict[str, object]) -> Path:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content if isinstance(content, str) else json.dumps(content))
    return root


# ---------------------------------------------------------------------------- the import chain of a class reference


@pytest.mark.parametrize(
    ("ref", "files", "code"),
    [
        # a hydra-allowlisted name whose top package is the model folder's: ldm/__init__.py runs
        ("ldm.models.autoencoder.AutoencoderKL", ["ldm/__init__.py"], ["ldm/__init__.py"]),
        # a namespace package (no __init__.py): import_module(ref) runs evilpkg/Module.py
        ("evilpkg.Module", ["evilpkg/Module.py"], ["evilpkg/Module.py"]),
        # the module and its package both run
        ("pkg.sub.Cls", ["pkg/__init__.py", "pkg/sub.py"], ["pkg/__init__.py", "pkg/sub.py"]),
        # an allowlisted alias is still the model folder's package when the folder ships it
        ("pylate.models.Dense.Dense", ["pylate/__init__.py"], ["pylate/__init__.py"]),
    ],
)
def test_module_type_import_chain_in_the_repository_is_code(
    ref: str, files: list[str], code: list[str]
) -> None:
    res = scan_files({"modules.json": _modules(ref), **dict.fromkeys(files, QUIET)})
    for c in code:
        assert _loaded(res, c), (c, {p: rule_ids(r) for p, r in res.items()})


@pytest.mark.parametrize(
    "files",
    [
        {
            "router_config.json": {
                "types": {"q": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"},
                "structure": {},
            }
        },
        {
            "0_WordEmbeddings/wordembedding_config.json": {"tokenizer_class": "pkg.tok.T"},
            "pkg/tok/__init__.py": "",
        },
    ],
)
def test_router_and_tokenizer_refs_reach_package_inits(files: dict) -> None:
    top = "ldm/__init__.py" if "router_config.json" in files else "pkg/__init__.py"
    res = scan_files(
        {**{k: json.dumps(v) if isinstance(v, dict) else v for k, v in files.items()}, top: QUIET}
    )
    assert _loaded(res, top)


@pytest.mark.parametrize("cls", ["Router", "Asym"])
def test_router_config_json_without_structure_is_read(cls: str) -> None:
    """Router.load falls back to config.json and imports every type before it reads "structure"."""
    res = scan_files(
        {
            "modules.json": _modules(f"sentence_transformers.models.{cls}", "1_R"),
            "1_R/config.json": json.dumps({"types": {"q": "evilmod.Evil"}}),
            "evilmod.py": QUIET,
        }
    )
    assert _loaded(res, "evilmod.py")


def test_router_config_json_beside_router_config_is_a_model_config(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "modules.json": json.loads(_modules("sentence_transformers.models.Router")),
            "router_config.json": {
                "types": {"q": "sentence_transformers.models.Transformer"},
                "structure": {"query": ["q"]},
                "parameters": {},
            },
            "config.json": {"model_type": "custom", "types": {"a": "b.c"}},
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- tokenizer from elsewhere


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("sentence_bert_config.json", "evil/tokenizer-repo"),  # a Hub repository
        ("sentence_bert_config.json", "/srv/models/other"),  # a path outside the snapshot
        ("0_Transformer/sentence_xlm-roberta_config.json", "../elsewhere"),
    ],
)
def test_transformer_config_tokenizer_elsewhere_blocks(tmp_path: Path, name: str, ref: str) -> None:
    """Transformer(model_name_or_path, **config) loads the tokenizer from tokenizer_name_or_path: with
    trust_remote_code its auto_map code (sentence-transformers 6.3 ran another folder's tok.py)."""
    _write(tmp_path, {name: {"max_seq_length": 256, "do_lower_case": False, "tokenizer_name_or_path": ref}})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "HF-AUTOMAP-CROSS-REPO" in rules


def test_saved_transformer_config_stays_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "sentence_bert_config.json": {
                "transformer_task": "feature-extraction",
                "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
                "module_output_name": "token_embeddings",
                "max_seq_length": 256,
                "do_lower_case": False,
            }
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- classes from the environment


@pytest.mark.parametrize(
    "ref",
    [
        "torch.nn.Identity",  # hydra allowlist pattern torch.nn:[A-Z]*: not a sentence-transformers module
        "nemo.collections.asr.modules.ConvASREncoder",
        "transformers.AutoModel",
        "sentence_transformers.util.misc.torch",  # its own namespace, but not a module class
        "sentence_transformers.base.model.json",
    ],
)
def test_module_type_from_the_environment_blocks(tmp_path: Path, ref: str) -> None:
    _write(tmp_path, {"modules.json": json.loads(_modules(ref))})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "HF-REMOTE-CODE" in rules or "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    "files",
    [
        {"router_config.json": {"types": {"q": "torch.nn.Identity"}, "structure": {"query": ["q"]}}},
        {"wordembedding_config.json": {"tokenizer_class": "torch.nn.Identity"}},
    ],
)
def test_router_and_tokenizer_classes_from_the_environment_block(tmp_path: Path, files: dict) -> None:
    _write(tmp_path, files)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


@pytest.mark.parametrize(
    "types",
    [
        [  # sentence-transformers 6.3 saves (SentenceTransformer, Router, SparseEncoder)
            "sentence_transformers.base.modules.transformer.Transformer",
            "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            "sentence_transformers.base.modules.dense.Dense",
            "sentence_transformers.base.modules.normalize.Normalize",
            "sentence_transformers.base.modules.router.Router",
            "sentence_transformers.sparse_encoder.modules.mlm_transformer.MLMTransformer",
            "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling",
        ],
        [  # older saves (all-MiniLM-L6-v2 layout, SPLADE, Asym, CSR), PyLate's Dense
            "sentence_transformers.models.Transformer",
            "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize",
            "sentence_transformers.models.Asym",
            "sentence_transformers.sparse_encoder.models.SpladePooling",
            "sentence_transformers.sparse_encoder.models.CSRSparsity",
            "pylate.models.Dense.Dense",
        ],
    ],
    ids=["st6", "older"],
)
def test_saved_module_types_stay_allowed(tmp_path: Path, types: list[str]) -> None:
    mods = [{"idx": i, "name": str(i), "path": "", "type": t} for i, t in enumerate(types)]
    _write(
        tmp_path,
        {
            "modules.json": mods,
            "config.json": {"model_type": "bert", "architectures": ["BertModel"], "hidden_act": "gelu"},
            "0_WordEmbeddings/wordembedding_config.json": {
                "tokenizer_class": "sentence_transformers.models.tokenizer.WordTokenizer.WordTokenizer"
            },
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- Dense activation_function


@pytest.mark.parametrize(
    "dense",
    [
        # no in_features: Dense(**config) fails after the import (sentence-transformers 6.3, trust_remote_code=True,
        # the model folder as working directory: evil_act.py ran)
        {"activation_function": "evil_act.Evil"},
        {"activation_function": "evil_act.Evil", "bias": True, "in_features": 4, "out_features": 2},
    ],
)
def test_dense_activation_in_the_repository_is_code(dense: dict) -> None:
    res = scan_files(
        {
            "modules.json": _modules("sentence_transformers.models.Dense", "2_Dense"),
            "2_Dense/config.json": json.dumps(dense),
            "evil_act.py": QUIET,
        }
    )
    assert _loaded(res, "evil_act.py")


@pytest.mark.parametrize(
    "files",
    [
        {
            "modules.json": [
                {"idx": 0, "name": "0", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
            ],
            "2_Dense/config.json": {"activation_function": "evilpkg.Act", "bias": True},
        },
        {  # a Router sub-module folder (router folder / types key)
            "modules.json": [
                {"idx": 0, "name": "0", "path": "r", "type": "sentence_transformers.models.Router"}
            ],
            "r/router_config.json": {
                "types": {"q_Dense": "sentence_transformers.models.Dense"},
                "structure": {},
            },
            "r/q_Dense/config.json": {"activation_function": "evilpkg.Act"},
        },
        {  # the model root as a Dense module
            "modules.json": [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Dense"}
            ],
            "config.json": {"activation_function": "torch.nn.functional.gelu"},
        },
    ],
    ids=["modules.json", "router", "root"],
)
def test_dense_activation_from_the_environment_without_dimensions_blocks(tmp_path: Path, files: dict) -> None:
    _write(tmp_path, files)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_model_configs_with_activation_names_stay_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "config.json": {"model_type": "gpt2", "activation_function": "gelu_new"},
            "2_Dense/config.json": {
                "in_features": 384,
                "out_features": 256,
                "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh",
            },
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- requirements naming local code

MLMODEL = (
    "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    env:\n"
    "      conda: conda.yaml\n      virtualenv: python_env.yaml\nmlflow_version: 2.14.1\n"
)
PYTHON_ENV = "python: 3.11.9\nbuild_dependencies:\n- pip==24.0\n- setuptools\n- wheel\ndependencies:\n- -r requirements.txt\n"


@pytest.mark.parametrize(
    "line",
    [
        "./pkg",  # pip builds the folder: its setup.py runs (pip install --dry-run ran it, pip 24)
        ".",
        "wheels/evil-0.1-py3-none-any.whl",
        "evil-0.1.tar.gz",
        "/opt/src/pkg",
        "--config-settings=--build-option=x",
    ],
)
def test_requirements_naming_local_code_warn(tmp_path: Path, line: str) -> None:
    _write(
        tmp_path,
        {
            "MLmodel": MLMODEL,
            "python_env.yaml": PYTHON_ENV,
            "requirements.txt": f"mlflow==2.14.1\nscikit-learn==1.5.0\n{line}\n",
            "conda.yaml": f"dependencies:\n- python=3.11\n- pip:\n  - mlflow==2.14.1\n  - {line}\n",
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "warn", rules
    assert rules["HF-REQUIREMENTS"][0].evidence["risky"] == [line]
    assert rules["CARRIER-ENVIRONMENT"][0].evidence["risky"] == [line]


def test_mlflow_written_environment_stays_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "MLmodel": MLMODEL,
            "python_env.yaml": PYTHON_ENV,
            "requirements.txt": "mlflow==2.14.1\ncloudpickle==3.0.0\nnumpy<2\n"
            'scikit-learn==1.5.0 ; python_version >= "3.8"\npydantic[email]>=2  # pinned\n',
            "conda.yaml": "channels:\n- conda-forge\ndependencies:\n- python=3.11.9\n- pip<=24.0\n"
            "- pip:\n  - mlflow==2.14.1\n  - scikit-learn==1.5.0\nname: mlflow-env\n",
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- diffusers / peft packages


@pytest.mark.parametrize(
    "files",
    [
        {"model_index.json": {"_class_name": "X", "unet": ["pkg.evil", "E"]}, "pkg/evil.py": QUIET},
        {"adapter_config.json": {"auto_mapping": {"parent_library": "pkg.evil", "base_model_class": "M"}}},
    ],
    ids=["diffusers", "peft"],
)
def test_package_init_of_an_imported_library_is_code(files: dict) -> None:
    """importlib.import_module("pkg.evil") runs pkg/__init__.py first: trusting pkg/evil.py alone must not pass it."""
    res = scan_files(
        {
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in files.items()},
            "pkg/__init__.py": QUIET,
        }
    )
    assert _loaded(res, "pkg/__init__.py")


@pytest.mark.parametrize(
    "conda",
    [
        "channels:\n- https://conda.example.invalid/evil\n- conda-forge\ndependencies:\n- python=3.11\n",
        "channels:\n- conda-forge\ndependencies:\n- python=3.11\n- ./pkgs/evil-0.1-0.tar.bz2\n",
        "channels:\n- file:///srv/channel\ndependencies:\n- python=3.11\n",
    ],
    ids=["channel-url", "local-package", "file-channel"],
)
def test_conda_channels_and_packages_from_urls_or_paths_warn(tmp_path: Path, conda: str) -> None:
    """conda runs a package's link scripts when it creates the environment (mlflow models serve, spark_udf)."""
    _write(tmp_path, {"MLmodel": MLMODEL, "conda.yaml": conda})
    decision, rules = path_verdict(tmp_path)
    assert decision == "warn", rules
    assert rules["CARRIER-ENVIRONMENT"][0].evidence["risky"]
