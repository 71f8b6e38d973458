"""What a JSON answer will cost once parsed, bounded before it is parsed.

A byte cap alone does not bound memory: ``json.loads`` turns 3 bytes (``{},``) into a 64-byte dict plus a list
slot, so 16 MB of ``[{},{},…]`` peaked at 430 MB and 4 MB of ``[[[]],…]`` at 140 MB (measured, CPython 3.11).
``parse_cost`` is an upper bound computed from the raw bytes in one pass: every value begins after ``[``,
``{``, ``,`` or ``:`` (counted even inside strings, so the bound only errs high), each value costs at most
``PER_VALUE`` bytes, and the decoded text and the strings cut from it cost at most ``PER_BYTE`` bytes per input
byte (8 when a non-ASCII character can widen the whole text to 4 bytes a character, 2 otherwise), plus
``FIXED``.
"""

from __future__ import annotations

import json
from typing import Any

PARSE_BUDGET = 40 << 20  # what one parsed answer may cost: the process stays under its 150 MB goal
PER_VALUE = 96  # measured worst: 87 bytes per value for [[]] (list + slot), 84 for a 1-char non-ASCII string
FIXED = 64 << 10  # the parser's own state
_TOKENS = (b",", b":", b"[", b"{")


class JsonTooCostly(ValueError):
    """The answer would cost more than the budget once parsed: refused, not parsed."""


class JsonCost:
    """``parse_cost`` of a body that arrives in pieces (a streamed answer is refused before it is all read)."""

    def __init__(self, budget: int = PARSE_BUDGET) -> None:
        self.budget = budget
        self.size = self.values = 0
        self.ascii = True
        self.cost = FIXED

    def add(self, piece: bytes) -> bool:
        """Count ``piece``; False once the running cost is over the budget."""
        self.size += len(piece)
        self.values += _values(piece)
        self.ascii = self.ascii and piece.isascii()
        self.cost = _cost(self.size, self.values, self.ascii)
        return self.cost <= self.budget


def _values(data: bytes) -> int:
    return sum(data.count(t) for t in _TOKENS)


def _cost(size: int, values: int, ascii: bool) -> int:
    return FIXED + (2 if ascii else 8) * size + PER_VALUE * values


def parse_cost(data: bytes) -> int:
    """An upper bound of the bytes ``json.loads(data)`` allocates (see the module docstring)."""
    return _cost(len(data), _values(data), data.isascii())


def loads_bounded(data: bytes, what: str, budget: int = PARSE_BUDGET) -> Any:
    """``json.loads(data)`` when it costs at most ``budget`` bytes; ``JsonTooCostly`` (a ValueError) otherwise.

    Nesting too deep for the parser is a ValueError too, never a RecursionError escaping the caller.
    """
    cost = parse_cost(data)
    if cost > budget:
        raise JsonTooCostly(
            f"{what}: {len(data)} bytes of JSON would cost about {cost >> 20} MB once parsed "
            f"(limit {budget >> 20} MB); refused, not parsed"
        )
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply to parse") from None


__all__ = ["PARSE_BUDGET", "JsonCost", "JsonTooCostly", "loads_bounded", "parse_cost"]
