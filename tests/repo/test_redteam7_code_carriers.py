"""Red-team round 7: code carriers of libraries not covered before.

spaCy: ``spacy.load(folder)`` builds every ``[components.<name>]`` of config.cfg; one with a ``source`` is taken
from another pipeline (Language.from_config -> util.load_model(source)): an installed distribution of that name is
imported and its ``load()`` called, else the pipeline folder at that path is loaded. ``nlp.to_disk`` never writes
``source``. With the model folder as the working directory, a ``<name>.dist-info`` shipped in it makes
``is_package`` true and the folder's ``<name>/__init__.py`` is what is imported (spaCy 3.8: marker file written);
the same ``.dist-info`` with an ``entry_points.txt`` registers a ``spacy_factories`` entry point, and a config
``factory`` of that name imported and called the folder's module. Before: blocked only when the planted module had
an import-time side effect; a payload inside the factory function, or a ``source`` naming an installed package or
a folder outside the scan, was allowed.

open_clip 3.3: ``text_cfg.tokenizer_kwargs`` of open_clip_config.json reach
``AutoTokenizer.from_pretrained(hf_tokenizer_name, **kwargs)`` (HFTokenizer): ``trust_remote_code`` there runs the
tokenizer repository's auto_map code (marker file with transformers 5.24); allowed before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import fixture, path_verdict, rule_ids, scan_files

SPACY = fixture("carriers/spacy/blank_sentencizer")
BASE_CFG = (SPACY / "config.cfg").read_text()
META = (SPACY / "meta.json").read_text()
COMPONENT = '[components.sentencizer]\nfactory = "sentencizer"'


def _pipeline(tmp_path: Path, cfg: str, files: dict[str, str] | None = None) -> Path:
    d = tmp_path / "pipe"
    d.mkdir()
    (d / "config.cfg").write_text(cfg)
    (d / "meta.json").write_text(META)
    for rel, text in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    return d


def _sourced(value: str) -> str:
    assert COMPONENT in BASE_CFG
    return BASE_CFG.replace(COMPONENT, f"[components.sentencizer]\nsource = {value}")


def _dict_sourced(value: str) -> str:
    """The component as a JSON value of the [components] section (thinc reads it as the same mapping)."""
    lines, skip = [], False
    for line in BASE_CFG.splitlines():
        if line.startswith("["):
            skip = line.startswith("[components.sentencizer")
        if not skip:
            lines.append(line)
    return "\n".join(lines).replace("[components]", f'[components]\nsentencizer = {{"source": {value}}}', 1)


def test_spacy_saved_pipeline_allowed() -> None:
    decision, found = path_verdict(SPACY)
    assert decision == "allow", found


@pytest.mark.parametrize(
    "cfg",
    [
        _sourced('"en_core_web_sm"'),  # an installed package: imported, load() called
        _sourced('"../other_pipeline"'),  # a folder outside the scan
        _sourced('"/abs/pipeline"'),
        _sourced("${paths.vectors}"),  # an interpolation: whatever it resolves to
        _dict_sourced('"spacy_loggers"'),
    ],
)
def test_spacy_sourced_component_blocks(tmp_path: Path, cfg: str) -> None:
    decision, found = path_verdict(_pipeline(tmp_path, cfg))
    assert decision == "block"
    assert "HF-REMOTE-CODE" in found


def test_spacy_sourced_package_in_the_folder_is_code(tmp_path: Path) -> None:
    d = _pipeline(
        tmp_path,
        _sourced('"evil-pkg"'),  # a distribution name: imported as evil_pkg
        {
            "evil_pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: evil-pkg\nVersion: 1.0\n",
            "evil_pkg/__init__.py": "def load(**kw):\n    return None\n",  # nothing at import time
        },
    )
    decision, found = path_verdict(d)
    assert decision == "block"
    assert [f.path for f in found["CODE-EXECUTED-BY-LOADER"]] == ["evil_pkg/__init__.py"]


def test_spacy_unparseable_config_fails_closed(tmp_path: Path) -> None:
    cfg = (
        BASE_CFG + '\n[components.sentencizer]\nfactory = "sentencizer"\n'
    )  # duplicate section: thinc raises
    decision, found = path_verdict(_pipeline(tmp_path, cfg))
    assert decision == "block"
    assert "HF-CONFIG-INVALID" in found


def test_non_spacy_cfg_files_ignored(tmp_path: Path) -> None:
    d = tmp_path / "repo"
    d.mkdir()
    (d / "config.cfg").write_text("[metadata]\nname = x\n[options]\nsource = y\n")
    assert path_verdict(d)[0] == "allow"


@pytest.mark.parametrize("kind", ["dist-info", "egg-info"])
def test_entry_points_of_a_shipped_distribution_are_code(tmp_path: Path, kind: str) -> None:
    d = _pipeline(
        tmp_path,
        BASE_CFG.replace(COMPONENT, '[components.sentencizer]\nfactory = "evil_factory"'),
        {
            f"plug-1.0.{kind}/entry_points.txt": "[spacy_factories]\nevil_factory = plug.factories:make\n",
            "plug/__init__.py": "",
            "plug/factories.py": "from . import helpers\n\n\ndef make(nlp, name):\n    return helpers.run()\n",
            "plug/helpers.py": "def run():\n    return None\n",
        },
    )
    decision, found = path_verdict(d)
    assert decision == "block"
    assert "HF-REMOTE-CODE" in found
    loaded = {f.path for f in found["CODE-EXECUTED-BY-LOADER"]}
    assert loaded == {"plug/__init__.py", "plug/factories.py", "plug/helpers.py"}


def _open_clip(**text_cfg: object) -> str:
    return json.dumps(
        {
            "model_cfg": {
                "embed_dim": 512,
                "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
                "text_cfg": {"context_length": 64, "vocab_size": 32000, **text_cfg},
            },
            "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        }
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"trust_remote_code": True},
        {"trust_remote_code": "False"},  # Python truthiness: transformers tests `if trust_remote_code`
        {"trust_remote_code": [0]},
        {"revision": "refs/pr/1"},  # not a tokenizer option of open_clip: chooses what is loaded
    ],
)
def test_open_clip_tokenizer_kwargs_block(kwargs: dict) -> None:
    res = scan_files(
        {
            "open_clip_config.json": _open_clip(hf_tokenizer_name="evil-org/tok", tokenizer_kwargs=kwargs),
            "open_clip_model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
        }
    )
    assert rule_ids(res["open_clip_config.json"]) & {"HF-REMOTE-CODE", "HF-CONFIG-INVALID"}
    assert any(f.severity.value in ("high", "critical") for f in res["open_clip_config.json"].findings)


@pytest.mark.parametrize(
    "text_cfg",
    [
        {"hf_tokenizer_name": "timm/ViT-B-16-SigLIP", "tokenizer_kwargs": {"clean": "canonicalize"}},
        {"hf_tokenizer_name": "bert-base-uncased", "tokenizer_kwargs": {"trust_remote_code": False}},
        {"hf_model_name": "xlm-roberta-large", "hf_tokenizer_name": "xlm-roberta-large"},
        {},
    ],
)
def test_open_clip_configs_as_published_allowed(text_cfg: dict) -> None:
    res = scan_files({"open_clip_config.json": _open_clip(**text_cfg)})
    assert not rule_ids(res["open_clip_config.json"]) & {"HF-REMOTE-CODE", "HF-CONFIG-INVALID"}


# diffusers 0.42 AutoModel.from_pretrained(repo, subfolder="unet", trust_remote_code=True) reads model_index.json
# first and, "unet" being one of its components, takes that document's auto_map["AutoModel"] and opens
# unet/<module>.py (marker file written). Before, only <root>/<module>.py was looked for: the component folder's
# module was never marked as code (a root decoy trusted by digest would have allowed it).
MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.42.1",
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "auto_map": {"AutoModel": "evil.EvilModel"},
}
EVIL = "import torch\n\n\nclass EvilModel(torch.nn.Module):\n    pass\n"


@pytest.mark.parametrize("decoy", [False, True])
def test_model_index_auto_map_reads_component_folders(decoy: bool) -> None:
    files: dict[str, str | bytes] = {
        "model_index.json": json.dumps(MODEL_INDEX),
        "unet/config.json": json.dumps({"_class_name": "UNet2DConditionModel"}),
        "unet/evil.py": EVIL,
    }
    if decoy:
        files["evil.py"] = EVIL
    res = scan_files(files)
    assert "CODE-EXECUTED-BY-LOADER" in rule_ids(res["unet/evil.py"])
    if decoy:
        assert "CODE-EXECUTED-BY-LOADER" in rule_ids(res["evil.py"])
    else:
        assert "HF-AUTOMAP-MISSING" not in rule_ids(res["model_index.json"])


# peft 0.13.2 LoRA dispatch_megatron: a true megatron_config makes peft importlib.import_module(megatron_core)
# with no check (later releases accept allowlisted prefixes only); with the model folder as the working directory
# the folder's evilmod.py ran (marker file). A peft 0.21 LoraConfig saves megatron_config null and
# megatron_core "megatron.core".
ADAPTER = {
    "peft_type": "LORA",
    "r": 2,
    "lora_alpha": 4,
    "target_modules": ["q_proj"],
    "task_type": "CAUSAL_LM",
}


@pytest.mark.parametrize(
    ("extra", "files", "code"),
    [
        ({"megatron_config": {"num_layers": 1}, "megatron_core": "evilmod"}, {"evilmod.py": "X = 1\n"}, True),
        ({"megatron_config": {"num_layers": 1}, "megatron_core": "evil.pkg"}, {"evil/__init__.py": ""}, True),
        ({"megatron_config": {"a": 1}, "megatron_core": "some_installed_pkg"}, {}, False),
    ],
)
def test_peft_megatron_core_import_blocks(extra: dict, files: dict, code: bool) -> None:
    res = scan_files({"adapter_config.json": json.dumps({**ADAPTER, **extra}), **files})
    assert "HF-REMOTE-CODE" in rule_ids(res["adapter_config.json"])
    for f in files:
        assert ("CODE-EXECUTED-BY-LOADER" in rule_ids(res[f])) is code


@pytest.mark.parametrize(
    "extra",
    [
        {"megatron_config": None, "megatron_core": "megatron.core"},  # as peft saves it
        {"megatron_config": None, "megatron_core": "evilmod"},  # not dispatched without a config
        {"megatron_config": {"num_layers": 1}, "megatron_core": "megatron.core"},
    ],
)
def test_peft_megatron_as_saved_allowed(extra: dict) -> None:
    res = scan_files({"adapter_config.json": json.dumps({**ADAPTER, **extra})})
    assert "HF-REMOTE-CODE" not in rule_ids(res["adapter_config.json"])


@pytest.mark.parametrize("value", ["true", '"False"', "[0]", "${vars.flag}"])
def test_spacy_transformer_remote_code_blocks(tmp_path: Path, value: str) -> None:
    cfg = BASE_CFG + (
        '\n[components.transformer]\nfactory = "transformer"\n\n[components.transformer.model]\n'
        '@architectures = "spacy-transformers.TransformerModel.v3"\nname = "evil-org/model"\n\n'
        f"[components.transformer.model.tokenizer_config]\nuse_fast = true\ntrust_remote_code = {value}\n"
    )
    decision, found = path_verdict(_pipeline(tmp_path, cfg))
    assert decision == "block"
    assert "HF-REMOTE-CODE" in found


def test_spacy_transformer_remote_code_false_allowed(tmp_path: Path) -> None:
    cfg = BASE_CFG + (
        '\n[components.transformer]\nfactory = "transformer"\n\n[components.transformer.model]\n'
        '@architectures = "spacy-transformers.TransformerModel.v3"\nname = "roberta-base"\n\n'
        "[components.transformer.model.tokenizer_config]\nuse_fast = true\ntrust_remote_code = false\n"
    )
    assert path_verdict(_pipeline(tmp_path, cfg))[0] == "allow"
