"""Policy settings that change what the scan itself accepts, scoped to the source being scanned."""

from __future__ import annotations

from .evaluate import matches
from .loader import Policy


def pickle_allowances(policy: Policy | None, source: str) -> tuple[list[str] | None, list[str]]:
    """(allowlist profiles or None for the rule DB defaults, extra 'module:name' globals) for one source."""
    if policy is None:
        return None, []
    profiles = policy.get("pickle", "profiles")
    extra: list[str] = []
    for entry in policy.get("pickle", "extra_allowed", default=[]) or []:
        if any(matches(p, source) for p in entry["sources"]):
            extra.extend(entry["globals"])
    return (list(profiles) if profiles is not None else None), extra
