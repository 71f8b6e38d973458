"""Turn what a source *claims* about an artifact into findings once its bytes were read.

A registry's digest or size is a claim, not a verification. After an artifact
was inspected, its reader knows what it actually fetched: a size the server
disagreed on, a digest that did not match when every byte passed through, a
body that never arrived. Local copies (a cache blob named by its sha256) are
checked against the digest the engine computed. The Hub's own per-file scan
status is reported as information, never as a verdict.
"""

from __future__ import annotations

from ..findings import Finding
from ..io.reader import Reader
from ..rules import RuleDB
from .base import Artifact


def claim_findings(
    artifact: Artifact, reader: Reader | None, computed_sha256: str | None, rules: RuleDB
) -> list[Finding]:
    """Findings for ``artifact``: call after inspection and after the engine hashed local files."""
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for p in reader.integrity_problems if reader is not None else ():
        key = (p.rule_id, p.message)
        if key not in seen:
            seen.add(key)
            out.append(rules.finding(p.rule_id, p.message, artifact.path, evidence=dict(p.evidence)))
    if (
        artifact.local_path
        and computed_sha256
        and artifact.claimed_sha256
        and computed_sha256.lower() != artifact.claimed_sha256.lower()
    ):
        out.append(
            rules.finding(
                "REGISTRY-DIGEST-MISMATCH",
                f"file has sha256 {computed_sha256}, the registry claims {artifact.claimed_sha256}",
                artifact.path,
                evidence={
                    "algorithm": "sha256",
                    "claimed": artifact.claimed_sha256,
                    "actual": computed_sha256,
                },
            )
        )
    status = artifact.info.get("hub_security_status")
    if status:
        ev = {k: v for k, v in artifact.info.items() if k.startswith("hub_")}
        out.append(
            rules.finding(
                "REGISTRY-HUB-SECURITY-STATUS",
                f"the Hub's own scan reports this file as {status!r} (information only; not used for the verdict)",
                artifact.path,
                evidence=ev,
            )
        )
    return out
