"""Argument rules for allowlisted factories and apply helpers (signatures/pickle/gadgets.yaml).

Allowlisting ``copyreg._reconstructor`` or ``torch._utils._rebuild_from_type_v2``
would allowlist whatever class or callable they are handed; these rules say
which arguments such callables call, instantiate, setattr or allocate from, so
the walker can judge the arguments instead of trusting the callable. The file
format is documented in its header.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ...rules import RuleDatabaseError, load_rule_file

FILE = Path("pickle") / "gadgets.yaml"
_RULE_KEYS = frozenset(
    {
        "invoked",
        "one_of",
        "alloc",
        "state",
        "hooks",
        "arrow_array",
        "items",
        "applies",
        "calls_with",
        "regex",
        "pickled",
    }
)
_BUILD_KEYS = frozenset({"callable", "args", "kwargs"})


@dataclass(frozen=True, slots=True)
class ArgRule:
    # "always" | "now" (called while loading) | "class" | "new" (instantiated by __new__ only) | None
    invoked: str | None = None
    one_of: frozenset[str] | None = None
    alloc: int = 0  # minimum bytes per element when the argument is a count/shape
    state: bool = False
    hooks: bool = False
    arrow_array: bool = False  # pyarrow's reduced ArrayData tuple, bounded by arrow.check_array_data
    items: frozenset[str] | None = None  # every item of a tuple/list argument is one of these (one_of syntax)
    applies: int | None = None  # this argument is called with the tuple at that position as its arguments
    calls_with: int | None = None  # this argument is called with the arguments from that position on
    regex: bool = (
        False  # a regular expression (flags in the next argument) matched at load: no backtracking blow-up
    )
    # the callable unpickles this argument (bytes): it is analyzed as a nested pickle, with these 'module:name'
    # entries allowed in it besides the profiles
    pickled: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Gadget:
    path: str  # 'module:name'
    why: str
    args: tuple[tuple[int, ArgRule], ...]
    # the callables the result may be handed to as an argument (None: anywhere)
    result_to: frozenset[str] | None = None
    # where BUILD state puts the callable the result forwards its calls to, and that callable's stored
    # arguments: (callable, args, kwargs), each a tuple position (int), an attribute name (str) or None
    build_calls: tuple[int | str, int | str | None, int | str | None] | None = None


def _rule(raw: object, where: str) -> ArgRule:
    if not isinstance(raw, dict) or not set(raw) <= _RULE_KEYS:
        raise RuleDatabaseError(f"{where}: an argument rule is a mapping of {sorted(_RULE_KEYS)}")
    inv = raw.get("invoked")
    invoked = "always" if inv is True else (inv if inv in ("now", "class", "new") else None)
    if inv not in (None, False, True, "now", "class", "new"):
        raise RuleDatabaseError(f"{where}: invoked must be true, false, 'now', 'class' or 'new'")
    one_of = raw.get("one_of")
    if one_of is not None and not (isinstance(one_of, list) and all(isinstance(x, str) for x in one_of)):
        raise RuleDatabaseError(f"{where}: one_of must be a list of strings")
    items = raw.get("items")
    if items is not None and not (isinstance(items, list) and all(isinstance(x, str) for x in items)):
        raise RuleDatabaseError(f"{where}: items must be a list of strings")
    applies = raw.get("applies")
    if applies is not None and (type(applies) is not int or applies < 0):
        raise RuleDatabaseError(f"{where}: applies is the 0-based position of the argument tuple")
    calls_with = raw.get("calls_with")
    if calls_with is not None and (type(calls_with) is not int or calls_with < 0):
        raise RuleDatabaseError(
            f"{where}: calls_with is the 0-based position of the first argument passed on"
        )
    alloc = raw.get("alloc", 0)
    if type(alloc) is not int or alloc < 0:
        raise RuleDatabaseError(f"{where}: alloc must be a non-negative integer")
    pickled = raw.get("pickled")
    if pickled is not None and not (
        isinstance(pickled, list) and all(isinstance(x, str) and x.count(":") == 1 for x in pickled)
    ):
        raise RuleDatabaseError(f"{where}: pickled must be a list of 'module:name' strings")
    return ArgRule(
        invoked,
        frozenset(one_of) if one_of is not None else None,
        alloc,
        bool(raw.get("state")),
        bool(raw.get("hooks")),
        bool(raw.get("arrow_array")),
        frozenset(items) if items is not None else None,
        applies,
        calls_with,
        bool(raw.get("regex")),
        frozenset(pickled) if pickled is not None else None,
    )


def _build_calls(raw: object, where: str) -> tuple[int | str, int | str | None, int | str | None] | None:
    if raw is None:
        return None
    ok = isinstance(raw, dict) and set(raw) <= _BUILD_KEYS and raw.get("callable") is not None
    if ok:
        assert isinstance(raw, dict)
        ok = all(raw.get(k) is None or type(raw[k]) in (int, str) for k in _BUILD_KEYS)
    if not ok:
        raise RuleDatabaseError(
            f"{where}: build_calls maps callable (and optional args, kwargs) to a state tuple position or attribute name"
        )
    assert isinstance(raw, dict)
    return raw["callable"], raw.get("args"), raw.get("kwargs")


@functools.lru_cache(maxsize=4)
def load_gadgets(root: Path) -> dict[str, Gadget]:
    """The gadget table of one rule database root (empty when the file is absent); the built table is kept
    between runs (``table_cache``: addressed by the file's bytes and this code, MACed)."""
    path = root / FILE
    if not path.is_file():
        return {}
    from .table_cache import cached_table

    return cached_table("gadgets", [path], lambda: _build(path), _encode, _decode, (__file__,))


def _encode(table: dict[str, Gadget]) -> Any:
    """JSON data of a built table (each distinct argument rule once); ``_decode`` gives an equal table back."""
    rules: dict[ArgRule, int] = {}
    gadgets = []
    for key, g in table.items():
        args = [[pos, rules.setdefault(r, len(rules))] for pos, r in g.args]
        rt = sorted(g.result_to) if g.result_to is not None else None
        bc = list(g.build_calls) if g.build_calls is not None else None
        gadgets.append([key, g.path, g.why, args, rt, bc])
    rows = [
        [
            {"s": sorted(v)} if type(v) is frozenset else v
            for v in (getattr(r, f.name) for f in fields(ArgRule))
        ]
        for r in rules
    ]
    return [rows, gadgets]


def _field(v: Any) -> Any:
    return frozenset(v["s"]) if type(v) is dict else v


def _decode(data: Any) -> dict[str, Gadget]:
    rows, gadgets = data
    rules = [ArgRule(*map(_field, row)) for row in rows]
    return {
        key: Gadget(
            path,
            why,
            tuple((pos, rules[i]) for pos, i in args),
            frozenset(rt) if rt is not None else None,
            tuple(bc) if bc is not None else None,  # type: ignore[arg-type]
        )
        for key, path, why, args, rt, bc in gadgets
    }


def _build(path: Path) -> dict[str, Gadget]:
    doc = load_rule_file(path) or {}
    table = doc.get("callables") if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise RuleDatabaseError(f"{path}: expected a 'callables' mapping")
    out: dict[str, Gadget] = {}
    for key, spec in table.items():
        where = f"{path}: {key}"
        if not (isinstance(key, str) and key.count(":") == 1 and isinstance(spec, dict)):
            raise RuleDatabaseError(f"{where}: entries are 'module:name': {{why, args}}")
        args = spec.get("args") or {}
        if not isinstance(args, dict) or not all(type(k) is int and k >= 0 for k in args):
            raise RuleDatabaseError(f"{where}: args maps 0-based positions to rules")
        result_to = spec.get("result_to")
        if result_to is not None and not (
            isinstance(result_to, list) and all(isinstance(x, str) and x.count(":") == 1 for x in result_to)
        ):
            raise RuleDatabaseError(f"{where}: result_to is a list of 'module:name' callables")
        out[key] = Gadget(
            key,
            str(spec.get("why", "")),
            tuple(sorted((k, _rule(v, where)) for k, v in args.items())),
            frozenset(result_to) if result_to is not None else None,
            _build_calls(spec.get("build_calls"), where),
        )
    return out
