"""Signature verification as part of a scan of a local model folder or file.

Verification hashes every file once; the scan reuses those digests for its
per-file SHA-256, so the verified digest and the reported one are the same read.
A file is reported ``verified`` only when the bytes the scan inspected have the
SHA-256 bound to the verified bytes (for blake2b and shard signatures, a SHA-256
taken of the same, unchanged file right after verification); files the
signature's own ignore_paths leave out are ``unsigned``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..findings import Coverage, FileResult
from ..rules import RuleDB
from ..sources.base import Snapshot

if TYPE_CHECKING:
    pass
from .locate import find_signature
from .trust import KeylessTrust

SIGNATURE_FILE = "signature-file"


@dataclass
class SignatureOutcome:
    digests: dict[str, str] = field(default_factory=dict)  # artifact path -> verified sha256
    status: dict[str, str] = field(default_factory=dict)  # artifact path -> verified | mismatch | unsigned
    extra_results: list[FileResult] = field(default_factory=list)
    signer: str | None = None
    # the signature's own ignore_paths (besides git metadata), as path components: files under them are unsigned
    signer_ignores: list[tuple[str, ...]] = field(default_factory=list)


def _model_root(snap: Snapshot) -> tuple[Path, bool]:
    p = Path(snap.resolved)
    return p, p.is_file()


def _note(
    rules: RuleDB, path: str, rule_id: str, message: str, evidence: dict[str, str] | None = None
) -> FileResult:
    fr = FileResult(path=path, size=0, format="signature", coverage=Coverage.FULL)
    fr.findings.append(rules.finding(rule_id, message, path, evidence=evidence))
    return fr


def check_snapshot_signature(
    snap: Snapshot,
    rules: RuleDB,
    *,
    signature: str | None,
    keys: list[str],
    chains: list[str],
    identities: Sequence[KeylessTrust] = (),
) -> SignatureOutcome | None:
    """Verify the signature beside (or given for) a local snapshot; None when there is none to check."""

    if snap.kind == "oci":
        return _check_cosign(snap, rules, keys)
    if snap.kind != "local":
        return None
    root, single = _model_root(snap)
    sig = Path(signature) if signature else find_signature(root)
    if sig is None:
        return None
    from .errors import IntegrityError
    from .hashing import hash_file_unchanged
    from .manifest import GIT_IGNORES, normalize_ignores
    from .verify import Status, verify_with_any  # cryptography is imported only when a signature is checked

    sig_name = os.path.relpath(sig, root.parent if single else root)
    if not keys and not chains and not identities:
        out = SignatureOutcome()
        out.extra_results.append(
            _note(
                rules,
                sig_name,
                "SIGNATURE-UNVERIFIED",
                "signature present but no --key/--chain/--identity or policy trust entry to verify it",
            )
        )
        return out
    outcome = verify_with_any(root, sig, keys=keys, chains=chains, identities=identities)
    result, last_error, unusable = outcome.result, outcome.failed, outcome.unusable
    if result is None and not last_error:
        out = SignatureOutcome()
        out.extra_results.append(_note(rules, sig_name, "SIGNATURE-UNUSABLE", unusable))
        return out
    out = SignatureOutcome()
    out.status[sig_name] = SIGNATURE_FILE
    if result is None:
        out.extra_results.append(
            _note(rules, sig_name, "SIGNATURE-INVALID", last_error or "signature does not verify")
        )
        return out
    out.signer = result.signer.identity
    out.signer_ignores = [
        parts
        for parts in normalize_ignores(result.serialization.ignore_paths)
        if "/".join(parts) not in GIT_IGNORES
    ]
    digests = result.verified_digests()
    for path, check in result.files.items():
        rel = root.name if single and path == "." else path
        if check.status is Status.OK:
            algo_digest = digests.get(path)
            if algo_digest and algo_digest[0] == "sha256":
                out.digests[rel] = algo_digest[1]
            else:  # blake2b or shards: bind the scan to the verified bytes through a SHA-256 of the same file
                try:
                    out.digests[rel] = hash_file_unchanged(
                        root if single else root.joinpath(*PurePosixPath(path).parts),
                        result.identities[path],
                    )
                except (KeyError, IntegrityError):  # changed since it was verified: not the signed bytes
                    out.status[rel] = "mismatch"
                    continue
            out.status[rel] = "verified"
        elif check.status is Status.CHANGED:
            out.status[rel] = "mismatch"
        elif check.status is Status.EXTRA:
            out.status[rel] = "unsigned"
        elif check.status is Status.MISSING:
            out.extra_results.append(
                _note(
                    rules,
                    rel,
                    "SIGNATURE-FILE-MISSING",
                    f"signed file {rel} is missing",
                    {"signer": out.signer},
                )
            )
    return out


def _check_cosign(snap: Snapshot, rules: RuleDB, keys: list[str]) -> SignatureOutcome | None:
    """Cosign key signatures attached to an OCI manifest: every layer is covered by the manifest digest."""
    if not snap.attached_signatures:
        return None
    out = SignatureOutcome()
    where = "<signatures>"
    if not keys:
        out.extra_results.append(
            _note(
                rules,
                where,
                "SIGNATURE-UNVERIFIED",
                "cosign signature attached but no --key or policy trust entry to verify it",
            )
        )
        return out
    from .cosign import verify_cosign

    digest = snap.resolved.rsplit("@", 1)[-1]
    result = verify_cosign(snap.attached_signatures, digest, keys)
    if result.signer is None:
        out.extra_results.append(
            _note(
                rules,
                where,
                "SIGNATURE-INVALID",
                "no cosign signature verifies for this manifest: " + "; ".join(result.problems)[:600],
            )
        )
        return out
    out.signer = result.signer
    for art in snap.artifacts:  # the manifest digest pins every layer's digest, so the signature covers them
        out.status[art.path] = "verified"
    return out


def _signer_ignored(path: str, outcome: SignatureOutcome) -> bool:
    parts = PurePosixPath(path).parts
    return any(parts[: len(ig)] == ig for ig in outcome.signer_ignores)


def apply_signature_status(results: list[FileResult], outcome: SignatureOutcome, rules: RuleDB) -> None:
    for fr in results:
        state = outcome.status.get(fr.path)
        if state is None and outcome.signer is not None and _signer_ignored(fr.path, outcome):
            fr.signature = "unsigned"
            fr.findings.append(
                rules.finding(
                    "SIGNATURE-UNSIGNED-FILE",
                    f"{fr.path} is not covered by the signature: its ignore_paths leave it out",
                    fr.path,
                )
            )
            continue
        if state is None:
            continue
        verified = outcome.digests.get(fr.path)
        if state == "verified" and verified is not None:
            if fr.sha256 is None:
                continue  # not read (or not hashed): nothing inspected that the signature could vouch for
            if fr.sha256.lower() != verified.lower():  # the inspected bytes are not the verified ones
                state = "mismatch"
        fr.signature = state
        if state == "verified":
            fr.signer = outcome.signer
        if state == SIGNATURE_FILE:
            continue
        if state == "mismatch":
            fr.findings.append(
                rules.finding(
                    "SIGNATURE-MISMATCH",
                    f"{fr.path} differs from the digest signed by {outcome.signer}",
                    fr.path,
                    evidence={"signer": outcome.signer or ""},
                )
            )
        elif state == "unsigned":
            fr.findings.append(
                rules.finding(
                    "SIGNATURE-UNSIGNED-FILE", f"{fr.path} is not covered by the signature", fr.path
                )
            )
