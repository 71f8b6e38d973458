"""Cosign key signatures of OCI artifacts: the simple-signing payload, signed with an ECDSA key.

cosign signs ``{"critical": {"identity": {"docker-reference": …}, "image": {"docker-manifest-digest":
"sha256:…"}, "type": "cosign container image signature"}, "optional": …}`` and stores the payload as a
layer of the ``sha256-<hex>.sig`` manifest (or an OCI 1.1 referrer), the base64 signature in the layer's
``dev.cosignproject.cosign/signature`` annotation. A signature counts only if it verifies over the exact
payload bytes with a trusted key AND the payload names the manifest digest that was scanned: a valid
signature of another image proves nothing about this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from ..sources.base import AttachedSignature
from .bundle import strict_json
from .errors import IntegrityError
from .keys import curve_hash, key_hint, load_public_key

COSIGN_TYPE = "cosign container image signature"


@dataclass(frozen=True)
class CosignOutcome:
    signer: str | None  # "cosign key <hint>" when a trusted key verified a signature of this manifest
    problems: tuple[str, ...]  # why each signature did not count


def _payload_digest(payload: bytes) -> str | None:
    """The manifest digest the payload names; None for anything else, including duplicate JSON keys (which
    parsers resolve differently: the digest one verifier reads must be the digest every verifier reads)."""
    try:
        doc = strict_json(payload, "cosign payload")
        critical = doc["critical"]
        if critical.get("type") != COSIGN_TYPE:
            return None
        return str(critical["image"]["docker-manifest-digest"])
    except (IntegrityError, KeyError, TypeError, AttributeError):
        return None


def verify_cosign(
    signatures: Sequence[AttachedSignature], manifest_digest: str, keys: Sequence[str]
) -> CosignOutcome:
    """Check every cosign signature against every trusted key; the first full match wins."""
    loaded: list[ec.EllipticCurvePublicKey] = []
    problems: list[str] = []
    for k in keys:
        try:
            loaded.append(load_public_key(k))
        except IntegrityError as exc:
            problems.append(str(exc))
    for sig in signatures:
        if sig.kind != "cosign":
            continue
        named = _payload_digest(sig.payload)
        if named is None:
            problems.append(f"{sig.where}: not a cosign simple-signing payload")
            continue
        for key in loaded:
            try:
                key.verify(sig.signature, sig.payload, ec.ECDSA(curve_hash(key)))
            except InvalidSignature:
                problems.append(f"{sig.where}: signature does not verify with key {key_hint(key)[:16]}")
                continue
            if named != manifest_digest:
                problems.append(
                    f"{sig.where}: signed payload names {named}, not the scanned manifest {manifest_digest}"
                )
                continue
            return CosignOutcome(f"cosign key {key_hint(key)[:16]}", tuple(problems))
    return CosignOutcome(None, tuple(problems) or ("no cosign signature to verify",))
