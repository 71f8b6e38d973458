"""Red-team round 6: code carriers.

Hub attention kernels: transformers 5.24 pops ``attn_implementation`` from config.json (its sub-configs, the
``_attn_implementation`` property setter, sentence-transformers' ``model_kwargs``) and, for a value shaped like a Hub
repository, ``from_pretrained`` downloads that kernel repository with the ``kernels`` library and imports it, with no
trust_remote_code (_check_and_adjust_attn_implementation -> load_and_register_attn_kernel -> get_kernel). Confirmed
with transformers 5.24 and a recording ``kernels`` stand-in: AutoModelForCausalLM.from_pretrained of a saved Llama
whose config.json read ``"attn_implementation": "kernels-community/flash-attn2@0123abc"`` called
get_kernel("kernels-community/flash-attn2", revision="0123abc", trust_remote_code=False); the repository was allowed.

trust_remote_code as hydra hands it to the callee: NeMo 2.7.3's AutoTokenizer (an allowlisted target) passes it to
transformers, which tests plain truthiness. OmegaConf.load/create + hydra.utils.instantiate (hydra 1.3.2) ran a local
tokenizer folder's auto_map code (marker file) for ``trust_remote_code: ${flag}``, ``${..flag}``,
``${oc.select:flag,false}``, ``${oc.env:UNSET,true}``, ``"False"``, ``"no"``, ``[0]``, ``{a: 0}``,
``{_target_: torch.nn.Identity}`` and ``_args_`` with true at index 12; only ``false`` did not run. The plain YAML
was allowed for all but a literal true; in a .nemo, every string other than true/yes/on/1/y and every interpolation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import make_tar, path_verdict, rule_ids, scan_files

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16}


def _cfg(**extra: object) -> str:
    return json.dumps({**LLAMA, **extra})


@pytest.mark.parametrize(
    ("name", "content"),
    [
        # an attacker repository
        ("config.json", _cfg(attn_implementation="evil-org/flash-kernel")),
        # a trusted repository at a chosen revision (a PR commit), and a chosen function of it
        ("config.json", _cfg(attn_implementation="kernels-community/flash-attn2@0123abc")),
        ("config.json", _cfg(attn_implementation="kernels-community/flash-attn2:evil_fn")),
        # the property setter, the per-sub-config mapping, a nested sub-config, a wrapper prefix
        ("config.json", _cfg(_attn_implementation="evil-org/k")),
        ("config.json", _cfg(attn_implementation={"": "sdpa", "text_config": "evil-org/k"})),
        ("config.json", _cfg(text_config={"model_type": "llama", "attn_implementation": "evil-org/k"})),
        ("config.json", _cfg(attn_implementation="sdpa|evil-org/k")),
        # sentence-transformers passes model_kwargs / the legacy model_args to from_pretrained
        ("sentence_bert_config.json", json.dumps({"model_args": {"attn_implementation": "evil-org/k"}})),
        ("config_sentence_transformers.json", json.dumps({"model_kwargs": {"attn_implementation": "a/b"}})),
    ],
)
def test_hub_kernel_blocks(name: str, content: str) -> None:
    res = scan_files({name: content, "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "})
    assert "HF-HUB-KERNEL" in rule_ids(res[name])


@pytest.mark.parametrize(
    "value",
    [
        "sdpa",
        "eager",
        "flash_attention_2",
        "paged|eager",
        "kernels-community/flash-attn2",
        "paged|kernels-community/vllm-flash-attn3",
    ],
)
def test_stock_attention_allowed(value: str) -> None:
    res = scan_files({"config.json": _cfg(attn_implementation=value)})
    assert "HF-HUB-KERNEL" not in rule_ids(res["config.json"])


# ---------------------------------------------------------------------------- hydra: trust_remote_code as passed

TOK = "nemo.collections.common.tokenizers.huggingface.auto_tokenizer.AutoTokenizer"
NOT_TRUE = [
    "false",
    "null",
    "0",
    "''",
    "${oc.env:HF_TRUST}",
    "${oc.env:HF_TRUST,false}",
    "${nope}",
    "${..nope}",
]
TRUE = [
    "${flag}",
    "${..flag}",
    "${.missing}",
    "${oc.select:flag,false}",
    "${oc.env:UNSET,true}",
    "'False'",
    "'no'",
    "[0]",
    "{a: 0}",
    "{_target_: torch.nn.Identity}",
    "${a}${b}",
]


def _tok(value: str) -> str:
    return f"flag: true\nnope: false\ntok:\n  _target_: {TOK}\n  pretrained_model_name: ./t\n  trust_remote_code: {value}\n"


@pytest.mark.parametrize("value", TRUE)
def test_hydra_remote_code_true_as_passed_blocks(value: str) -> None:
    res = scan_files({"conf.yaml": _tok(value)})
    assert "CONFIG-TARGET-UNLISTED" in rule_ids(res["conf.yaml"]), value


@pytest.mark.parametrize("value", NOT_TRUE)
def test_hydra_remote_code_false_allowed(value: str) -> None:
    res = scan_files({"conf.yaml": _tok(value)})
    assert "CONFIG-TARGET-UNLISTED" not in rule_ids(res["conf.yaml"]), value


@pytest.mark.parametrize(
    "doc",
    [
        # positional: AutoTokenizer's 13th parameter
        f"tok:\n  _target_: {TOK}\n  _args_: [./t, null, null, null, null, null, null, null, null, null, [], true, on]\n",
        # a merge key supplies it (OmegaConf's loader flattens <<), or supplies the target itself
        f"base: &b {{trust_remote_code: 'yes please'}}\ntok:\n  <<: *b\n  _target_: {TOK}\n",
        f"base: &b {{_target_: {TOK}}}\ntok:\n  <<: *b\n  trust_remote_code: ${{flag}}\nflag: 1\n",
        # JSON read by hydra/OmegaConf
        json.dumps({"tok": {"_target_": TOK, "trust_remote_code": "${x}"}, "x": True}),
    ],
)
def test_hydra_remote_code_other_spellings(doc: str) -> None:
    name = "conf.json" if doc.startswith("{") else "conf.yaml"
    res = scan_files({name: doc})
    assert "CONFIG-TARGET-UNLISTED" in rule_ids(res[name])


def test_hydra_positional_false_allowed() -> None:
    doc = f"tok:\n  _target_: {TOK}\n  _args_: [./t, null, null, null, null, null, null, null, null, null, [], true, false]\n"
    assert "CONFIG-TARGET-UNLISTED" not in rule_ids(scan_files({"conf.yaml": doc})["conf.yaml"])


@pytest.mark.parametrize("value", ["'False'", "${flag}", "[0]", "${oc.env:UNSET,true}"])
def test_nemo_remote_code_true_as_passed_blocks(tmp_path: Path, value: str) -> None:
    p = tmp_path / "m.nemo"
    cfg = f"flag: true\ntokenizer:\n  library: huggingface\n  type: ./t\n  trust_remote_code: {value}\n"
    p.write_bytes(make_tar([("./model_config.yaml", cfg.encode()), ("./tokenizer.vocab", b"a\nb\n")]))
    got, rules = path_verdict(p)
    assert got == "block" and "CONFIG-TARGET-UNLISTED" in rules, rules


@pytest.mark.parametrize(
    ("value", "blocked"), [("'no'", True), ("${flag}", True), ("true", True), ("false", False)]
)
def test_extracted_nemo_config_remote_code(value: str, blocked: bool) -> None:
    # SaveRestoreConnector.model_extracted_dir: NeMo restores from an extracted folder's model_config.yaml
    cfg = f"flag: true\ntokenizer:\n  library: huggingface\n  type: ./t\n  trust_remote_code: {value}\n"
    res = scan_files({"model_config.yaml": cfg})
    assert ("CONFIG-TARGET-UNLISTED" in rule_ids(res["model_config.yaml"])) is blocked


def test_literal_true_on_target_reported_once() -> None:
    res = scan_files({"conf.yaml": _tok("true")})
    assert [f.rule_id for f in res["conf.yaml"].findings].count("CONFIG-TARGET-UNLISTED") == 1


def test_merge_key_graph_is_walked_once() -> None:
    # every mapping merges all earlier ones: a naive recursive merge lookup is exponential
    lines = ["l0: &L0 {a: 1}"]
    for i in range(1, 60):
        lines.append(f"l{i}: &L{i} {{<<: [" + ", ".join(f"*L{j}" for j in range(i)) + "]}")
    lines.append(f"tok: {{_target_: {TOK}, <<: [" + ", ".join(f"*L{j}" for j in range(60)) + "]}")
    res = scan_files({"conf.yaml": "\n".join(lines) + "\n"})
    assert "CONFIG-TARGET-UNLISTED" not in rule_ids(res["conf.yaml"])


# ---------------------------------------------------------------------------- MLflow transformers flavor sources

_TF_FLAVOR = (
    "flavors:\n  python_function:\n    loader_module: mlflow.transformers\n  transformers:\n"
    "    task: text-generation\n    pipeline_model_type: {model_type}\n    framework: pt\n{extra}"
)


@pytest.mark.parametrize(
    "extra",
    [
        # confirmed: mlflow.transformers.load_model (MLflow 3.18 with MLFLOW_ALLOW_MODEL_CODE_EXECUTION=true, the
        # default before 3.18) ran the base folder's configuration code via AutoConfig(trust_remote_code=True)
        "    local_base_model_path: /srv/models/base\n",
        # save_pretrained=False: the model and its components come from the Hub at the recorded revision
        "    source_model_name: evil/model\n    source_model_revision: 0123abc\n",
        "    source_model_name: evil/model\n    source_model_revision: 0123abc\n"
        "    components: [tokenizer]\n    tokenizer_type: EvilTok\n    tokenizer_name: evil/tok\n",
    ],
)
def test_mlflow_transformers_external_model_blocks(tmp_path: Path, extra: str) -> None:
    (tmp_path / "MLmodel").write_text(_TF_FLAVOR.format(model_type="EvilForCausalLM", extra=extra))
    got, rules = path_verdict(tmp_path)
    assert got == "block" and "CARRIER-CODE-MISSING" in rules, rules


def test_mlflow_transformers_saved_model_allowed(tmp_path: Path) -> None:
    # what mlflow.transformers.save_model writes by default (save_pretrained=True): the weights are in model/
    extra = "    source_model_name: gpt2\n    model_binary: model\n    components: [tokenizer]\n"
    (tmp_path / "MLmodel").write_text(_TF_FLAVOR.format(model_type="GPT2LMHeadModel", extra=extra))
    got, rules = path_verdict(tmp_path)
    assert "CARRIER-CODE-MISSING" not in rules, rules
