"""Red-team round 3: repository code carriers other loaders read (diffusers component libraries, modular type
hints, sentence-transformers Router/Asym/WordEmbeddings imports, TorchServe model folders, torch.hub hubconf.py,
custom_generate in a subfolder).

Each malicious shape must block: code the loader imports from this repository carries CODE-EXECUTED-BY-LOADER
(trusted only by digest), a module it imports from elsewhere is judged allowlist first. The benign layouts the
same loaders write stay allowed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.harness import path_verdict, rule_ids, scan_files

QUIET = "class Evil:\n    def __init__(self):\n        self.x = 1\n"


def _loaded(res: dict, path: str) -> bool:
    return path in res and "CODE-EXECUTED-BY-LOADER" in rule_ids(res[path])


def _write(root: Path, files: dict[str, object]) -> Path:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content if isinstance(content, str) else json.dumps(content))
    return root


# ---------------------------------------------------------------------------- diffusers component libraries


@pytest.mark.parametrize(
    "lib",
    [
        "antigravity",  # importlib.import_module(library) of an installed module with import-time effects
        "evil_helpers",  # any module name diffusers does not know: imported from the environment
        "os",
    ],
)
def test_model_index_library_from_the_environment_blocks(tmp_path: Path, lib: str) -> None:
    """get_class_obj_and_candidates imports any library a local model_index.json names (no trust_remote_code)."""
    _write(tmp_path, {"model_index.json": {"_class_name": "StableDiffusionPipeline", "unet": [lib, "UNet"]}})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


@pytest.mark.parametrize(
    ("lib", "module_file"),
    [
        ("pkg.evil", "pkg/evil.py"),  # dotted: the package of the model folder (the working directory)
        ("evilmod", "evilmod.py"),
        ("evilpkg", "evilpkg/__init__.py"),
    ],
)
def test_model_index_library_in_the_repository_is_code(lib: str, module_file: str) -> None:
    files = {
        "model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline", "unet": [lib, "Evil"]}),
        module_file: QUIET,
    }
    if module_file.startswith("pkg/"):
        files["pkg/__init__.py"] = "X = 1\n"
    res = scan_files(files)
    assert _loaded(res, module_file)


@pytest.mark.parametrize("name", ["modular_model_index.json", "model_index.json"])
def test_modular_type_hint_library_is_imported(name: str) -> None:
    """ModularPipeline resolves [library, class, {type_hint: [lib, cls]}] with simple_get_class_obj: an import."""
    cfg = {"_class_name": "X", "unet": [None, None, {"type_hint": ["evilmod", "Evil"], "subfolder": "unet"}]}
    res = scan_files({name: json.dumps(cfg), "evilmod.py": QUIET})
    assert _loaded(res, "evilmod.py")
    res = scan_files({name: json.dumps(cfg)})
    assert "HF-REMOTE-CODE" in rule_ids(res[name])
    assert any(f.severity >= Severity.HIGH for f in res[name].findings), [
        (f.rule_id, f.severity) for f in res[name].findings
    ]


@pytest.mark.parametrize(
    "cfg",
    [
        {  # Stable Diffusion 1.x: a pipeline module (is_pipeline_module) and optional components
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.6.0",
            "feature_extractor": ["transformers", "CLIPImageProcessor"],
            "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "image_encoder": [None, None],
            "requires_safety_checker": True,
        },
        {  # pipeline-module classes of other families, deprecated ones included
            "_class_name": "KandinskyPipeline",
            "text_encoder": ["kandinsky", "MultilingualCLIP"],
            "alt": ["alt_diffusion", "RobertaSeriesModelWithTransformation"],
            "watermarker": ["deepfloyd_if", "IFWatermarker"],
            "size": [512, 512],
        },
        {  # modular pipeline components loaded from their repositories by type hint
            "_blocks_class_name": "SequentialPipelineBlocks",
            "_class_name": "StableDiffusionXLModularPipeline",
            "text_encoder": [
                None,
                None,
                {
                    "repo": "stabilityai/stable-diffusion-xl-base-1.0",
                    "subfolder": "text_encoder",
                    "type_hint": ["transformers", "CLIPTextModel"],
                    "revision": None,
                    "variant": None,
                },
            ],
            "guider": [None, None, {"repo": None, "type_hint": None}],
        },
    ],
    ids=["sd15", "pipeline-modules", "modular"],
)
def test_diffusers_layouts_stay_allowed(tmp_path: Path, cfg: dict) -> None:
    name = "modular_model_index.json" if "_blocks_class_name" in cfg else "model_index.json"
    _write(tmp_path, {name: cfg, "unet/config.json": {"_class_name": "UNet2DConditionModel"}})
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- sentence-transformers imports


ROUTER_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}]


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (  # Router.load: import_from_string(types[id]).load(...)
            {
                "modules.json": ROUTER_MODULES,
                "router_config.json": {"types": {"q": "evilmod.Evil"}, "structure": {"query": ["q"]}},
            },
            "evilmod.py",
        ),
        (  # legacy Asym / Router config.json with types and structure
            {
                "modules.json": [
                    {"idx": 0, "name": "0", "path": "0_Asym", "type": "sentence_transformers.models.Asym"}
                ],
                "0_Asym/config.json": {
                    "types": {"q": "evilmod.Evil"},
                    "structure": {"q": ["q"]},
                    "parameters": {},
                },
            },
            "evilmod.py",
        ),
        (  # WordEmbeddings.load: import_from_string(config["tokenizer_class"]).load(path)
            {"0_WordEmbeddings/wordembedding_config.json": {"tokenizer_class": "evilmod.Tok"}},
            "evilmod.py",
        ),
    ],
    ids=["router", "asym", "word-embeddings"],
)
def test_sentence_transformers_class_refs_in_the_repository_are_code(
    tmp_path: Path, files: dict, code: str
) -> None:
    _write(tmp_path, {**files, code: QUIET})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block"
    assert "CODE-EXECUTED-BY-LOADER" in rules
    assert any(f.path == code for f in rules["CODE-EXECUTED-BY-LOADER"])


@pytest.mark.parametrize(
    "files",
    [
        {"router_config.json": {"types": {"q": "evilpkg.Module"}, "structure": {"query": ["q"]}}},
        {"router_config.json": {"types": {"q": "subprocess.Popen"}, "structure": {"query": ["q"]}}},
        {"router_config.json": {"types": ["evilpkg.Module"], "structure": {}}},
        {"wordembedding_config.json": {"tokenizer_class": "evilpkg.Tok"}},
        {"wordembedding_config.json": {"tokenizer_class": ["not", "a", "name"]}},
        # modules.json naming an installed package: imported and called like a hydra target (allowlist first)
        {"modules.json": [{"idx": 0, "name": "0", "path": "", "type": "evilpkg.Module"}]},
        {"modules.json": [{"idx": 0, "name": "0", "path": "", "type": "os.system"}]},
    ],
)
def test_sentence_transformers_class_refs_from_elsewhere_block(tmp_path: Path, files: dict) -> None:
    _write(tmp_path, files)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_sentence_transformers_saved_layouts_stay_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "modules.json": [
                *ROUTER_MODULES,
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
            "router_config.json": {
                "types": {
                    "query_0_Transformer": "sentence_transformers.models.Transformer",
                    "document_0_StaticEmbedding": "sentence_transformers.models.StaticEmbedding",
                },
                "structure": {"query": ["query_0_Transformer"], "document": ["document_0_StaticEmbedding"]},
                "parameters": {"default_route": "document", "allow_empty_key": True},
            },
            "query_0_Transformer/config.json": {"model_type": "bert", "architectures": ["BertModel"]},
            "2_Asym/config.json": {
                "types": {"q": "sentence_transformers.models.Dense"},
                "structure": {"q": ["q"]},
                "parameters": {},
            },
            "3_WordEmbeddings/wordembedding_config.json": {
                "tokenizer_class": "sentence_transformers.models.tokenizer.WhitespaceTokenizer.WhitespaceTokenizer",
                "update_embeddings": False,
            },
            # a model config that happens to have a 'types' key is not a Router config
            "config.json": {"model_type": "custom", "types": {"a": "b.c"}},
        },
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- TorchServe model folders


def _manifest(handler: str) -> dict:
    return {"runtime": "python", "model": {"modelName": "m", "handler": handler, "modelVersion": "1.0"}}


@pytest.mark.parametrize("prefix", ["", "model_store/m/"])
def test_torchserve_model_folder_code_is_executed(prefix: str) -> None:
    """torch-model-archiver --archive-format no-archive: the folder is served as is, its .py files importable."""
    res = scan_files(
        {
            f"{prefix}MAR-INF/MANIFEST.json": json.dumps(_manifest("handler.py")),
            f"{prefix}handler.py": QUIET,
            f"{prefix}model.py": QUIET,
        }
    )
    assert _loaded(res, f"{prefix}handler.py") and _loaded(res, f"{prefix}model.py")


@pytest.mark.parametrize("handler", ["elsewhere:handle", "pkg/elsewhere.py", ""])
def test_torchserve_model_folder_handler_not_in_it_blocks(tmp_path: Path, handler: str) -> None:
    _write(tmp_path, {"MAR-INF/MANIFEST.json": _manifest(handler)})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_torchserve_model_folder_unreadable_manifest_blocks(tmp_path: Path) -> None:
    _write(tmp_path, {"MAR-INF/MANIFEST.json": '{"model": {"handler": '})
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_torchserve_model_folder_builtin_handler_allowed(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {"MAR-INF/MANIFEST.json": _manifest("image_classifier"), "index_to_name.json": {"0": "cat"}},
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules


# ---------------------------------------------------------------------------- torch.hub hubconf.py


def test_hubconf_and_the_modules_it_imports_are_code() -> None:
    res = scan_files(
        {
            "hubconf.py": "from models.net import build\ndependencies = ['torch']\n\n"
            "def model():\n    return build()\n",
            "models/__init__.py": "X = 1\n",
            "models/net.py": "from .layers import L\n\ndef build():\n    return L()\n",
            "models/layers.py": QUIET.replace("Evil", "L"),
            "unrelated.py": "def f():\n    return 1\n",
        }
    )
    for path in ("hubconf.py", "models/__init__.py", "models/net.py", "models/layers.py"):
        assert _loaded(res, path), path
    assert not _loaded(res, "unrelated.py")


# ---------------------------------------------------------------------------- custom_generate in a subfolder


def test_custom_generate_of_a_subfolder_is_code() -> None:
    res = scan_files(
        {
            "sub/config.json": json.dumps({"model_type": "llama"}),
            "sub/custom_generate/generate.py": "from .util import g\n\ndef generate(model, **kw):\n    return g()\n",
            "sub/custom_generate/util.py": "def g():\n    return 1\n",
        }
    )
    assert _loaded(res, "sub/custom_generate/generate.py") and _loaded(res, "sub/custom_generate/util.py")


@pytest.mark.parametrize("lib", ["transformers", "diffusers", "torch"])
def test_component_file_named_like_a_library_is_a_custom_component(lib: str) -> None:
    """get_class_obj_and_candidates tests <component>/<library>.py before importing the library by name."""
    cfg = {"_class_name": "StableDiffusionPipeline", "text_encoder": [lib, "CLIPTextModel"]}
    res = scan_files({"model_index.json": json.dumps(cfg), f"text_encoder/{lib}.py": QUIET})
    assert _loaded(res, f"text_encoder/{lib}.py")


# ---------------------------------------------------------------------------- entries past a cap fail closed


def _many_auto_map() -> dict:
    am: dict = {f"k{i}": 0 for i in range(2100)}
    am["AutoModel"] = "evil.M"
    return {"config.json": json.dumps({"model_type": "x", "auto_map": am})}


def _many_modules() -> dict:
    mods = [
        {"idx": i, "name": str(i), "path": "", "type": "sentence_transformers.models.Normalize"}
        for i in range(2100)
    ]
    return {"modules.json": json.dumps([*mods, {"idx": 1, "name": "x", "path": "", "type": "evil.M"}])}


def _many_components() -> dict:
    cfg: dict = {f"c{i}": [None, None] for i in range(2100)}
    cfg.update({"_class_name": "StableDiffusionPipeline", "unet": ["evil", "M"]})
    return {"model_index.json": json.dumps(cfg), "unet/evil.py": QUIET}


def _many_pipelines() -> dict:
    pipes: dict = {f"t{i}": {"impl": 0} for i in range(2100)}
    pipes["text-gen"] = {"impl": "evil.M"}
    return {"config.json": json.dumps({"model_type": "x", "custom_pipelines": pipes})}


@pytest.mark.parametrize(
    "make",
    [_many_auto_map, _many_modules, _many_components, _many_pipelines],
    ids=["auto_map", "modules.json", "model_index", "custom_pipelines"],
)
def test_code_reference_past_the_entry_cap_fails_closed(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    """Junk entries that resolve to nothing used to push the real reference past a silent cap."""
    files = {"evil.py": QUIET, **make()}
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "LIMIT-EXCEEDED" in rules or "CODE-EXECUTED-BY-LOADER" in rules


def test_auto_map_value_lists_are_read_past_eight() -> None:
    cfg = {"auto_map": {"AutoTokenizer": [None] * 8 + ["evil.M"]}}
    res = scan_files({"tokenizer_config.json": json.dumps(cfg), "evil.py": QUIET})
    assert _loaded(res, "evil.py")


# ---------------------------------------------------------------------------- Triton python backend


@pytest.mark.parametrize("quote", ['"', "'"])
def test_triton_python_backend_model_is_code(quote: str) -> None:
    res = scan_files(
        {
            "m/config.pbtxt": f'name: "m"\nbackend: {quote}python{quote}\nmax_batch_size: 8\n',
            "m/1/model.py": "class TritonPythonModel:\n    def execute(self, requests):\n        return []\n",
            "m/1/helpers.py": "def f():\n    return 1\n",
        }
    )
    assert _loaded(res, "m/1/model.py") and _loaded(res, "m/1/helpers.py")


def test_triton_python_backend_packed_environment_blocks(tmp_path: Path) -> None:
    (tmp_path / "config.pbtxt").write_text(
        'backend: "python"\nparameters: {\n  key: "EXECUTION_ENV_PATH",\n'
        '  value: {string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz"}\n}\n'
    )
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules


def test_triton_onnx_model_has_no_code(tmp_path: Path) -> None:
    (tmp_path / "config.pbtxt").write_text('name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 8\n')
    decision, rules = path_verdict(tmp_path)
    # (the .pbtxt inspector reads a Triton config as a misnamed TF text proto: a warning, not code)
    assert decision != "block", rules
    assert "CODE-EXECUTED-BY-LOADER" not in rules and "HF-REMOTE-CODE" not in rules


# ---------------------------------------------------------------------------- auto_map of nested sub-configs


@pytest.mark.parametrize(
    "cfg",
    [
        {"model_type": "x", "vision_config": {"auto_map": {"AutoModel": "vision.V"}}},
        {"model_type": "x", "a": {"b": {"text_config": {"auto_map": {"AutoConfig": "vision.V"}}}}},
    ],
)
def test_nested_sub_config_auto_map_is_code(cfg: dict) -> None:
    """AutoModel.from_config(config.vision_config, trust_remote_code=...) imports the sub-config's auto_map."""
    res = scan_files({"config.json": json.dumps(cfg), "vision.py": QUIET.replace("Evil", "V")})
    assert _loaded(res, "vision.py")


def test_many_nested_mappings_without_auto_map_stay_allowed(tmp_path: Path) -> None:
    decoder = {str(i): {"content": f"<t{i}>", "special": True} for i in range(5000)}
    _write(tmp_path, {"tokenizer_config.json": {"added_tokens_decoder": decoder, "tokenizer_class": "X"}})
    decision, rules = path_verdict(tmp_path)
    assert decision == "allow", rules
