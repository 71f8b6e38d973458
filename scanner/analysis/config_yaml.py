"""Bounded, non-constructing reading of YAML configs that loaders act on (NeMo model_config.yaml, MLmodel).

``yaml.compose`` builds the node graph without constructing any object, so
Python tags (``!!python/object/apply:os.system``) are seen, never run; aliases
are followed once (a "billion laughs" document is a graph, not a tree). Too
large, too deep or not parseable is an error the caller must fail closed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

MAX_YAML_BYTES = 256 << 10  # real MLmodel / NeMo configs are KBs; composing needs ~100x the text in memory
MAX_NODES = 500_000
PY_TAG = "tag:yaml.org,2002:python/"
READERS_DIFFER = (
    "libyaml and PyYAML read this YAML differently (a byte-order mark inside the text): "
    "what the loader sees cannot be judged"
)


@dataclass
class YamlConfig:
    data: Any = None  # plain Python view (scalars as strings/ints); None when the document could not be read
    error: str | None = None
    python_tags: list[str] = field(default_factory=list)
    targets: list[tuple[str, str]] = field(
        default_factory=list
    )  # (key path, dotted target) for _target_/target


def _scalar(node: yaml.ScalarNode) -> Any:
    v = node.value
    if node.tag.endswith(":int"):
        try:
            return int(v)
        except ValueError:
            return v
    if node.tag.endswith(":bool"):
        return v.lower() in ("true", "yes", "on")
    if node.tag.endswith(":null"):
        return None
    return v


def parse_yaml_config(raw: bytes, *, max_bytes: int = MAX_YAML_BYTES) -> YamlConfig:
    """Compose one YAML document into plain data, collecting Python tags and hydra-style targets."""
    import yaml  # only when a repository holds an MLmodel or NeMo config: PyYAML is ~20 ms of start-up

    out = YamlConfig()
    if len(raw) > max_bytes:
        out.error = f"{len(raw)} bytes exceed the {max_bytes}-byte limit"
        return out
    try:
        text = raw.decode("utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~25x faster
        root = yaml.compose(text, Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        out.error = f"not parseable: {type(exc).__name__}: {exc}"[:300]
        return out
    if _readers_differ(text):
        # OmegaConf (NeMo, hydra) reads with PyYAML's own scanner, MLflow with libyaml: a document the two read
        # differently (a byte-order mark at a line start hides that line from libyaml only) is judged by neither
        out.error = READERS_DIFFER
        return out
    if root is None:
        out.data = {}
        return out
    built: dict[int, Any] = {}
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    order: list[yaml.Node] = []
    nodes = 0
    while stack:  # iterative: depth cannot exhaust the interpreter stack
        node, path, done = stack.pop()
        if id(node) in built and not done:
            continue
        nodes += 1
        if nodes > MAX_NODES:
            out.error = f"more than {MAX_NODES} nodes"
            return out
        if node.tag.startswith(PY_TAG):
            out.python_tags.append(f"{path or '<root>'}: {node.tag[len('tag:yaml.org,2002:') :]}"[:200])
        if isinstance(node, yaml.ScalarNode):
            built[id(node)] = _scalar(node)
            continue
        if not done:
            built[id(node)] = None  # placeholder: a cycle through aliases reads as None
            stack.append((node, path, True))
            if isinstance(node, yaml.MappingNode):
                keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
                for k, v in node.value:
                    key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                    if key in ("_target_", "target") and isinstance(v, yaml.ScalarNode):
                        out.targets.append((f"{path}.{key}".lstrip("."), v.value))
                    elif key == "cls" and "_target_" not in keys and isinstance(v, yaml.ScalarNode):
                        # NeMo's maybe_update_config_version turns a Hydra 0.x 'cls' into '_target_' (every level)
                        out.targets.append((f"{path}.{key}".lstrip("."), v.value))
                    stack.append((k, path, False))
                    stack.append((v, f"{path}.{key}", False))
            else:
                for i, v in enumerate(node.value):
                    stack.append((v, f"{path}[{i}]", False))
            continue
        order.append(node)
        if isinstance(node, yaml.MappingNode):
            mapping, merged = _mapping(node, built)
            nodes += merged
            if nodes > MAX_NODES:
                out.error = f"more than {MAX_NODES} nodes (merge keys included)"
                return out
            built[id(node)] = mapping
        else:
            built[id(node)] = [built.get(id(v)) for v in node.value]
    out.data = built.get(id(root))
    return out


def _events(text: str, loader: Any) -> list[tuple[Any, ...]]:
    import yaml

    return [
        (type(e).__name__, getattr(e, "value", None), getattr(e, "anchor", None), getattr(e, "tag", None))
        for e in yaml.parse(text, Loader=loader)
    ]


def _readers_differ(text: str) -> bool:
    """Whether libyaml and PyYAML's pure-Python reader give different event streams (checked only where they
    can: recording_yaml_loader.readers_may_differ); one refusing what the other reads counts as different."""
    from .recording_yaml_loader import readers_may_differ

    if not readers_may_differ(text):
        return False
    import yaml

    try:
        fast = _events(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        fast = None
    try:
        pure = _events(text, yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError, ValueError):
        pure = None
    return fast != pure


MERGE_TAG = "tag:yaml.org,2002:merge"


def _mapping(node: yaml.MappingNode, built: dict[int, Any]) -> tuple[dict[Any, Any], int]:
    """A mapping as SafeConstructor builds it (MLflow's yaml.safe_load, OmegaConf's loader): a ``<<`` merge key's
    mapping (or list of mappings, the first winning) supplies keys the node's own keys override (flatten_mapping).
    Left unapplied, ``python_function: {<<: *base}`` hid the loader_module and code folder MLflow 3.18 imported.
    Also the number of entries merged in (bounded by the caller: merges of merges grow quadratically)."""
    out: dict[Any, Any] = {}
    merged = 0
    for k, v in node.value:
        if k.tag != MERGE_TAG:
            continue
        value = built.get(id(v))
        sources = reversed(value) if isinstance(value, list) else [value]
        for src in sources:
            if isinstance(src, dict):
                out.update(src)
                merged += len(src)
    for k, v in node.value:
        if k.tag != MERGE_TAG:
            out[_hashable(built.get(id(k)))] = built.get(id(v))
    return out, merged


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)[:200]
