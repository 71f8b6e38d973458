"""Chat-template analysis: realistic templates stay clean, injection tricks do not."""

from __future__ import annotations

import pytest

from scanner.analysis.jinja_template import analyze_template
from scanner.findings import Severity
from tests.harness import FIXTURES

BENIGN = sorted((FIXTURES / "chat-templates").glob("*.jinja"))


def test_there_are_benign_templates() -> None:
    assert len(BENIGN) >= 5


@pytest.mark.parametrize("path", BENIGN, ids=[p.name for p in BENIGN])
def test_realistic_templates_have_no_issues(path) -> None:
    assert analyze_template(path.read_text()) == []


@pytest.mark.parametrize(
    "src",
    [
        "{% set ns = namespace(found=false) %}{% for m in messages %}{% set ns.found = true %}{% endfor %}{{ ns.found }}",
        "{{ raise_exception('roles must alternate') if messages|length > 9 }}",
        "{% for m in messages %}{{ m['content'] | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}",
        "{%- for tool in tools %}{{ tool | tojson(indent=2) }}{% endfor %}{{ '%s' | format(bos_token) }}",
        "{% macro render(m) %}{{ m.role }}: {{ m.content }}{% endmacro %}{% for m in messages %}{{ render(m) }}{% endfor %}",
        "{{ messages[-1]['content'][:100] }}{{ '_' ~ 'x' }}",
    ],
)
def test_common_constructs_are_clean(src: str) -> None:
    assert analyze_template(src) == []


@pytest.mark.parametrize(
    ("src", "severity"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", Severity.CRITICAL),
        ("{{ x['__globals__'] }}", Severity.CRITICAL),
        ("{{ x|attr('__class__') }}", Severity.CRITICAL),
        ("{{ x|attr('_' * 2 + 'init' + '_' * 2) }}", Severity.CRITICAL),
        ("{{ x|attr(['_', '_', 'globals', '_', '_']|join) }}", Severity.CRITICAL),
        ("{{ x|attr('%c%cbuiltins%c%c'|format(95, 95, 95, 95)) }}", Severity.CRITICAL),
        ("{{ x|attr('%s%s' % ('__imp', 'ort__')) }}", Severity.CRITICAL),
        ("{{ x|attr('__SSALC__'|lower|reverse) }}", Severity.CRITICAL),
        ("{{ x|attr('XXclassXX'|replace('XX', '__')) }}", Severity.CRITICAL),
        ("{{ dict(__builtins__=1)|list|first }}", Severity.CRITICAL),
        ("{{ ().mro() }}", Severity.CRITICAL),
        ("{% set ns = namespace() %}{{ ns.__init__.__globals__ }}", Severity.CRITICAL),
        ("{{ cycler.__init__ }}", Severity.CRITICAL),
        ("{{ lipsum }}", Severity.HIGH),
        ("{{ joiner() }}", Severity.HIGH),
        ("{{ config.items() }}", Severity.HIGH),
        ("{{ request.args }}", Severity.HIGH),
        ("{{ self }}", Severity.HIGH),
        ("{{ x|attr(name) }}", Severity.HIGH),
        ("{{ x._private }}", Severity.HIGH),
        ("{{ os.popen('id') }}", Severity.CRITICAL),
    ],
)
def test_injection_tricks(src: str, severity: Severity) -> None:
    issues = [i for i in analyze_template(src) if i.rule_id == "TEMPLATE-SSTI"]
    assert issues, src
    assert issues[0].severity is severity, (src, issues[0])


@pytest.mark.parametrize(
    "src", ["{% include 'a' %}", "{% import 'm' as m %}", "{% from 'm' import x %}", "{% extends 'b' %}"]
)
def test_loader_tags(src: str) -> None:
    assert [i.rule_id for i in analyze_template(src)] == ["TEMPLATE-INCLUDE"]


def test_unlisted_constructs() -> None:
    for src in (
        "{% call m() %}x{% endcall %}",
        "{{ x.translate(y) }}",
        "{{ dict.fromkeys('a') }}",
        "{{ g }}",
        "{{ x|xmlattr }}",
        "{% if x is callable %}{% endif %}",
    ):
        assert [i.rule_id for i in analyze_template(src)] == ["TEMPLATE-UNLISTED"], src


def test_invalid_and_oversize() -> None:
    assert [i.rule_id for i in analyze_template("{% for %}")] == ["TEMPLATE-INVALID"]
    bad = analyze_template("{% if x %}{{ ''.__class__ }}")  # does not parse, still names a dunder
    assert {i.rule_id for i in bad} == {"TEMPLATE-INVALID", "TEMPLATE-SSTI"}
    big = analyze_template("a" * 100 + "{{ x }}", max_chars=50)
    assert [i.rule_id for i in big] == ["TEMPLATE-OVERSIZE"]
    deep = analyze_template("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert [i.rule_id for i in deep] == ["TEMPLATE-INVALID"]


def test_percent_format_is_not_executed() -> None:
    # a width specifier would make printf allocate; the folder refuses anything but %s/%c (never runs printf),
    # and rendering it would allocate a gigabyte: the size bound reports it (template_cost)
    issues = analyze_template("{{ '%0999999999d'|format(1) }}")
    assert [i.rule_id for i in issues] == ["TEMPLATE-UNLISTED"]
    assert "resource amplification" in issues[0].message
