"""A PyYAML SafeLoader that keeps everything a config carries, for judging it: tags and shadowed keys.

Unknown tags (HyperPyYAML's ``!new:``, ``!!python/...``) become plain data and are recorded; the loser of a
duplicate key is kept too (another loader may take it). Imported only when a text looks like a config, since
PyYAML costs ~17 ms to import.

Two readers: ``RecordingLoader`` on libyaml (fast; what MLflow's ``yaml_utils`` reads with) and
``PyRecordingLoader`` on PyYAML's own scanner (what OmegaConf's loader, and so hydra and NeMo, read with).
They disagree on a byte-order mark inside the text: libyaml skips one at the start of any line (the line's
content then starts a column further in), PyYAML only at the start of the stream and reads any other as text, so
``\\ufeff#: {_target_: os.system}`` is a comment to libyaml and a key holding a target to OmegaConf.
"""

from __future__ import annotations

from typing import Any

import yaml


class RecordingLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader that keeps every value: unknown tags become plain data (and are recorded), duplicate keys too."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.tags: list[str] = []
        self.shadowed: list[Any] = []


class PyRecordingLoader(yaml.SafeLoader):
    """The same on PyYAML's pure-Python reader and scanner: how OmegaConf.load (hydra, NeMo) reads a config."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.tags: list[str] = []
        self.shadowed: list[Any] = []


def _any_tag(loader: RecordingLoader, suffix: str, node: yaml.Node) -> Any:
    loader.tags.append(node.tag)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _mapping(loader: RecordingLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        value = loader.construct_object(v_node, deep=True)
        try:
            if key in out:
                loader.shadowed.append({str(key): out[key]})  # the loser of a duplicate key is judged too
            out[key] = value
        except TypeError:  # unhashable key (a mapping used as a key): keep it visible
            loader.shadowed.append([key, value])
    return out


for _cls in (RecordingLoader, PyRecordingLoader):
    _cls.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    _cls.add_multi_constructor("!", _any_tag)
    _cls.add_multi_constructor("tag:", _any_tag)


def readers_may_differ(text: str) -> bool:
    """Whether libyaml and PyYAML can read this text differently: a byte-order mark past the first character
    (measured: a differential fuzz of both readers over YAML punctuation, line breaks, tabs, NEL/LS/PS and
    no-break spaces found no other difference in what parses)."""
    return "\ufeff" in text[1:]
