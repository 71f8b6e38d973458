"""Red team 6: a catastrophic-backtracking pattern compiled by the allowlisted ``re._compile`` (spaCy profile).

``getattr(re._compile('(a+)+$', 0), 'match')`` is the allowlisted bound method ``re:_compile().match``; a REDUCE
of it on ``'a' * 40 + 'b'`` backtracks for hours (CPython 3.11 ``pickle.loads``: 24 ``a`` took 2.2 s, each more
doubles it), and spaCy's Tokenizer runs its prefix/suffix/infix patterns over its special cases while loading.
The file was allowed. A pattern with a variable-width repeat nested in a repeat and no separating character is
now PICKLE-GADGET-ARGUMENT (parsed with the re module's parser, never matched). Nothing is unpickled here.
"""

from __future__ import annotations

import pytest

from scanner.findings import Severity
from scanner.formats.pickle.regex_cost import backtracking_risk

from .assembler import PROTO, STOP, G, U, call, scan, worst


def _matched(pattern: str, text: str, method: str = "match") -> bytes:
    compiled = call(G("re", "_compile"), U(pattern), b"K\x00")
    return PROTO(2) + call(call(G("builtins", "getattr"), compiled, U(method)), U(text)) + STOP


@pytest.mark.parametrize(
    ("pattern", "method"),
    [("(a+)+$", "match"), (r"(\w+\s?)+$", "search"), ("(x+x+)+y", "finditer"), (r"^(\d+)*\.", "match")],
)
def test_backtracking_pattern_blocks(pattern: str, method: str) -> None:
    r = scan(_matched(pattern, "a" * 40 + "!", method))
    assert worst(r) is not None and worst(r) >= Severity.HIGH, [(f.rule_id, f.message) for f in r.findings]
    assert "PICKLE-GADGET-ARGUMENT" in {f.rule_id for f in r.findings}


@pytest.mark.parametrize(
    "pattern",
    [
        r"^(?:\$|\(|“|‘|\[)",  # spaCy-like prefix alternation
        r"(?<=[0-9])(?:km|m|cm|kg|g)$",
        r"(?<=[a-z])\.(?=[A-Z])|(?<=[0-9])[+\-\*^](?=[0-9-])",
        r"(?:\.[a-z0-9][a-z0-9\-]*[a-z0-9])*",  # each iteration starts with a dot the inner repeat never eats
        r"(?:[a-z]{2})+",
        r"[\w.+-]+@[\w-]+\.[\w.]+",
    ],
)
def test_linear_patterns_stay_allowed(pattern: str) -> None:
    r = scan(_matched(pattern, "abc"))
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]


def test_unparsable_or_non_literal_patterns_are_risks() -> None:
    assert backtracking_risk("(unclosed", 0) is not None
    assert backtracking_risk(object(), 0) is not None
    backtracking_risk("(" * 2000 + ")" * 2000, 0)  # deep nesting is reported or passes, never raises
