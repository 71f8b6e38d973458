"""Catastrophic-backtracking shapes in a regular expression a pickle compiles (``re._compile`` of a literal).

A pickle may compile any literal pattern with an allowlisted ``re._compile`` and hand the bound
``match``/``search``/``finditer`` to code that runs it at load (spaCy's Tokenizer tokenizes its special
cases with them, or a REDUCE calls the bound method directly). Python's ``re`` backtracks without a
bound: ``(a+)+$`` against 40 ``a`` and a ``b`` runs for hours. The pattern is only parsed here (the
standard library's own parser, no matching), and two exponential shapes are reported:

- a variable-width repeat inside a repeat that can iterate more than once, with nothing mandatory in the
  outer body that the inner repeat cannot consume (``(a+)+``, ``(\\w+\\s?)*``; ``(\\.[a-z]+)*`` is fine:
  each iteration must start with a dot the inner repeat never matches);
- alternatives under such a repeat that can start with the same character (``(a|ab)*``, ``(\\w|\\d)+``).

Character classes are compared on a sample alphabet (ASCII and a few non-ASCII letters, digits and
spaces), so the test over-approximates overlap only where the sample cannot tell classes apart.
"""

from __future__ import annotations

import bisect
import functools
from typing import Any

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

_SAMPLE = [chr(i) for i in range(128)] + list("\u00a0\u00df\u00e9\u00c9\u03b1\u0391\u0663\u4e2d\u2028\u3000")
_ALL = frozenset(range(len(_SAMPLE)))
MAX_PATTERN = 1 << 21  # spaCy's French token_match is 1.45 M characters
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT}
_MAXREPEAT = _c.MAXREPEAT


def _cat(name: str, ch: str) -> bool:
    if name.endswith("DIGIT"):
        r = ch.isdecimal() if "UNI" in name else ch in "0123456789"
    elif name.endswith("SPACE"):
        r = ch.isspace() if "UNI" in name else ch in " \t\n\r\f\v"
    elif name.endswith("WORD"):
        r = (ch.isalnum() or ch == "_") if "UNI" in name or ch.isascii() else False
    elif name.endswith("LINEBREAK"):
        r = ch in "\n\r\u2028"
    else:
        return True
    return not r if "_NOT_" in name else r


def _variants(ch: str, ignore_case: bool) -> set[str]:
    if not ignore_case:
        return {ch}
    return {x for x in (ch, ch.lower(), ch.upper()) if len(x) == 1}


# (code point, sample index) of every sample character, and of its case variants, sorted: a range or a literal
# is looked up by bisection instead of a scan of the sample (spaCy's French token_match holds 20 000 ranges)
_EXACT = sorted((ord(ch), i) for i, ch in enumerate(_SAMPLE))
_FOLDED = sorted({(ord(v), i) for i, ch in enumerate(_SAMPLE) for v in _variants(ch, True)})


def _span(lo: int, hi: int, ignore_case: bool) -> set[int]:
    table = _FOLDED if ignore_case else _EXACT
    k = bisect.bisect_left(table, (lo, -1))
    out = set()
    while k < len(table) and table[k][0] <= hi:
        out.add(table[k][1])
        k += 1
    return out


def _chars_equal(c: str, ignore_case: bool) -> set[int]:
    out: set[int] = set()
    for v in _variants(c, ignore_case):
        out |= _span(ord(v), ord(v), ignore_case)
    return out


def _in_set(items: Any, ignore_case: bool) -> frozenset[int]:
    out: set[int] = set()
    negate = False
    for op, av in items:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            out |= _chars_equal(chr(av), ignore_case)
        elif op is _c.RANGE:
            out |= _span(av[0], av[1], ignore_case)
        elif op is _c.CATEGORY:
            name = str(av).upper()
            out |= {i for i, ch in enumerate(_SAMPLE) if _cat(name, ch)}
        else:  # RANGE_UNI_IGNORE, CHARSET, BIGCHARSET...: anything
            return _ALL
    return frozenset(_ALL - out) if negate else frozenset(out)


def _single(op: Any, av: Any, ignore_case: bool) -> frozenset[int] | None:
    """The sample characters a one-character element matches; None if the element is not one character."""
    if op is _c.LITERAL:
        return frozenset(_chars_equal(chr(av), ignore_case))
    if op is _c.NOT_LITERAL:
        return frozenset(_ALL - _chars_equal(chr(av), ignore_case))
    if op is _c.ANY:
        return _ALL
    if op is _c.IN:
        return _in_set(av, ignore_case)
    return None


class _Walk:
    def __init__(self, ignore_case: bool) -> None:
        self.ic = ignore_case
        self.found: str | None = None
        self._sets: dict[int, tuple[Any, frozenset[int] | None]] = {}

    def single(self, op: Any, av: Any) -> frozenset[int] | None:
        if op is not _c.IN:
            return _single(op, av, self.ic)
        hit = self._sets.get(id(av))
        if hit is None or hit[0] is not av:
            hit = (av, _single(op, av, self.ic))
            self._sets[id(av)] = hit
        return hit[1]

    # what characters a subpattern can consume anywhere (over-approximation), and whether it can be empty
    def consumed(self, sub: Any) -> frozenset[int]:
        out: set[int] = set()
        for op, av in sub:
            one = self.single(op, av)
            if one is not None:
                out |= one
            elif op in _REPEATS or op is _c.POSSESSIVE_REPEAT:
                out |= self.consumed(av[2])
            elif op is _c.SUBPATTERN:
                out |= self.consumed(av[-1])
            elif op is _c.BRANCH:
                for alt in av[1]:
                    out |= self.consumed(alt)
            elif op is _c.ATOMIC_GROUP:
                out |= self.consumed(av)
            elif op is _c.GROUPREF or op is _c.GROUPREF_EXISTS:
                return _ALL
        return frozenset(out)

    def first(self, sub: Any) -> frozenset[int]:
        """Characters a subpattern can start with (over-approximation)."""
        out: set[int] = set()
        for op, av in sub:
            one = self.single(op, av)
            if one is not None:
                return frozenset(out | one)
            if op in _REPEATS or op is _c.POSSESSIVE_REPEAT:
                out |= self.first(av[2])
                if av[0] > 0:
                    return frozenset(out)
            elif op is _c.SUBPATTERN:
                out |= self.first(av[-1])
                if not self.nullable(av[-1]):
                    return frozenset(out)
            elif op is _c.BRANCH:
                for alt in av[1]:
                    out |= self.first(alt)
                if not any(self.nullable(alt) for alt in av[1]):
                    return frozenset(out)
            elif op is _c.ATOMIC_GROUP:
                out |= self.first(av)
                if not self.nullable(av):
                    return frozenset(out)
            elif op is _c.GROUPREF or op is _c.GROUPREF_EXISTS:
                return _ALL
            # AT, ASSERT, ASSERT_NOT: zero width
        return frozenset(out)

    def nullable(self, sub: Any) -> bool:
        for op, av in sub:
            if self.single(op, av) is not None:
                return False
            if (op in _REPEATS or op is _c.POSSESSIVE_REPEAT) and av[0] > 0 and not self.nullable(av[2]):
                return False
            if op is _c.SUBPATTERN and not self.nullable(av[-1]):
                return False
            if op is _c.BRANCH and not any(self.nullable(alt) for alt in av[1]):
                return False
        return True

    def inner_repeats(self, sub: Any) -> list[Any]:
        """Variable-width, backtracking repeats inside ``sub`` (not through atomic groups or lookarounds)."""
        out = []
        for op, av in sub:
            if op in _REPEATS:
                lo, hi, body = av
                if hi != lo:
                    out.append(body)
                out.extend(self.inner_repeats(body))
            elif op is _c.SUBPATTERN:
                out.extend(self.inner_repeats(av[-1]))
            elif op is _c.BRANCH:
                for alt in av[1]:
                    out.extend(self.inner_repeats(alt))
        return out

    def mandatory(self, sub: Any) -> list[frozenset[int]]:
        """One-character elements every match of ``sub`` passes through (its top-level sequence)."""
        out = []
        for op, av in sub:
            one = self.single(op, av)
            if one is not None:
                out.append(one)
            elif op is _c.SUBPATTERN:
                out.extend(self.mandatory(av[-1]))
            elif op in _REPEATS and av[0] > 0:  # at least one occurrence per match
                out.extend(self.mandatory(av[2]))
        return out

    def visit(self, sub: Any) -> None:
        for op, av in sub:
            if self.found:
                return
            if op in _REPEATS:
                lo, hi, body = av
                if hi > 1:
                    self.check_repeat(body)
                self.visit(body)
            elif op is _c.POSSESSIVE_REPEAT:
                self.visit(av[2])
            elif op is _c.SUBPATTERN:
                self.visit(av[-1])
            elif op is _c.BRANCH:
                for alt in av[1]:
                    self.visit(alt)
            elif op in (_c.ASSERT, _c.ASSERT_NOT):
                self.visit(av[1])
            elif op is _c.ATOMIC_GROUP:
                self.visit(av)

    def check_repeat(self, body: Any) -> None:
        must = self.mandatory(body)
        for inner in self.inner_repeats(body):
            eaten = self.consumed(inner)
            if not any(m and not (m & eaten) for m in must):
                self.found = "a variable-width repeat nested in a repeat with no separating character"
                return
        seen: frozenset[int] = frozenset()
        for alt in _top_branch(body):
            f = self.first(alt)
            if f & seen:
                self.found = "alternatives that can start with the same character under a repeat"
                return
            seen |= f


def _top_branch(body: Any) -> list[Any]:
    """The alternatives of a body that is one alternation (possibly inside groups)."""
    items = list(body)
    while len(items) == 1 and items[0][0] is _c.SUBPATTERN:
        items = list(items[0][1][-1])
    if len(items) == 1 and items[0][0] is _c.BRANCH:
        return list(items[0][1][1])
    return []


def backtracking_risk(pattern: Any, flags: Any = 0) -> str | None:
    """Why matching ``pattern`` can take exponential time, or None. Patterns that cannot be parsed are a risk."""
    if isinstance(pattern, (str, bytes)) and type(flags) is int:
        return _cached_risk(pattern, flags)
    return _risk(pattern, flags)


@functools.lru_cache(maxsize=32)
def _cached_risk(pattern: str | bytes, flags: int) -> str | None:  # a pickle compiles the same pattern again
    return _risk(pattern, flags)


def _risk(pattern: Any, flags: Any) -> str | None:
    if isinstance(pattern, bytes):
        try:
            pattern = pattern.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
            return "an undecodable pattern"
    if not isinstance(pattern, str):
        return "a pattern that is not a literal"
    if len(pattern) > MAX_PATTERN:
        return f"a pattern over {MAX_PATTERN} characters"
    if type(flags) is not int:
        return "flags that are not an int literal"
    try:
        parsed = _parser.parse(pattern, flags)
    except (_c.error, RecursionError, OverflowError, ValueError, TypeError, MemoryError):
        return "a pattern the re module refuses or cannot parse"
    w = _Walk(bool((flags | parsed.state.flags) & _c.SRE_FLAG_IGNORECASE))
    try:
        w.visit(parsed)
    except RecursionError:
        return "a pattern nested too deeply to analyze"
    return w.found
