"""The root command group's help: words, not Python types, as metavars (issue #13). Only typer's command
building needs it, so it lives apart from ``cli_support``, which the scan command's typer-free path imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import typer.core


class PlainHelpGroup(typer.core.TyperGroup):
    """The root command group; it replaces typer's Python-type metavars (``<str>``, ``<list[Path]>``,
    ``<int range>``) with words (``<text>``, ``<path>``, ``<N>``) in every command's help (issue #13)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_metavars(self)


_NAMED = {  # a better word than the type's, by parameter name, wherever the option appears
    "include": "<glob>",
    "exclude": "<glob>",
    "policy": "<name|file>",
    "upgrade": "<name>",
    "revision": "<rev>",
    "platform": "<os/arch>",
    "artifact_type": "<type>",
    "dask": "<address>",
    "username": "<user>",
    "identity": "<identity>",
    "identity_regex": "<regex>",
    "issuer": "<url>",
    "hash_name": "<algorithm>",
    "min_severity": "<severity>",
}


def _type_word(param: Any) -> str | None:
    """A word for the parameter's type: click's type by class name, or typer 0.29's type descriptor."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        if desc.is_choice:
            return None
        inner = (
            get_args(desc.annotation)[0] if desc.is_list and get_args(desc.annotation) else desc.annotation
        )
        if desc.is_path or inner is Path:
            return "<path>"
        return {str: "<text>", int: "<N>", float: "<number>"}.get(inner)
    kind = type(getattr(param, "type", None)).__name__
    if kind.endswith(("Path", "File")):
        return "<path>"
    if kind in ("IntParamType", "IntRange"):
        return "<N>"
    if kind in ("FloatParamType", "FloatRange"):
        return "<number>"
    if kind in ("StringParamType", "UnprocessedParamType"):
        return "<text>"
    return None  # choices list their values; flags and booleans show no metavar


def _plain_metavars(command: Any) -> None:
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        if param.param_type_name == "argument":  # the name says it; a type after it says nothing
            param.metavar = param.metavar or (param.name or "value").upper()
            param.display_type_rich = lambda ctx: None
            continue
        if param.metavar is not None:
            continue
        word = _NAMED.get(param.name or "") or _type_word(param)
        if word is not None:
            param.metavar = word
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)
