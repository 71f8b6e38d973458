"""A policy file's YAML with the line and column of every value and key (imported only on a cache miss).

Duplicate keys are errors (YAML's last-wins would silently drop a reviewer's line) and dates stay strings (the
schema checks their form and the evaluator parses them). The result is plain JSON-able data, so
``yaml_cache`` can keep it: ``{"data": …, "lines": [[key path, [line, col]], …], "keys": […]}``.
"""

from __future__ import annotations

from typing import Any

import yaml

Key = tuple[Any, ...]


class PolicySyntaxError(Exception):
    """Not a YAML mapping; the message starts with ``:line:col`` (or is empty of a position) then ``: why``."""


def _compose_lines(
    node: yaml.Node, key: Key, out: dict[Key, tuple[int, int]], keys: dict[Key, tuple[int, int]] | None = None
) -> None:
    """Record where each value starts (``out``) and where each mapping key is written (``keys``)."""
    out[key] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for k_node, v_node in node.value:
            k_pos = (k_node.start_mark.line + 1, k_node.start_mark.column + 1)
            if keys is not None:
                keys[key + (k_node.value,)] = k_pos
            _compose_lines(v_node, key + (k_node.value,), out, keys)
            if not isinstance(v_node, yaml.ScalarNode):  # a block value: point at its key
                out[key + (k_node.value,)] = k_pos
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _compose_lines(item, key + (i,), out, keys)


class _NoDupLoader(yaml.SafeLoader):
    """Duplicate keys are an error: YAML's last-wins would silently drop a reviewer's line."""


def _construct_mapping(loader: _NoDupLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for k_node, _ in node.value:
        k = loader.construct_object(k_node, deep=deep)
        if k in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {k!r}", k_node.start_mark)
        seen.add(k)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_NoDupLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# dates stay strings: the schema checks their form and the evaluator parses them
_NoDupLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_positions(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicySyntaxError(f": cannot read policy: {exc}") from None
    try:
        node = yaml.compose(text, Loader=_NoDupLoader)
        data = yaml.load(text, Loader=_NoDupLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicySyntaxError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict) or node is None:
        raise PolicySyntaxError(":1:1: expected a mapping of policy settings")
    lines: dict[Key, tuple[int, int]] = {}
    keys: dict[Key, tuple[int, int]] = {}
    _compose_lines(node, (), lines, keys)
    return {
        "data": data,
        "lines": [[list(k), list(v)] for k, v in lines.items()],
        "keys": [[list(k), list(v)] for k, v in keys.items()],
    }
