"""Measure the Jinja language real chat templates use; writes ``chat_language.yaml`` beside this file.

Templates are parsed with jinja2's parser, never rendered. The measured sets
are what the analyzer allows; ``audited`` lists additions that were not seen in
the corpus but were reviewed as equally inert (pure builtin filters/tests,
``continue`` next to the measured ``break``). ``object_attributes`` are the names
that resolve to attributes of the Python objects a template can reach (str,
dict, list, Jinja's loop/namespace/macro/cycler objects ...): reading one that
is not allowed above is a finding, other names are plain data fields.

    .venv/bin/python signatures/templates/measure_language.py fixtures/templates/benign
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml
from jinja2 import nodes
from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.utils import Cycler, Joiner, Namespace
from markupsafe import Markup

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scanner.analysis.jinja_template import parse_template  # noqa: E402

AUDITED = {
    "node_types": ["Continue", "ExprStmt", "With", "FloorDiv", "Div", "Pow", "Pos", "Compare", "CondExpr"],
    "filters": [
        "format",
        "abs",
        "center",
        "count",
        "d",
        "e",
        "escape",
        "first",
        "float",
        "last",
        "max",
        "random",
        "reverse",
        "round",
        "select",
        "striptags",
        "sum",
        "title",
        "truncate",
        "wordcount",
        "batch",
        "slice",
        "groupby",
    ],
    "tests": [
        "divisibleby",
        "eq",
        "equalto",
        "even",
        "odd",
        "ge",
        "gt",
        "in",
        "le",
        "lt",
        "ne",
        "sameas",
        "float",
        "integer",
        "lower",
        "upper",
        "escaped",
    ],
    "attributes": ["length", "revindex", "revindex0", "depth", "depth0"],  # loop counters, like index/index0
    "methods": [
        "keys",
        "values",
        "lower",
        "upper",
        "title",
        "capitalize",
        "count",
        "find",
        "rfind",
        "index",
        "rsplit",
        "splitlines",
        "partition",
        "rpartition",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "isnumeric",
        "removeprefix",
        "removesuffix",
        "extend",
        "insert",
        "copy",
        "join",  # str.join, as inert as the measured |join filter
    ],
}
ORIGIN = (
    "Hugging Face chat templates as vendored by llama.cpp models/templates (llama-cpp-python 0.3.36 sdist: Llama 3.1/3.2/3.3, "
    "Qwen 2.5/3/QwQ/Qwen3-Coder, Mistral Nemo/Small/Devstral, Gemma 2/4, Phi-3.5, DeepSeek R1/V3.1/V3.2, Command-R+/R7B, "
    "Granite 3.3/4, SmolLM3, Hermes 2/3, Kimi, GLM, MiniMax, Nemotron ...) and chujiezheng/chat_templates "
    "(Llama 2/3, Mistral, Gemma, Phi-3, Qwen 2.5, Granite 3.0, Zephyr, ChatML, Vicuna, Alpaca ...)"
)
# objects a chat template can reach in HF/llama.cpp-style renderers
_OBJECTS = (
    str,
    dict,
    list,
    tuple,
    int,
    float,
    bool,
    range,
    type(None),
    Markup,
    LoopContext,
    Macro,
    Cycler,
    Joiner,
    Namespace,
    Undefined,
    type,
    type(len),
    type(lambda: 0),
)


def measure(folder: Path) -> dict[str, object]:
    sets: dict[str, Counter[str]] = {
        k: Counter() for k in ("node_types", "filters", "tests", "globals", "attributes")
    }
    files = sorted(folder.glob("*.jinja"))
    for p in files:
        ast = parse_template(p.read_text(encoding="utf-8"))
        bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
        bound |= {m.name for m in ast.find_all(nodes.Macro)}
        seen: dict[str, set[str]] = {k: set() for k in sets}
        stack: list[nodes.Node] = [ast]
        while stack:
            n = stack.pop()
            stack.extend(n.iter_child_nodes())
            seen["node_types"].add(type(n).__name__)
            if isinstance(n, nodes.Filter):
                seen["filters"].add(n.name)
            elif isinstance(n, nodes.Test):
                seen["tests"].add(n.name)
            elif isinstance(n, nodes.Name) and n.ctx == "load" and n.name not in bound:
                seen["globals"].add(n.name)
            elif isinstance(n, nodes.Getattr):
                seen["attributes"].add(n.attr)
        for k in sets:
            sets[k].update(seen[k])
    obj_attrs = sorted({a for o in _OBJECTS for a in dir(o) if not a.startswith("_")})
    return {
        "name": "chat-templates",
        "measured_on": f"{len(files)} real chat templates (see sources)",
        "origin": ORIGIN,
        "sources": [p.name for p in files],
        **{k: sorted(v) for k, v in sets.items()},
        "audited": AUDITED,
        "object_attributes": obj_attrs,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("chat_language.yaml")
    doc = measure(Path(sys.argv[1]))
    header = "# Generated by measure_language.py from real chat templates; edit AUDITED there, not here.\n"
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120), encoding="utf-8")
    print(f"wrote {out}")
