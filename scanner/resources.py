"""Where the data directories live, in a checkout and in an installed wheel.

``signatures/`` and ``policies/`` sit at the repository root (the design card
fixes that layout); the wheel carries them as ``scanner/_data/...``.
``MODELWARD_SIGNATURES`` lets an operator point at an updated rule database
without reinstalling.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def signatures_dir() -> Path:
    env = os.environ.get("MODELWARD_SIGNATURES")
    if env:
        return Path(env)
    return _first_existing(_PKG.parent / "signatures", _PKG / "_data" / "signatures")


def policies_dir() -> Path:
    env = os.environ.get("MODELWARD_POLICIES")
    if env:
        return Path(env)
    return _first_existing(_PKG.parent / "policies", _PKG / "_data" / "policies")


def shipped_policy_names() -> list[str]:
    """Names ``--policy`` accepts without a path (the YAML files in the policies folder)."""
    return sorted(p.stem for p in policies_dir().glob("*.yaml"))
