"""The chat-template allowlist: measured from real templates, which all pass; every escape route found."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from scanner.analysis.jinja_template import analyze_template
from scanner.findings import Severity
from scanner.resources import signatures_dir
from tests.harness import FIXTURES

REAL = sorted((FIXTURES / "templates" / "benign").glob("*.jinja"))


def test_real_templates_are_many_and_cover_the_families() -> None:
    names = " ".join(p.name.lower() for p in REAL)
    assert len(REAL) >= 80
    for family in (
        "llama-3.1",
        "llama-3.2",
        "llama-3.3",
        "llama-2",
        "mistral",
        "qwen2.5",
        "qwen3",
        "gemma-2",
        "gemma-it",
        "phi-3",
        "deepseek-r1",
        "deepseek-v3",
        "command-r",
        "granite",
        "smollm",
        "zephyr",
        "chatml",
        "hermes",
    ):
        assert family in names, family


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_templates_pass_with_nothing(path: Path) -> None:
    assert analyze_template(path.read_text(encoding="utf-8")) == []


@pytest.mark.slow
def test_language_file_is_the_measurement_of_the_fixtures() -> None:
    spec = importlib.util.spec_from_file_location(
        "measure_language", signatures_dir() / "templates" / "measure_language.py"
    )
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    measured = mod.measure(FIXTURES / "templates" / "benign")
    stored = yaml.safe_load((signatures_dir() / "templates" / "chat_language.yaml").read_text())
    for key in ("sources", "node_types", "filters", "tests", "globals", "attributes"):
        assert stored[key] == measured[key], key
    assert "attr" not in stored["filters"] and "CallBlock" not in stored["node_types"]


def _ssti(src: str) -> Severity | None:
    issues = [i for i in analyze_template(src) if i.rule_id == "TEMPLATE-SSTI"]
    return issues[0].severity if issues else None


CRITICAL = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{% set x = '__cla' ~ 'ss__' %}{{ ''[x] }}",
    "{% with k = '__cla' + 'ss__' %}{{ ''[k] }}{% endwith %}",
    "{% set a, b = '__class__', 1 %}{{ ''[a] }}",
    "{% for k in ['a', '__cla' ~ 'ss__'] %}{{ ''[k] }}{% endfor %}",
    "{% set p = ['_','_','class','_','_'] %}{{ ''[p|join] }}",
    "{% set s = '__CLASS__' %}{{ ''[s.lower()] }}",
    "{% set s = 'XclassX' %}{{ ''[s.replace('X', '__')] }}",
    "{{ ''['{}{}{}'.format('__', 'class', '__')] }}",
    "{{ ''['%s%s%s' % ('__', 'class', '__')] }}",
    "{{ ''[('%c'|format(95))*2 ~ 'class' ~ ('%c'|format(95))*2] }}",
    "{% set a = '__ssalc__'|reverse %}{{ ''[a] }}",
    "{% set d = {'a': '__cl' ~ 'ass__'} %}{{ ''[d['a']] }}",
    "{% macro m(k) %}{{ ''[k] }}{% endmacro %}{{ m('__cla' ~ 'ss__') }}",
    "{% macro m(k='__init__') %}{{ x[k] }}{% endmacro %}{{ m() }}",
    "{{ '{0.__class__}'.format(messages) }}",
    "{{ messages|map('attr', '__class__')|list }}",
    "{{ messages|selectattr('__class__')|list }}",
    "{{ messages|map(attribute='role.__class__')|list }}",
    "{{ messages|sort(attribute='__class__') }}",
    "{% set ns = namespace(d=messages) %}{{ ns['__class__'] }}",
    "{% filter attr('__class__') %}x{% endfilter %}",
    "{{ messages.pop.__self__ }}",
    "{{ x.mro() }}",
    "{{ x.popen('id') }}",
    "{{ ''[''.join(['__', 'class', '__'])] }}",
    "{% set p = ['__', 'class', '__'] %}{{ x[''.join(p)] }}",
]


@pytest.mark.parametrize("src", CRITICAL)
def test_critical_variants(src: str) -> None:
    assert _ssti(src) is Severity.CRITICAL, analyze_template(src)


BLOCKING = [  # no constant internal name, but a lookup the template builds or hands over: high, blocking
    "{% set ns = namespace(k='') %}{% for c in ['_','_','class','_','_'] %}{% set ns.k = ns.k ~ c %}{% endfor %}{{ ''[ns.k] }}",
    "{% set ns = namespace() %}{% set ns.k = '__cla' %}{% set ns.k = ns.k + 'ss__' %}{{ ''[ns.k] }}",
    "{% for n in range(95, 96) %}{% set u = '%c'|format(n) %}{{ ''[u ~ u ~ 'class' ~ u ~ u] }}{% endfor %}",
    "{% for n in [95] %}{{ ''|attr('%c'|format(n) * 2 ~ 'class') }}{% endfor %}",
    "{% macro m(k) %}{{ ''[k] }}{% endmacro %}{{ m(bos_token) }}",
    "{% set k %}__class__{% endset %}{{ ''[k] }}",
    "{% set k %}_{{ '_' }}class__{% endset %}{{ ''[k|trim] }}",
    "{{ ''[bos_token] }}",
    "{% for k in bos_token.split(',') %}{{ ''[k] }}{% endfor %}",
    "{{ x[tools|first] }}",
    # values smuggled in through list mutation
    "{% set l = [] %}{% for n in range(95, 96) %}{% set u = '%c'|format(n) %}"
    "{% set _ = l.append(u ~ u ~ 'class' ~ u ~ u) %}{% endfor %}{% for k in l %}{{ ''[k] }}{% endfor %}",
    "{% for n in [95] %}{% set _ = messages.append('%c'|format(n) ~ 'x') %}{% endfor %}"
    "{% for k in messages %}{{ ''[k] }}{% endfor %}",
    "{% set ns = namespace(ks=[]) %}{% for n in [95] %}{% set _ = ns.ks.append('%c'|format(n)) %}{% endfor %}"
    "{{ ''[ns.ks[0]] }}",
    "{% for n in [95] %}{% do messages[0].content.append('%c'|format(n)) %}{% endfor %}",
    "{{ ''[x.y ~ 'class'] }}",
    "{% set ns = namespace() %}{{ ns[bos_token ~ 'x'] }}",
    "{{ (x|string)[k] }}",
    "{{ messages[0]['content'].format(messages) }}",
    "{{ '{0.role}'.format(messages[0]) }}",
    "{{ messages|map(x)|list }}",
    "{{ x|attr(name) }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
]


@pytest.mark.parametrize("src", BLOCKING)
def test_blocking_variants(src: str) -> None:
    sev = _ssti(src)
    assert sev is not None and sev >= Severity.HIGH, analyze_template(src)


@pytest.mark.parametrize(
    "src",
    [
        "{% set f = messages[0].content.format %}{{ f(1) }}",  # a method carried by {% set %} and called
        "{% set x = ''|string %}{{ x.encode('utf-8') }}",
        "{% autoescape false %}{{ x }}{% endautoescape %}",
        "{{ x|attr('content') }}",
        "{{ messages|map('xmlattr')|list }}",
        "{{ messages|select('callable')|list }}",
        "{{ dict(**x) }}",
    ],
)
def test_outside_the_measured_language(src: str) -> None:
    assert any(i.rule_id == "TEMPLATE-UNLISTED" for i in analyze_template(src)), analyze_template(src)


@pytest.mark.parametrize(
    "src",
    [
        "{%- for field, label in [('maximum', 'Max'), ('minimum', 'Min')] %}{{ param[field] }}{% endfor %}",
        "{% set ns = namespace(i=0) %}{% for m in messages %}{% set ns.i = ns.i + 1 %}{{ messages[ns.i] }}{% endfor %}",
        "{% for k, v in tool.items() %}{{ tool[k] }}{% endfor %}",
        "{{ '<tok{}>'.format(suffix) }}",
        "{% set f = param['format'] %}{{ f }}",
        "{% for i in range(messages|length) %}{{ messages[i]['role'] }}{% endfor %}",
        "{% set m = messages[0] if messages else none %}{{ m.content.split('</think>')[-1].strip() }}",
    ],
)
def test_real_idioms_stay_clean(src: str) -> None:
    assert analyze_template(src) == []
