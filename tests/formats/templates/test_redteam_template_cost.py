"""Red-team: chat templates inside the measured language that exhaust the renderer (the sandbox bounds neither).

Every case stays within allowlisted nodes/filters/globals; what makes it a denial of service is the size its own
constants multiply to (or a power Jinja's optimizer folds while compiling). Real chat templates stay allowed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scanner.analysis.jinja_template import analyze_template
from tests.harness import FIXTURES, path_verdict

DOS = {
    "string_mul": "{{ 'a' * 999999999 }}",
    "chained_mul": "{{ ('a' * 9999) * 9999 }}",
    "set_then_mul": "{% set s = 'a' * 9999 %}{{ s * 9999 }}",
    "list_mul_loop": "{% for i in [1] * 99999999 %}x{% endfor %}",
    "nested_range": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
    "range_output": "{% set s = 'a' * 9000 %}{% for i in range(99999) %}{{ s }}{% endfor %}",
    "macro_in_loops": "{% macro m() %}{% for i in range(9999) %}x{% endfor %}{% endmacro %}"
    "{% for i in range(9999) %}{{ m() }}{% endfor %}",
    "pow_folded": "{{ 9 ** 9 ** 9 }}",
    "pow_big": "{{ 10 ** 99 }}",
    "pct_width": "{{ '%999999999s' % 'a' }}",
    "pct_star": "{{ '%*s' % (999999999, 'a') }}",
    "format_filter_width": "{{ '%0999999999d'|format(1) }}",
    "indent": "{{ 'a\\nb'|indent(999999999) }}",
    "center": "{{ 'a'|center(999999999) }}",
    "batch": "{{ messages|batch(999999999, 'x')|list }}",
    "slice": "{{ messages|slice(999999999)|list }}",
    "replace": "{{ ('a' * 9999)|replace('a', 'a' * 9999) }}",
    "join": "{{ range(99999)|join('x' * 9999) }}",
    "tojson_indent": "{{ messages|tojson(indent=999999999) }}",
}


@pytest.mark.parametrize("name", sorted(DOS))
def test_amplification_is_reported(name: str) -> None:
    t0 = time.monotonic()
    issues = analyze_template(DOS[name])
    assert time.monotonic() - t0 < 5
    assert any(i.rule_id == "TEMPLATE-UNLISTED" and "resource amplification" in i.message for i in issues), (
        issues
    )


@pytest.mark.parametrize("name", ["string_mul", "pow_folded", "nested_range"])
def test_amplification_blocks_a_repo(tmp_path: Path, name: str) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": DOS[name]}))
    decision, rules = path_verdict(tmp_path)
    assert decision == "block"
    assert "TEMPLATE-UNLISTED" in rules


@pytest.mark.parametrize(
    "tpl",
    [
        "{{ '=' * 80 }}",
        "{% for m in messages %}{{ '  ' * loop.depth }}{{ m.content }}{% endfor %}",
        "{% for i in range(messages|length - 1, -1, -1) %}{{ messages[i].role }}{% endfor %}",
        "{% set x = messages[0].content %}{% set x = x.replace('a', 'bb') %}{% set x = x.replace('b', 'cc') %}{{ x }}",
        "{{ 2 ** 10 }}",
        "{{ '%s: %s' % (messages[0].role, messages[0].content) }}",
        "{{ tools|tojson(indent=4) }}",
    ],
)
def test_ordinary_templates_are_not_amplification(tpl: str) -> None:
    assert not [i for i in analyze_template(tpl) if "resource amplification" in i.message]


def test_real_chat_templates_have_no_amplification() -> None:
    paths = sorted((FIXTURES / "templates" / "benign").glob("*.jinja"))
    assert len(paths) > 50
    for p in paths:
        found = [i.message for i in analyze_template(p.read_text()) if "resource amplification" in i.message]
        assert not found, (p.name, found)
