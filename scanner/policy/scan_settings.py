"""The parts of a policy that change what the scan itself accepts, compiled before the scan.

Pickle allowances and signature trust are scoped to sources; they are turned here into plain
``SourceScopes`` that the pipeline applies per snapshot (``ScanOptions.for_source``), so the engine never
reads a policy. Deciding the verdict from the report stays with the policy evaluator.
"""

from __future__ import annotations

from typing import Any

from ..integrity.trust import keyless_trust_entries
from ..settings import SourceScope, SourceScopes
from .loader import Policy


def _pickle_profiles(policy: Policy) -> list[str] | None:
    profiles = policy.get("pickle", "profiles")
    return list(profiles) if profiles is not None else None


def _extra_allowed(policy: Policy) -> list[dict[str, Any]]:
    return list(policy.get("pickle", "extra_allowed", default=[]) or [])


def _trust_entries(policy: Policy) -> list[dict[str, Any]]:
    return list(policy.get("signatures", "trust", default=[]) or [])


def compile_scan_settings(policy: Policy | None) -> SourceScopes:
    """Per-source scan settings of ``policy`` (none without one), in the policy's order."""
    if policy is None:
        return SourceScopes()
    scopes = [
        SourceScope(sources=tuple(entry["sources"]), extra_allowed_globals=tuple(entry["globals"]))
        for entry in _extra_allowed(policy)
    ]
    scopes += [
        SourceScope(
            sources=tuple(entry["sources"]),
            signature_keys=tuple(entry.get("keys") or []),
            signature_chains=tuple(entry.get("chains") or []),
            signature_identities=tuple(keyless_trust_entries(entry.get("identities") or [])),
        )
        for entry in _trust_entries(policy)
    ]
    profiles = _pickle_profiles(policy)
    return SourceScopes(
        pickle_profiles=tuple(profiles) if profiles is not None else None, scopes=tuple(scopes)
    )
