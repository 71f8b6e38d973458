"""hydra / OmegaConf ``_target_`` (and jsonargparse ``class_path``) values: calls of arbitrary callables.

``hydra.utils.instantiate`` imports the dotted path's first part, walks the rest
with ``getattr`` (importing submodules on the way) and calls the result with the
other keys (``_args_``, nested configs instantiated first unless
``_recursive_: false``; ``_partial_`` only defers the call). LightningCLI /
jsonargparse do the same with ``class_path`` + ``init_args``. So a target is
judged like a pickle global: allowed only when a profile in ``signatures/hydra/``
lists it, critical when the denylist (``signatures/pickle/denylist.yaml``) names
any module or attribute it passes through, otherwise a blocking finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..findings import Severity
from ..rules import RuleDB

TARGET_KEYS = ("_target_", "class_path")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
DOTTED_NAME = _DOTTED  # a plain dotted Python name (what an import path can be)
_DUNDER = re.compile(r"__\w+__")
# ${name:args} interpolations call registered resolvers; these read the process environment or evaluate code
# (OmegaConf's grammar: an ID may hold '-' after its first character, e.g. ${my-eval:...})
_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.-]*)\s*:")
_ENV_RESOLVERS = frozenset({"oc.env", "env"})
_CODE_RESOLVERS = frozenset(
    {
        "eval",
        "exec",
        "python",
        "py",
        "lambda",
        "import",
        "oc.eval",
        "call",
        "function",
        "hydra.utils.get_method",
    }
)
# resolver names projects register around eval/exec or an import (measured over public repositories: "eval" in
# diffusion_policy and many hydra projects, "python.eval" (MLShukai/ami), "ieval" -> hydra.utils.get_object
# (a lightning-hydra project), "custom_eval"): a word of the name, split on '.', '_' and '-', that names one
_CODE_WORDS = frozenset(
    {
        "eval",
        "ieval",
        "exec",
        "python",
        "py",
        "lambda",
        "import",
        "imp",
        "locate",
        "instantiate",
        "call",
        "function",
        "compile",
        "getattr",
        "system",
        "shell",
        "subprocess",
        "cmd",
        "run",
    }
)
_CODE_SUBSTRINGS = re.compile(r"eval|exec|import|locate|instantiate|get_?(?:object|class|method|attr)", re.I)
_REEXPORTED = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "builtins",
        "sys",
        "importlib",
        "runpy",
        "pty",
        "ctypes",
        "pickle",
        "marshal",
        "shutil",
        "socket",
    }
)
_SAFE_RESOLVERS = frozenset(
    {
        "oc.select",
        "oc.create",
        "oc.deprecated",
        "oc.dict.keys",
        "oc.dict.values",
        "oc.decode",
        "hydra",
        "now",
        "python_version",  # hydra's own (core.utils.setup_globals): the interpreter's version string
    }
)


def code_resolver(name: str) -> bool:
    """A resolver name that, where a loader registered it, evaluates code or imports a module."""
    if name in _SAFE_RESOLVERS:
        return False
    if name in _CODE_RESOLVERS or _CODE_SUBSTRINGS.search(name):
        return True
    return any(w in _CODE_WORDS for w in re.split(r"[._-]+", name.lower()))


@dataclass(frozen=True)
class TargetIssue:
    rule_id: str
    severity: Severity | None
    message: str


def judge_target(value: object, key: str, rules: RuleDB) -> TargetIssue | None:
    """None when a profile allows the target; otherwise why it blocks."""
    if type(value) in (int, float, bool):
        # a number imports and calls nothing: hydra's _resolve_target raises InstantiationException on a target that
        # is neither a str nor callable, detectron2's instantiate hands the number back and calling it raises
        # TypeError, jsonargparse wants a str class_path, instantiate_from_config calls str methods on it (a tokenizer
        # vocabulary maps the token '_target_' to its id). A container still blocks: detectron2 instantiates a mapping
        # target and calls what it builds; None stands for "not a string" when the caller did not read the value
        return None
    if not isinstance(value, str):
        return TargetIssue(
            "CONFIG-TARGET-UNLISTED", None, f"{key} is not a dotted name ({type(value).__name__})"
        )
    text = value.strip()
    if not _DOTTED.fullmatch(text):
        hit = _deny([t for t in re.split(r"[^A-Za-z0-9_.]+", text) if t], rules)
        if hit:
            return hit
        return TargetIssue(
            "CONFIG-TARGET-UNLISTED",
            None,
            f"{key} {text[:200]!r} is computed or not a plain dotted name; what it calls cannot be judged",
        )
    parts = text.split(".")
    if any(_DUNDER.fullmatch(p) for p in parts):
        return TargetIssue("CONFIG-TARGET-DANGEROUS", None, f"{key} {text[:200]!r} walks Python internals")
    hit = _deny([text], rules)
    if hit:
        return hit
    if len(parts) >= 2:
        module, name = ".".join(parts[:-1]), parts[-1]
        if any(p.allows(module, name) for p in rules.hydra_profiles.values() if p.default):
            return None
    return TargetIssue(
        "CONFIG-TARGET-UNLISTED",
        None,
        f"{key} {text[:200]!r} is not in the hydra target allowlist; instantiate would import and call it",
    )


def _deny(candidates: list[str], rules: RuleDB) -> TargetIssue | None:
    """The denylist matched on the path, and on every suffix that starts at a module packages commonly re-export.

    ``pkg.mod.os.system`` reaches os.system through ``pkg.mod``'s own ``import os``.
    """
    for text in candidates:
        parts = [p for p in text.split(".") if p]
        for i in range(len(parts)):
            sub = parts[i:]
            if i and sub[0] not in _REEXPORTED:
                continue
            for j in range(1, len(sub) + 1):
                module = ".".join(sub[:j])
                module = rules.denylist.aliases.get(module, module)
                hit = rules.denylist.lookup(module, ".".join(sub[j:]) or "?")
                if hit is not None:
                    return TargetIssue(
                        "CONFIG-TARGET-DANGEROUS",
                        None,
                        f"target {text[:200]!r} reaches {hit.match} ({hit.category})",
                    )
    return None


# oc.decode parses its argument as YAML and oc.create turns it into config nodes, at resolution time: a _target_
# they produce is instantiated like a written one but never appears as a key in the file
_NODE_BUILDERS = frozenset({"oc.decode", "oc.create"})
# ...unless what they decode is the loading process's own environment (${oc.decode:${oc.env:N_GPUS}})
_ENV_ONLY = re.compile(r"\$\{\s*oc\.(?:decode|create)\s*:\s*\$\{\s*(?:oc\.)?env\s*:[^{}$]*\}\s*\}")


# a dict-literal key of instantiate_from_config (CompVis/Stability ldm.util, sgm.util: config["target"]) or hydra 0.x
# (cls/class): ``${oc.select:missing,{target: os.system, params: {...}}}`` resolves to a node those call
_DICT_TARGET_KEY = re.compile(r"[{,]\s*['\"]?(?:target|cls|class)['\"]?\s*:")


def _builds_target(text: str) -> bool:
    """An instantiate key after a '${' on the same line (linear: a regex '${[^\\n]*_target_' backtracks
    quadratically over a line of many '${')."""
    for line in text.split("\n"):
        i = line.find("${")
        if i >= 0 and (
            "_target_" in line[i:] or "class_path" in line[i:] or _DICT_TARGET_KEY.search(line, i)
        ):
            return True
    return False


def _balanced_end(text: str, start: int, cap: int = 256) -> int | None:
    """Index just past the '}' closing the '${' at ``start`` (None when not closed within ``cap`` characters)."""
    depth = 0
    j = start
    stop = min(len(text), start + cap)
    while j < stop:
        if text.startswith("${", j):
            depth += 1
            j += 2
            continue
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None


def computed_resolver_name(text: str) -> bool:
    """``${${name}:...}`` or ``${ns.${x}:...}``: OmegaConf's grammar lets an interpolation build a resolver name
    (resolverName: (interpolation | ID) (DOT (interpolation | ID))*), so which resolver runs is not written."""
    i = text.find("${")
    seen = 0
    while i >= 0 and seen < 2000:
        seen += 1
        j = i + 2
        while j < len(text) and text[j] in " \t":
            j += 1
        computed = False
        while j < len(text):
            if text.startswith("${", j):
                end = _balanced_end(text, j)
                if end is None:
                    break
                computed, j = True, end
            elif text[j].isalnum() or text[j] in "_-.":
                j += 1
            else:
                break
        while j < len(text) and text[j] in " \t":
            j += 1
        if computed and j < len(text) and text[j] == ":":
            return True
        i = text.find("${", i + 2)
    return False


def resolver_issues(value: str) -> list[TargetIssue]:
    """OmegaConf resolvers named in a string: environment reads are noted, code-evaluating ones are critical,
    and interpolations that build config nodes (oc.decode, oc.create, a dict literal naming a target) block."""
    out: list[TargetIssue] = []
    head = value[:100_000]
    builders = {m.group(1) for m in _RESOLVER.finditer(_ENV_ONLY.sub("", head))} & _NODE_BUILDERS
    if builders:
        out.append(
            TargetIssue(
                "CONFIG-TARGET-UNLISTED",
                None,
                f"interpolation ${{{sorted(builders)[0]}:...}} builds config nodes when resolved; "
                "an instantiate target it produces cannot be judged",
            )
        )
    elif "${" in head and _builds_target(head):
        # ${oc.select:missing,{_target_: ...}}: resolver arguments can be dict literals, returned as config nodes
        out.append(
            TargetIssue(
                "CONFIG-TARGET-UNLISTED",
                None,
                "interpolation argument spells an instantiate key (_target_/class_path); "
                "the node it resolves to would be instantiated",
            )
        )
    if computed_resolver_name(head):
        out.append(
            TargetIssue(
                "CONFIG-TARGET-UNLISTED",
                None,
                "interpolation computes the name of the resolver it calls (${${...}:...}); which resolver runs, "
                "a code-evaluating one included, cannot be judged",
            )
        )
    for name in dict.fromkeys(m.group(1) for m in _RESOLVER.finditer(value[:100_000])):
        if code_resolver(name):
            out.append(
                TargetIssue(
                    "CONFIG-TARGET-DANGEROUS",
                    None,
                    f"interpolation ${{{name}:...}} evaluates code when a loader registered that resolver",
                )
            )
        elif name in _ENV_RESOLVERS:
            out.append(
                TargetIssue(
                    "CONFIG-RESOLVER",
                    None,
                    f"interpolation ${{{name}:...}} reads the loading process's environment (secrets can leak into the model)",
                )
            )
        elif name not in _SAFE_RESOLVERS:
            out.append(
                TargetIssue(
                    "CONFIG-RESOLVER", Severity.LOW, f"interpolation calls the custom resolver {name!r}"
                )
            )
    return out


# ${path}, ${.sibling}, ${..parent_key.x}: a node interpolation OmegaConf resolves to the referenced value, type kept
_NODE_REF = re.compile(r"\$\{(\.*)([A-Za-z_$][\w$-]*(?:\.[\w$-]+)*)?\}")
MAX_INTERPOLATION_HOPS = 16
# ${oc.env:NAME} / ${oc.env:NAME,default}: the default (when given) as OmegaConf's grammar parses it
_ENV_REF = re.compile(r"\$\{\s*oc\.env\s*:\s*[A-Za-z_][\w.]*\s*(?:,([^${}\\]*))?\}")
_FALSY_GRAMMAR = frozenset({"false", "null", "0", "0.0", "''", '""', ""})


# where a value sits: (its container, the link of that container's container), None above the document root; a
# linked chain, so a walk never copies ancestor lists (a deep spine with many leaves stays linear)
Link = tuple[Any, Any]


def _up(link: Link, levels: int) -> Link | None:
    for _ in range(levels):
        if link[1] is None:
            return None
        link = link[1]
    return link


def _lookup(base: Link, dotted: str) -> tuple[Link, Any] | None:
    """The link of the container holding the value at ``dotted`` below ``base``'s container, and the value."""
    link = base
    node: Any = base[0]
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            nxt = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            nxt = node[int(part)]
        else:
            return None
        if i < len(parts) - 1:
            link = (nxt, link)
        node = nxt
    return link, node


def truthy_when_passed(value: Any, link: Link, root: Any) -> bool:
    """Whether hydra/OmegaConf would hand a Python callee a true value for this config value (``link``: where the
    container holding it sits; ``root``: the document). Callees test plain truthiness (``if trust_remote_code:``):
    every non-empty string is true ("False", "no" too), as is a non-empty list or mapping and any object a nested
    ``_target_`` builds. Node interpolations are followed; any other interpolation (resolvers, string
    concatenation) may produce anything and counts as true; ``${oc.env:NAME,default}`` is judged by its default."""
    for _ in range(MAX_INTERPOLATION_HOPS):
        if isinstance(value, str):
            if "${" not in value:
                return value != ""
            env = _ENV_REF.fullmatch(value)
            if env is not None:  # the loading process's own setting; unset, its written default applies
                default = env.group(1)
                return default is not None and default.strip().lower() not in _FALSY_GRAMMAR
            m = _NODE_REF.fullmatch(value)
            if m is None or m.group(2) is None:
                return True
            dots = len(m.group(1))
            base = (root, None) if dots == 0 else _up(link, dots - 1)
            if base is None:
                return True
            found = _lookup(base, m.group(2))
            if found is None:
                return True
            link, value = found
            continue
        if value is None:
            return False
        if isinstance(value, (bool, int, float, dict, list)):
            return bool(value)
        return True
    return True


# allowlisted targets that take trust_remote_code positionally (index into _args_), measured by AST over NeMo 2.7.3's
# sources: every class/function named by a signatures/hydra profile whose signature has trust_remote_code
POSITIONAL_REMOTE_CODE = {"AutoTokenizer": 12}


def _effective(node: dict[Any, Any], key: str, budget: int = 256) -> tuple[bool, Any]:
    """A mapping's value for ``key`` as YAML merge keys give it (composed, not constructed: ``<<`` is still a key
    here, while OmegaConf's loader flattens it; the mapping's own keys win, then the merged ones in order).
    Depth first over the merge graph, each mapping once, at most ``budget`` of them (aliases make it a graph:
    a bounded walk, not an exponential one); past the budget the key counts as present and true."""
    seen: set[int] = set()
    stack: list[Any] = [node]
    while stack:
        m = stack.pop()
        if not isinstance(m, dict) or id(m) in seen:
            continue
        seen.add(id(m))
        if len(seen) > budget:
            return True, True
        if key in m:
            return True, m[key]
        merged = m.get("<<")
        stack.extend(reversed(merged) if isinstance(merged, list) else [merged])
    return False, None


def remote_code_args(node: dict[Any, Any], link: Link, root: Any) -> str | None:
    """How a ``_target_`` node (``link``: the node's own link) passes a true trust_remote_code (keyword or
    positional), or None."""
    found, v = _effective(node, "trust_remote_code")
    if found and truthy_when_passed(v, link, root):
        return "trust_remote_code"
    _, target = _effective(node, "_target_")
    _, args = _effective(node, "_args_")
    if isinstance(target, str) and isinstance(args, list):
        i = POSITIONAL_REMOTE_CODE.get(target.strip().rsplit(".", 1)[-1])
        if i is not None and i < len(args) and truthy_when_passed(args[i], (args, link), root):
            return f"_args_[{i}] (trust_remote_code)"
    return None
