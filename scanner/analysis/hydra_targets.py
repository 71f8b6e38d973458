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
    {"oc.select", "oc.create", "oc.deprecated", "oc.dict.keys", "oc.dict.values", "oc.decode", "hydra", "now"}
)


@dataclass(frozen=True)
class TargetIssue:
    rule_id: str
    severity: Severity | None
    message: str


def judge_target(value: object, key: str, rules: RuleDB) -> TargetIssue | None:
    """None when a profile allows the target; otherwise why it blocks."""
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


def _builds_target(text: str) -> bool:
    """An instantiate key after a '${' on the same line (linear: a regex '${[^\\n]*_target_' backtracks
    quadratically over a line of many '${')."""
    for line in text.split("\n"):
        i = line.find("${")
        if i >= 0 and ("_target_" in line[i:] or "class_path" in line[i:]):
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
        if name in _CODE_RESOLVERS:
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
