"""Red-team round 5: chat templates that grow past any bound from inside the measured language.

First shape: a namespace accumulator rebuilt from itself doubles on every loop pass.

``{% set ns.s = ns.s ~ ns.s %}`` stays inside the measured language (namespace, set, concatenation, a loop), and no
constant is large, so the constant-size bounds passed it. A namespace attribute is the one assignment that outlives
a loop iteration: transformers' renderer (ImmutableSandboxedEnvironment, transformers 5.24) built a 16,777,216-char
string from range(24), 2,097,152 from a 20-message conversation (also through a local name, a set block or an
alias of the namespace), and 267,914,296 from the Fibonacci pair below;
range(40) or a 40-message chat is a terabyte. Real templates append to an accumulator (``ns.s = ns.s ~ m.content``)
and stay allowed, the measured corpus included.

Second shape: a constant loop under the 1,000,000-iteration bound whose every pass copies the caller's data, or that
runs once per message. The size model counts data as 1, so ``range(999999)`` of ``messages|tojson`` passed, and so did
``range(99999)`` inside ``for m in messages`` (9,999,900 characters for 100 messages); real templates loop at most
112 times.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.analysis.jinja_template import analyze_template
from tests.harness import FIXTURES, path_verdict

NS = "{% set ns = namespace(s='ab', t='c', l=[1]) %}"
GROWS = {
    "concat_range": NS + "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "concat_messages": NS + "{% for m in messages %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "add_with_data": NS
    + "{% for m in messages %}{% set ns.s = ns.s + m.content + ns.s %}{% endfor %}{{ ns.s }}",
    "fibonacci_pair": NS + "{% for m in messages %}{% set ns.s = ns.s ~ ns.t %}{% set ns.t = ns.s ~ ns.t %}"
    "{% endfor %}{{ ns.t }}",
    "mul_two": NS + "{% for m in messages %}{% set ns.s = ns.s * 2 %}{% endfor %}{{ ns.s }}",
    "list_doubling": NS + "{% for m in messages %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
    "replace_with_self": NS
    + "{% for m in messages %}{% set ns.s = ns.s|replace('a', ns.s) %}{% endfor %}{{ ns.s }}",
    "nested_small_loops": NS + "{% for i in range(8) %}{% for j in range(8) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{% endfor %}{{ ns.s }}",
    "in_a_macro": NS + "{% macro grow() %}{% set ns.s = ns.s ~ ns.s %}{% endmacro %}"
    "{% for m in messages %}{{ grow() }}{% endfor %}{{ ns.s }}",
    "through_a_local_name": NS
    + "{% for m in messages %}{% set x = ns.s ~ ns.s %}{% set ns.s = x %}{% endfor %}{{ ns.s }}",
    "through_with": NS + "{% for m in messages %}{% with x = ns.s ~ ns.s %}{% set ns.s = x %}{% endwith %}"
    "{% endfor %}{{ ns.s }}",
    "set_block": NS
    + "{% for m in messages %}{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}{% endfor %}{{ ns.s }}",
    "namespace_built_in_the_loop": NS + "{% for m in messages %}{% set n2 = namespace(s=ns.s ~ ns.s) %}"
    "{% set ns.s = n2.s %}{% endfor %}{{ ns.s }}",
    "dict_built_in_the_loop": NS
    + "{% for m in messages %}{% set d = {'a': ns.s ~ ns.s} %}{% set ns.s = d.a %}"
    "{% endfor %}{{ ns.s }}",
    "replace_with_longer_constant": NS + "{% for m in messages %}{% set ns.s = ns.s|replace('a', 'aa') %}"
    "{% endfor %}{{ ns.s }}",
    "namespace_alias": NS
    + "{% set a = ns %}{% for m in messages %}{% set ns.s = ns.s ~ a.s %}{% endfor %}{{ ns.s }}",
    "method_copy": NS + "{% for m in messages %}{% set ns.s = ns.s ~ ns.s.upper() %}{% endfor %}{{ ns.s }}",
    "slice_copy": NS + "{% for m in messages %}{% set ns.s = ns.s ~ ns.s[:] %}{% endfor %}{{ ns.s }}",
    "nested_lists": NS + "{% for m in messages %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "conditional_branch": NS
    + "{% for m in messages %}{% set ns.s = (ns.s ~ ns.s) if m.role == 'user' else ns.s %}"
    "{% endfor %}{{ ns.s }}",
}
LINEAR = {
    "append_message": NS
    + "{% for m in messages %}{% set ns.s = ns.s ~ m.content ~ '\\n' %}{% endfor %}{{ ns.s }}",
    "append_other_accumulator": NS
    + "{% for m in messages %}{% set ns.t = m.role %}{% set ns.s = ns.s ~ ns.t %}"
    "{% endfor %}{{ ns.s }}",
    "list_append": NS
    + "{% for m in messages %}{% set ns.l = ns.l + [m.content] %}{% endfor %}{{ ns.l|join }}",
    "length_of_self": NS
    + "{% for m in messages %}{% set ns.t = ns.s|length %}{% set ns.s = ns.s ~ m.content %}"
    "{% endfor %}{{ ns.s }}",
    "few_constant_doublings": NS
    + "{% for i in range(10) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "namespace_of_data_in_the_loop": NS + "{% for m in messages %}{% set n2 = namespace(s=m.content) %}"
    "{% set ns.s = ns.s ~ n2.s %}{% endfor %}{{ ns.s }}",
    "replace_same_length": NS + "{% for m in messages %}{% set ns.s = ns.s|replace('\\n', ' ') ~ m.content %}"
    "{% endfor %}{{ ns.s }}",
    "indent_each_pass": NS
    + "{% for m in messages %}{% set ns.s = (ns.s ~ m.content)|indent(2) %}{% endfor %}{{ ns.s }}",
    "times_one": NS + "{% for m in messages %}{% set ns.s = ns.s * 1 %}{% endfor %}{{ ns.s }}",
    "local_name_doubling": NS
    + "{% for m in messages %}{% set x = 'a' %}{% set x = x ~ x %}{{ x }}{% endfor %}",
    "doubling_outside_loops": NS + "{% set ns.s = ns.s ~ ns.s %}{{ ns.s }}",
}


# constant loops below the 1,000,000-iteration bound whose every pass copies the caller's data: transformers rendered
# 99,999 copies of a 1 kB conversation as 103 MB (281 MB RSS); 999,999 passes over a 100 kB prompt are 100 GB
DATA_COPIES = {
    "tojson_per_pass": "{% for i in range(999999) %}{{ messages|tojson }}{% endfor %}",
    "data_loop_inside": "{% for i in range(99999) %}{% for m in messages %}{{ m.content }}{% endfor %}{% endfor %}",
    "data_loop_outside": "{% for m in messages %}{% for i in range(999999) %}{{ m.content }}{% endfor %}{% endfor %}",
    "nested_small_constants": "{% for i in range(300) %}{% for j in range(300) %}{{ tools|tojson }}"
    "{% endfor %}{% endfor %}",
    "constant_loop_per_message": "{% for m in messages %}{% for i in range(999999) %}x{% endfor %}{% endfor %}",
    "multiplied_data": "{% for m in messages * 99999 %}{{ m.content }}{% endfor %}",
    "through_a_macro": "{% macro r() %}{{ messages|tojson }}{% endmacro %}{% for i in range(99999) %}{{ r() }}{% endfor %}",
}
BOUNDED_LOOPS = {
    "counter_only": "{% for i in range(20000) %}{{ i }}{% endfor %}",
    "small_loop_per_message": "{% for m in messages %}{% for i in range(5000) %}x{% endfor %}{% endfor %}",
    "few_data_copies": "{% for i in range(5000) %}{{ messages|tojson }}{% endfor %}",
    "functionary_style": "{% for i in range(112) %}{% for m in messages %}{{ m.content }}{% endfor %}{% endfor %}",
}


def _amplification(template: str) -> bool:
    return any(
        i.rule_id == "TEMPLATE-UNLISTED" and "rebuilt from" in json.dumps(i.evidence)
        for i in analyze_template(template)
    )


@pytest.mark.parametrize("name", sorted(GROWS))
def test_self_rebuilt_accumulator_is_amplification(name: str) -> None:
    assert _amplification(GROWS[name]), name


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_linear_accumulators_stay_allowed(name: str) -> None:
    assert analyze_template(LINEAR[name]) == [], name


@pytest.mark.parametrize("name", sorted(DATA_COPIES))
def test_constant_loops_copying_data_are_amplification(name: str) -> None:
    issues = analyze_template(DATA_COPIES[name])
    assert any("caller's data" in json.dumps(i.evidence) for i in issues), issues


@pytest.mark.parametrize("name", sorted(BOUNDED_LOOPS))
def test_bounded_constant_loops_stay_allowed(name: str) -> None:
    assert analyze_template(BOUNDED_LOOPS[name]) == [], name


def test_growing_template_in_a_repository_blocks(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "chat_template": GROWS["concat_messages"]})
    )
    (tmp_path / "chat_template.jinja").write_text(GROWS["fibonacci_pair"])
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert {f.path for f in rules["TEMPLATE-UNLISTED"]} == {"tokenizer_config.json", "chat_template.jinja"}


@pytest.mark.slow
def test_measured_real_templates_have_no_growth() -> None:
    files = sorted((FIXTURES / "templates" / "benign").glob("*.jinja"))
    assert len(files) > 80
    flagged = [p.name for p in files if _amplification(p.read_text(encoding="utf-8"))]
    assert flagged == []
