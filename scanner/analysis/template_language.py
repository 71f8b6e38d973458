"""The Jinja language real chat templates use, as measured data (``signatures/templates/chat_language.yaml``).

Allowlist first: a template may use the node types, filters, tests, globals and
attribute names measured from real chat templates (plus the few audited
additions the data file lists); anything else is a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rules import RuleDatabaseError, RuleDB, get_rule_db

MAX_TEMPLATE_CHARS = 1 << 20  # real chat templates are a few KB; GGUF rules cap templates at 1 MiB
# names a renderer may bind to live Python objects (Jinja defaults, transformers, Flask); free variables with other
# names are the caller's data (messages, tools, bos_token ...) or undefined
RENDERER_GLOBALS = frozenset(
    {
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
        "raise_exception",
        "strftime_now",
        "self",
        "config",
        "request",
        "session",
        "g",
        "url_for",
        "get_flashed_messages",
        "caller",
        "varargs",
        "kwargs",
    }
)
# attributes never allowed by name alone: str.format walks attributes of its arguments ("{0.__class__}")
FORMAT_METHODS = frozenset({"format", "format_map"})


@dataclass(frozen=True)
class TemplateLanguage:
    """Allowed constructs; ``object_attributes`` are names that resolve on Python objects, not data fields."""

    sources: tuple[str, ...]
    node_types: frozenset[str]
    filters: frozenset[str]
    tests: frozenset[str]
    globals: frozenset[str]
    attributes: frozenset[str]
    object_attributes: frozenset[str]

    def allows_attribute(self, name: str) -> bool | None:
        """True: allowed; False: an object attribute real templates do not use; None: a plain data field name."""
        if name in FORMAT_METHODS:
            return False
        if name in self.attributes:
            return True
        return False if name in self.object_attributes else None


def _names(doc: dict[str, Any], key: str, where: str) -> frozenset[str]:
    value = doc.get(key, [])
    audited = (doc.get("audited") or {}).get(key, [])
    if (
        not isinstance(value, list)
        or not isinstance(audited, list)
        or not all(isinstance(v, str) for v in value + audited)
    ):
        raise RuleDatabaseError(f"{where}: {key} must be a list of strings")
    return frozenset(value) | frozenset(audited)


_CACHE: dict[int, tuple[Any, TemplateLanguage]] = {}


def _parse(doc: Any, where: str) -> TemplateLanguage:
    if not isinstance(doc, dict):
        raise RuleDatabaseError(f"{where}: missing or not a mapping")
    audited_methods = (doc.get("audited") or {}).get("methods", [])
    return TemplateLanguage(
        sources=tuple(doc.get("sources") or ()),
        node_types=_names(doc, "node_types", where),
        filters=_names(doc, "filters", where),
        tests=_names(doc, "tests", where),
        globals=_names(doc, "globals", where),
        attributes=_names(doc, "attributes", where) | frozenset(audited_methods),
        object_attributes=_names(doc, "object_attributes", where),
    )


def template_language(db: RuleDB | None = None) -> TemplateLanguage:
    """The measured language of the rule database ``db`` (the default database when None)."""
    db = db or get_rule_db()
    hit = _CACHE.get(id(db.template_data))
    if hit is None or hit[0] is not db.template_data:
        hit = (
            db.template_data,
            _parse(db.template_data.get("chat_language"), f"{db.root}/templates/chat_language.yaml"),
        )
        _CACHE[id(db.template_data)] = hit
    return hit[1]
