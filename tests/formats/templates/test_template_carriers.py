"""Templates are found by content in every carrier, and what cannot be read whole blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.findings import Coverage, Severity
from tests.formats.gguf.test_gguf import gguf, kv_str
from tests.harness import FIXTURES, inspect_bytes, rule_ids, scan

SSTI = "{{ lipsum.__globals__['os'].popen('id').read() }}"
REAL = (FIXTURES / "templates" / "benign" / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text()


def _found(data: bytes, name: str) -> dict[str, Severity]:
    fr = inspect_bytes(data, name)
    out: dict[str, Severity] = {}
    for f in fr.findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (json.dumps({"chat_template": SSTI}), "tokenizer_config.json"),
        (
            json.dumps(
                {"chat_template": [{"name": "default", "template": REAL}, {"name": "rag", "template": SSTI}]}
            ),
            "tokenizer_config.json",
        ),
        (json.dumps({"chat_template": {"default": REAL, "tool_use": SSTI}}), "chat_template.json"),
        (json.dumps({"processor_class": "X", "chat_template": SSTI}), "processor_config.json"),
        (json.dumps({"chat_template": REAL, "chat_template": SSTI}), "preprocessor_config.json"),  # noqa: F601
        (json.dumps({"anything": {"deep": [SSTI]}}), "generation_config.json"),  # by content, any key
        (SSTI, "additional_chat_templates/tool_use.jinja"),
        (SSTI, "template"),
        ("system_prompt: hi\nprompt_template: " + json.dumps(SSTI) + "\n", "config.yaml"),
        ("x: 1\n" + SSTI, "notes.md"),
    ],
)
def test_carriers(data: str, name: str) -> None:
    assert _found(data.encode(), name).get("TEMPLATE-SSTI") is Severity.CRITICAL


def test_duplicate_chat_template_keys_are_both_judged() -> None:
    raw = '{"chat_template": "' + SSTI.replace('"', '\\"') + '", "chat_template": "{{ messages }}"}'
    assert "TEMPLATE-SSTI" in _found(raw.encode(), "tokenizer_config.json")


def test_gguf_every_named_template() -> None:
    kv = kv_str("tokenizer.chat_template", REAL) + kv_str("tokenizer.chat_template.rag", "{{ x|attr(k) }}")
    fr = inspect_bytes(gguf(kv, 2), "m.gguf")
    assert {f.rule_id for f in fr.findings} >= {"TEMPLATE-SSTI", "TEMPLATE-UNLISTED"}
    bad = inspect_bytes(gguf(kv_str("tokenizer.chat_template", "{% if %}"), 1), "m.gguf")
    assert [(f.rule_id, f.severity) for f in bad.findings] == [("TEMPLATE-INVALID", Severity.HIGH)]
    assert bad.coverage is Coverage.PARTIAL


def test_real_templates_pass_in_every_carrier() -> None:
    for data, name in [
        (json.dumps({"chat_template": REAL}), "tokenizer_config.json"),
        (json.dumps({"chat_template": [{"name": "default", "template": REAL}]}), "tokenizer_config.json"),
        (REAL, "chat_template.jinja"),
        ("prompt_template: " + json.dumps(REAL) + "\n", "config.yaml"),
    ]:
        fr = inspect_bytes(data.encode(), name)
        assert fr.coverage is Coverage.FULL and [f for f in fr.findings if f.severity > Severity.LOW] == [], (
            name
        )


def test_too_big_too_deep_or_unparseable_fails_closed() -> None:
    cases = [
        (("{{ messages }}" + " " * (5 << 20)).encode(), "chat_template.jinja", "TEMPLATE-OVERSIZE"),
        (
            json.dumps({"chat_template": "{{ x }}" + "a" * (1 << 20)}).encode(),
            "tokenizer_config.json",
            "TEMPLATE-OVERSIZE",
        ),
        (b"{% if x %}" * 1 + b"{{ y }}", "chat_template.jinja", "TEMPLATE-INVALID"),
        (("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}").encode(), "chat_template.jinja", "TEMPLATE-INVALID"),
        (json.dumps({"chat_template": "{% for %}"}).encode(), "tokenizer_config.json", "TEMPLATE-INVALID"),
    ]
    for data, name, rule in cases:
        fr = inspect_bytes(data, name)
        sev = {f.rule_id: f.severity for f in fr.findings}
        assert sev.get(rule) is Severity.HIGH and fr.coverage is Coverage.PARTIAL, (name, rule, fr.findings)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"LaTeX: \\frac{{a}}{{b}} and a {% broken tag\n", "README.md"),
        (b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}", "template"),  # Ollama (Go)
        (b"{{ if .Values }}\nkey: {{ .Values.x }}\n", "chart.yaml"),  # Helm-style YAML: not YAML, not Jinja
        (b"a: 1\n" * 200000 + b"b: '{{ x }}'\n", "big.yaml"),  # too big for YAML, judged as text
        (
            b"# NeMo model\n```yaml\nencoder:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n```\n[",
            "README.md",
        ),
    ],
)
def test_braces_that_no_jinja_renderer_takes_are_not_blocking(data: bytes, name: str) -> None:
    fr = inspect_bytes(data, name)
    assert [f for f in fr.findings if f.severity >= Severity.MEDIUM] == []


def test_repository_scan_reports_a_template_once(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": REAL + SSTI}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    extra = tmp_path / "additional_chat_templates"
    extra.mkdir()
    (extra / "rag.jinja").write_text("{% set k = '__glo' ~ 'bals__' %}{{ lipsum[k] }}")
    report = scan(tmp_path)
    ssti = [f for f in report.all_findings() if f.rule_id == "TEMPLATE-SSTI"]
    assert sorted(Path(f.path).name for f in ssti) == ["rag.jinja", "tokenizer_config.json"]
    assert report.verdict.decision.value == "block" and "TEMPLATE-SSTI" in rule_ids(report)


@pytest.mark.parametrize("window", [300, 1000, 1 << 20])
def test_json_too_big_to_parse_is_scanned_window_by_window(
    monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    from scanner.analysis import template_carriers
    from scanner.formats import data_files

    monkeypatch.setattr(data_files, "JSON_PARSE_BYTES", 10)  # every JSON takes the unparsed (huge file) path
    monkeypatch.setattr(template_carriers, "LITERAL_WINDOW", window)
    vocab = {f"tok{i}": i for i in range(400)} | {"{{": 401, "{%": 402}
    doc = {"model": {"vocab": vocab}, "chat_template": "x" * 700 + SSTI, "post": {"\\u005ftarget_": 1}}
    raw = json.dumps(doc).replace('"\\\\u005ftarget_"', '"\\u005ftarget_"').replace("1}}", '"os.system"}}')
    found = _found(raw.encode(), "tokenizer.json")
    assert found.get("TEMPLATE-SSTI") is Severity.CRITICAL and found.get("CONFIG-TARGET-DANGEROUS"), found
    benign = json.dumps({"model": {"vocab": vocab}, "chat_template": REAL}).encode()
    assert {r: s for r, s in _found(benign, "tokenizer.json").items() if s > Severity.LOW} == {}
