"""NeMo 2 checkpoint contexts (``context/io.json`` + ``model.yaml``) written by NeMo 2.7.3's own serializer.

The benign contexts (fixtures/nemo2/, from fixtures/nemo2/gen_nemo2.py) pass on the hydra-nemo2 allowlist;
variants of a real one block: a pyref to os.system, to a NeMo class left out of the audit, an audited
AutoTokenizer given trust_remote_code (by its label or only by the metadata's argument_names, which is what
fiddle reads back), and a dangerous pyref nested in an allowed config's field.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.harness import FIXTURES, path_verdict

NEMO2 = FIXTURES / "nemo2"
BENIGN = sorted(
    e["path"] for e in json.loads((NEMO2 / "manifest.json").read_text())["files"] if e["expect"] == "allow"
)
REAL = NEMO2 / "benign" / "llama32_1b" / "context"


def _doc() -> dict[str, Any]:
    return json.loads((REAL / "io.json").read_text())


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    ctx = tmp_path / "ckpt" / "context"
    ctx.mkdir(parents=True)
    shutil.copy(REAL / "model.yaml", ctx / "model.yaml")
    (ctx / "io.json").write_text(json.dumps(doc))
    return tmp_path / "ckpt"


def _key_of(doc: dict[str, Any], module: str, name: str) -> str:
    """The Config object whose metadata's fn_or_cls is module:name."""
    objs = doc["objects"]
    for key, o in objs.items():
        meta = o.get("metadata")
        if isinstance(meta, dict) and meta.get("type") == "ref":
            fn = objs[meta["key"]]["items"][0][1]
            if fn == {"type": "pyref", "module": module, "name": name}:
                return key
    raise AssertionError(f"{module}:{name} not in the fixture")


def _set_pyref(doc: dict[str, Any], old: tuple[str, str], new: tuple[str, str]) -> None:
    text = json.dumps(doc).replace(
        json.dumps({"type": "pyref", "module": old[0], "name": old[1]}),
        json.dumps({"type": "pyref", "module": new[0], "name": new[1]}),
    )
    doc.clear()
    doc.update(json.loads(text))


TOK = ("nemo.collections.common.tokenizers.huggingface.auto_tokenizer", "AutoTokenizer")
CFG = ("nemo.collections.llm.gpt.model.llama", "Llama32Config1B")


def _add_arg(doc: dict[str, Any], target: tuple[str, str], label: str, name: str, value: Any) -> None:
    """Append an argument to the Config of ``target``: a labelled value and its name in argument_names."""
    key = _key_of(doc, *target)
    obj = doc["objects"][key]
    obj["items"].append([label, value])
    meta = doc["objects"][obj["metadata"]["key"]]
    names = meta["items"][1][1]
    if names.get("type") == "ref":
        names = doc["objects"][names["key"]]
    names["items"].append([f"Index(index={len(names['items'])})", name])


@pytest.mark.parametrize("rel", BENIGN)
def test_real_nemo2_contexts_are_allowed(rel: str) -> None:
    decision, rules = path_verdict(NEMO2 / rel)
    assert decision == "allow", (rel, rules)


def test_training_context_with_pickled_plugin_stays_blocked() -> None:
    decision, rules = path_verdict(NEMO2 / "benign" / "llama31_8b_training" / "context")
    assert decision == "block"
    assert "CONFIG-TARGET-UNLISTED" in rules


@pytest.mark.parametrize(
    ("new", "rule"),
    [
        (("os", "system"), "CONFIG-TARGET-DANGEROUS"),
        (("subprocess", "Popen"), "CONFIG-TARGET-DANGEROUS"),
        # HeterogeneousTransformerConfig reads the path its config names: left out of the audit
        (
            ("nemo.collections.llm.gpt.model.llama_nemotron", "Llama33NemotronSuper49BConfig"),
            "CONFIG-TARGET-UNLISTED",
        ),
        (("nemo.collections.llm.gpt.model.llama", "HFLlamaImporter"), "CONFIG-TARGET-UNLISTED"),
        (("nemo.collections.llm.gpt.model.llama", "MLPerfLoRALlamaModel"), "CONFIG-TARGET-UNLISTED"),
        (
            ("nemo.lightning.pytorch.plugins.mixed_precision", "MegatronMixedPrecision"),
            "CONFIG-TARGET-UNLISTED",
        ),
        # a name glob never reaches a dotted walk, and nemo.* is not listed as a whole
        (("nemo.collections.llm.gpt.model.llama", "os.system"), "CONFIG-TARGET-DANGEROUS"),
        (("nemo.collections.llm.api", "finetune"), "CONFIG-TARGET-UNLISTED"),
    ],
)
def test_swapped_pyref_blocks(tmp_path: Path, new: tuple[str, str], rule: str) -> None:
    doc = _doc()
    _set_pyref(doc, CFG, new)
    decision, rules = path_verdict(_write(tmp_path, doc))
    assert decision == "block", rules
    assert rule in rules


def test_pyref_nested_in_allowed_config_field_blocks(tmp_path: Path) -> None:
    doc = _doc()
    _add_arg(
        doc,
        CFG,
        "Attr(name='activation_func')",
        "activation_func",
        {"type": "pyref", "module": "subprocess", "name": "getoutput"},
    )
    decision, rules = path_verdict(_write(tmp_path, doc))
    assert decision == "block", rules
    assert "CONFIG-TARGET-DANGEROUS" in rules


@pytest.mark.parametrize(
    ("label", "value"),
    [
        (
            "Attr(name='trust_remote_code')",
            {"type": "leaf", "value": True, "paths": ["<root>.model.tokenizer.x"]},
        ),
        ("Attr(name='trust_remote_code')", True),
        ("Attr(name='trust_remote_code')", "yes"),
        # fiddle names values from argument_names, not from the label beside them
        ("Attr(name='use_fast')", True),
    ],
)
def test_audited_tokenizer_with_remote_code_blocks(tmp_path: Path, label: str, value: Any) -> None:
    doc = _doc()
    _add_arg(doc, TOK, label, "trust_remote_code", value)
    decision, rules = path_verdict(_write(tmp_path, doc))
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNLISTED" in rules


def test_tokenizer_with_remote_code_false_is_allowed(tmp_path: Path) -> None:
    doc = _doc()
    _add_arg(
        doc, TOK, "Attr(name='trust_remote_code')", "trust_remote_code", {"type": "leaf", "value": False}
    )
    decision, rules = path_verdict(_write(tmp_path, copy.deepcopy(doc)))
    assert decision == "allow", rules


def test_model_yaml_tokenizer_with_remote_code_blocks(tmp_path: Path) -> None:
    ckpt = _write(tmp_path, _doc())
    yml = ckpt / "context" / "model.yaml"
    text = yml.read_text()
    assert text.count("  trust_remote_code: false\n") == 1  # model.yaml writes every default
    yml.write_text(text.replace("  trust_remote_code: false\n", "  trust_remote_code: true\n"))
    decision, rules = path_verdict(ckpt)
    assert decision == "block", rules


def test_remote_code_in_a_kwargs_dict_blocks(tmp_path: Path) -> None:
    """A dict's keys come back from its metadata tuple: MegatronStrategy(**kwargs) with trust_remote_code."""
    doc = _doc()
    strategy = doc["objects"][
        _key_of(doc, "nemo.lightning.pytorch.strategies.megatron_strategy", "MegatronStrategy")
    ]
    kwargs = doc["objects"][dict(strategy["items"])["Attr(name='kwargs')"]["key"]]
    kwargs["items"].append(["Key(key='x')", True])
    keys = kwargs["metadata"]
    keys = doc["objects"][keys["key"]] if keys.get("type") == "ref" else keys
    keys["items"].append([f"Index(index={len(keys['items'])})", "trust_remote_code"])
    decision, rules = path_verdict(_write(tmp_path, doc))
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNLISTED" in rules
