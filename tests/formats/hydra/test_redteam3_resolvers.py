"""Red-team round 3: OmegaConf resolver names the grammar allows beyond ``[A-Za-z_][\\w.]*``.

``resolverName: (interpolation | ID) (DOT (interpolation | ID))*`` and ``ID: (CHAR|'_') (CHAR|DIGIT|'_'|'-')*``:
a resolver can be named by another interpolation (``${${x}:...}`` with ``x: eval`` calls the eval resolver a
loader registered) or carry hyphens.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scanner.analysis.hydra_targets import computed_resolver_name, resolver_issues
from tests.harness import path_verdict


@pytest.mark.parametrize(
    "text",
    [
        "x: eval\ny: ${${x}:__import__('os').system('id')}\n",
        "x: val\ny: ${ns.${x}:1}\n",
        "x: eval\ny: '${ ${x} : 1}'\n",
        "x: eval\nm:\n  _target_: torch.nn.Linear\n  in_features: ${${x}:2}\n",
    ],
)
def test_computed_resolver_names_block(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    decision, rules = path_verdict(tmp_path)
    assert decision == "block", rules
    assert "CONFIG-TARGET-UNLISTED" in rules


@pytest.mark.parametrize(
    ("value", "computed"),
    [
        ("${${x}:1}", True),
        ("${a.${b}:1}", True),
        ("${a.${b}}", False),  # a node interpolation with a computed key: no resolver call
        ("${oc.select:${y},1}", False),  # the argument is interpolated, not the name
        ("${x}", False),
        ("${" * 5000, False),  # unclosed: bounded work, nothing found
    ],
)
def test_computed_resolver_name(value: str, computed: bool) -> None:
    assert computed_resolver_name(value) is computed


def test_hyphenated_resolver_names_are_seen() -> None:
    issues = resolver_issues("${my-resolver:1}")
    assert [i.rule_id for i in issues] == ["CONFIG-RESOLVER"]


@pytest.mark.parametrize("value", ["${" * 50_000, "${a" * 33_000, "${x " * 25_000 + "_target_"])
def test_resolver_checks_are_linear(value: str) -> None:
    """A 100 KB line of '${' took minutes through a backtracking regex; every check now reads it in one pass."""
    t0 = time.monotonic()
    resolver_issues(value)
    assert time.monotonic() - t0 < 2.0
