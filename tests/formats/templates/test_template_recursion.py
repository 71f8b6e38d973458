"""Recursion and deep loop nesting in chat templates are judged statically, never rendered.

A macro that calls itself on the same value, a counter, a constant or anything that is not a strict part of its
data (directly, mutually, through ``caller()``, through a macro passed as a value, or ``loop(...)`` of a
recursive for) can run without bound; real templates that walk a JSON schema by its parts stay allowed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scanner.analysis.jinja_template import analyze_template, parse_template
from scanner.analysis.template_recursion import MAX_LOOP_NESTING, MAX_UNITS, recursion_hits
from tests.harness import FIXTURES, path_verdict


def _loops(n: int, var: str = "i", inner: str = "x", over: str = "messages") -> str:
    return "".join(f"{{% for {var}{k} in {over} %}}" for k in range(n)) + inner + "{% endfor %}" * n


UNBOUNDED = {
    "self_same_value": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "self_counter_branching": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    "{{ f(99) }}",
    "self_increment": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "mutual": "{% macro a(x) %}{{ b(x) }}{% endmacro %}{% macro b(y) %}{{ a(y) }}{{ a(y) }}{% endmacro %}"
    "{{ a(messages) }}",
    "three_way": "{% macro a(x) %}{{ b(x) }}{% endmacro %}{% macro b(x) %}{{ c(x ~ 'z') }}{% endmacro %}"
    "{% macro c(x) %}{{ a(x|trim) }}{% endmacro %}{{ a('') }}",
    "constant_argument": "{% macro f(x) %}{{ f({'a': 1}) }}{% endmacro %}{{ f(1) }}",
    "global_data_argument": "{% macro f(x) %}{{ f(messages[0]) }}{{ f(messages[0]) }}{% endmacro %}{{ f(1) }}",
    "keyword_same_value": "{% macro f(x, n=3) %}{% if n %}{{ f(x=x, n=n-1) }}{{ f(x=x, n=n-1) }}{% endif %}"
    "{% endmacro %}{{ f(1) }}",
    "caller_block_of_itself": "{% macro f() %}{% call f() %}x{% endcall %}{{ caller() }}{% endmacro %}{{ f() }}",
    "caller_body_recurses": "{% macro g() %}{{ caller() }}{{ caller() }}{% endmacro %}"
    "{% macro f(n) %}{% call g() %}{{ f(n) }}{% endcall %}{% endmacro %}{{ f(1) }}",
    "macro_as_value": "{% macro f(g) %}{{ g(g) }}{{ g(g) }}{% endmacro %}{{ f(f) }}",
    "recursive_loop_same_items": "{% for x in messages recursive %}{{ loop(messages) }}{% endfor %}",
    "recursive_loop_constant": "{% for x in [1] recursive %}{{ loop([1]) }}{{ loop([1]) }}{% endfor %}",
    # values that look like parts but can be their own part
    "one_char_string_elements": "{% macro f(s, n) %}{% if n %}{% for c in s %}{{ f(c, n - 1) }}{{ f(c, n - 1) }}"
    "{% endfor %}{% endif %}{% endmacro %}{{ f('a', 60) }}",
    "slice": "{% macro f(s) %}{% if s %}{{ f(s[1:]) }}{{ f(s[1:]) }}{% endif %}{% endmacro %}{{ f('abc') }}",
    "int_index_of_string": "{% macro f(s, n) %}{% if n %}{{ f(s[0], n-1) }}{{ f(s[0], n-1) }}{% endif %}"
    "{% endmacro %}{{ f('a', 60) }}",
    "default_back_to_itself": "{% macro f(x, n) %}{% if n %}{{ f(x.a|default(x), n-1) }}{{ f(x.a|default(x), n-1) }}"
    "{% endif %}{% endmacro %}{{ f({}, 60) }}",
    "undefined_to_list": "{% macro f(x, n) %}{% if n %}{{ f(x.a|list, n-1) }}{{ f(x.a|list, n-1) }}{% endif %}"
    "{% endmacro %}{{ f({}, 60) }}",
    "get_with_empty_default": "{% macro f(x, n) %}{% if n %}{{ f(x.get('a', {}), n-1) }}{{ f(x.get('a', {}), n-1) }}"
    "{% endif %}{% endmacro %}{{ f({}, 60) }}",
    "namespace_cycle": "{% set ns = namespace(a=none) %}{% set ns.a = ns %}{% macro f(x, n) %}{% if n %}"
    "{{ f(x.a, n-1) }}{{ f(x.a, n-1) }}{% endif %}{% endmacro %}{{ f(ns, 60) }}",
    "namespace_holding_the_parameter": "{% macro f(x, n) %}{% set st = namespace(v=x) %}{% if n %}{{ f(st.v, n-1) }}"
    "{{ f(st.v, n-1) }}{% endif %}{% endmacro %}{{ f(1, 60) }}",
    "alias": "{% macro f(x, n) %}{% set y = x %}{% if n %}{{ f(y, n-1) }}{{ f(y, n-1) }}{% endif %}{% endmacro %}"
    "{{ f(1, 60) }}",
    "parameter_rebound_to_a_wrapper": "{% macro f(x, n) %}{% set x = {'a': x} %}{% if n %}{{ f(x.a, n-1) }}"
    "{{ f(x.a, n-1) }}{% endif %}{% endmacro %}{{ f(1, 60) }}",
    "items_of_a_wrapper": "{% macro f(x) %}{% set w = {'a': x} %}{% for k, v in w.items() %}{{ f(v) }}{{ f(v) }}"
    "{% endfor %}{% endmacro %}{{ f(1) }}",
    "star_args": "{% macro f(x) %}{{ f(*varargs) }}{% endmacro %}{{ f(1) }}",
    "nested_macro": "{% macro outer(x) %}{% macro inner(y) %}{{ inner(y) }}{{ inner(y) }}{% endmacro %}"
    "{{ inner(x) }}{% endmacro %}{{ outer(1) }}",
    "deep_loops": _loops(MAX_LOOP_NESTING + 2),
    "deep_ranges": _loops(MAX_LOOP_NESTING + 1, over="range(messages|length)"),
    "deep_loops_through_macros": "{% macro m() %}"
    + _loops(5, "j")
    + "{% endmacro %}"
    + _loops(5, inner="{{ m() }}"),
}

BOUNDED = {
    "walks_a_schema": "{% macro f(s) %}{% if s is mapping %}{% for k, v in s|dictsort %}{{ f(v) }}{% endfor %}"
    "{% elif s is string %}{{ s }}{% else %}{% for i in s %}{{ f(i) }}{% endfor %}{% endif %}{% endmacro %}"
    "{{ f(tools) }}",
    "attribute_and_key": "{% macro f(s) %}{% if s.type == 'array' %}{{ f(s['items']) }}{% elif s.type == 'object' %}"
    "{{ f(s.additionalProperties) }}{% endif %}{% endmacro %}{{ f(tools[0]) }}",
    "not_a_string_branch": "{% macro f(v) %}{% if v is iterable and v is not string %}{% for i in v %}{{ f(i) }}"
    "{% endfor %}{% else %}{{ v }}{% endif %}{% endmacro %}{{ f(tools) }}",
    "mutual_with_one_descent": "{% macro a(x) %}{{ b(x.items) }}{% endmacro %}{% macro b(y) %}"
    "{% for k, v in y|dictsort %}{{ a(v) }}{% endfor %}{% endmacro %}{{ a(tools) }}",
    "get_then_nonempty_branch": "{% macro f(p, d) %}{% set it = p.get('items', {}) %}{% if it|length == 0 %}[]"
    "{% else %}{{ f(it, d + 1) }}{% endif %}{% endmacro %}{{ f(tools[0], 0) }}",
    "recursive_loop_on_children": "{% for x in tools recursive %}{{ x.name }}{% if x.children %}{{ loop(x.children) }}"
    "{% endif %}{% endfor %}",
    "three_loops": _loops(3),
    "plain_macro_in_loop": "{% macro r(m) %}{{ m.role }}{% endmacro %}{% for m in messages %}{{ r(m) }}{% endfor %}",
}


@pytest.mark.parametrize("name", sorted(UNBOUNDED))
def test_unbounded_recursion_or_nesting_is_reported(name: str) -> None:
    t0 = time.monotonic()
    hits = recursion_hits(parse_template(UNBOUNDED[name]))
    issues = analyze_template(UNBOUNDED[name])
    assert time.monotonic() - t0 < 2
    assert hits, name
    found = [i for i in issues if i.rule_id == "TEMPLATE-UNLISTED"]
    assert found and any(
        "resource amplification" in str(h) for i in found for h in [i.message, *i.evidence.get("hits", [])]
    ), issues


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_recursion_on_parts_of_the_data_is_allowed(name: str) -> None:
    assert recursion_hits(parse_template(BOUNDED[name])) == []
    assert not [i for i in analyze_template(BOUNDED[name]) if i.rule_id == "TEMPLATE-UNLISTED"]


REAL = sorted((FIXTURES / "templates" / "benign").glob("*.jinja")) + sorted(
    (FIXTURES / "chat-templates").glob("*.jinja")
)


def test_real_chat_templates_recursing_on_their_data_pass() -> None:
    names = {p.name for p in REAL}
    for family in ("llama", "Qwen", "mistral", "gemma", "deepseek", "Hermes", "Kimi", "functionary"):
        assert any(family.lower() in n.lower() for n in names), family
    judged = 0
    for p in REAL:
        try:
            ast = parse_template(p.read_text())
        except Exception:  # noqa: BLE001 - a few use renderer-specific tags ({% generation %})
            continue
        judged += 1
        assert recursion_hits(ast) == [], p.name
        messages = [
            i.message for i in analyze_template(p.read_text()) if "resource amplification" in i.message
        ]
        assert not messages, (p.name, messages)
    assert judged > 60


@pytest.mark.parametrize("name", ["self_counter_branching", "mutual", "macro_as_value", "deep_loops"])
@pytest.mark.parametrize("carrier", ["tokenizer_config.json", "chat_template.jinja"])
def test_recursive_template_blocks_a_repo(tmp_path: Path, name: str, carrier: str) -> None:
    src = UNBOUNDED[name]
    if carrier == "tokenizer_config.json":
        (tmp_path / carrier).write_text(json.dumps({"chat_template": src}))
    else:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 8}))
        (tmp_path / carrier).write_text(src)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "TEMPLATE-UNLISTED" in rules


def test_too_many_macros_fail_closed() -> None:
    src = "".join(
        f"{{% macro m{i}(x) %}}{{{{ m{i + 1}(x.a) }}}}{{% endmacro %}}" for i in range(MAX_UNITS + 5)
    )
    hits = recursion_hits(parse_template(src))
    assert hits and "not analysed" in hits[0].detail


def test_chains_too_deep_to_walk_fail_closed() -> None:
    src = "{% macro f(x) %}{{ f(x" + ".a" * 20000 + ") }}{% endmacro %}"
    t0 = time.monotonic()
    issues = analyze_template(src)
    assert time.monotonic() - t0 < 5
    assert issues and any(i.rule_id in ("TEMPLATE-INVALID", "TEMPLATE-OVERSIZE") for i in issues), issues


def test_large_call_graph_is_judged_quickly() -> None:
    parts = []
    for i in range(150):
        body = "".join(
            f"{{{{ m{(i * 7 + k) % 150}(x.a) }}}}{{% for y in x|dictsort %}}{{{{ m{(i + k) % 150}(y) }}}}{{% endfor %}}"
            for k in range(30)
        )
        parts.append(f"{{% macro m{i}(x) %}}{body}{{% endmacro %}}")
    ast = parse_template("".join(parts) + "{{ m0(tools) }}")
    t0 = time.monotonic()
    recursion_hits(ast)  # every call descends; the loops through macro calls nest deep, which is reported
    assert time.monotonic() - t0 < 5
