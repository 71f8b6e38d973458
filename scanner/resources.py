"""Where the data directories live, in a checkout and in an installed wheel.

``signatures/`` and ``policies/`` sit at the repository root (the design card
fixes that layout); the wheel carries them as ``scanner/_data/...``.
``MODELWARD_SIGNATURES`` lets an operator point at an updated rule database
without reinstalling.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def packaged_signatures_dir() -> Path:
    """The rule database that ships with this modelward (checkout or wheel)."""
    return _first_existing(_PKG.parent / "signatures", _PKG / "_data" / "signatures")


def installed_rules_home() -> Path:
    """Where ``modelward rules update`` installs bundles: ``$XDG_DATA_HOME/modelward/rules``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "modelward" / "rules"


def rules_version_key(version: str) -> tuple[int, ...]:
    """``2026.11.21.1`` -> (2026, 11, 21, 1); anything unparsable sorts first."""
    try:
        return tuple(int(p) for p in version.strip().split("."))
    except ValueError:
        return (-1,)


def _version_of(root: Path) -> tuple[int, ...]:
    try:
        return rules_version_key((root / "VERSION").read_text(encoding="utf-8"))
    except OSError:
        return (-1,)


def signatures_dir() -> Path:
    """MODELWARD_SIGNATURES, else an installed update newer than the packaged database, else the packaged one."""
    env = os.environ.get("MODELWARD_SIGNATURES")
    if env:
        return Path(env)
    packaged = packaged_signatures_dir()
    try:
        active = json.loads((installed_rules_home() / "active.json").read_text(encoding="utf-8"))
        installed = installed_rules_home() / str(active["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return packaged
    if installed.is_dir() and _version_of(installed) > _version_of(packaged):
        return installed
    return packaged


def policies_dir() -> Path:
    env = os.environ.get("MODELWARD_POLICIES")
    if env:
        return Path(env)
    return _first_existing(_PKG.parent / "policies", _PKG / "_data" / "policies")


def shipped_policy_names() -> list[str]:
    """Names ``--policy`` accepts without a path (the YAML files in the policies folder)."""
    return sorted(p.stem for p in policies_dir().glob("*.yaml"))
