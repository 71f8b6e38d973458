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
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~25x faster
        root = yaml.compose(raw.decode("utf-8"), Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        out.error = f"not parseable: {type(exc).__name__}: {exc}"[:300]
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
            built[id(node)] = {_hashable(built.get(id(k))): built.get(id(v)) for k, v in node.value}
        else:
            built[id(node)] = [built.get(id(v)) for v in node.value]
    out.data = built.get(id(root))
    return out


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)[:200]
