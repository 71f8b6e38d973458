"""Sigstore keyless verification of OMS bundles (Fulcio certificate + Rekor entry), with sigstore-python.

model-signing's default method signs with a short-lived Fulcio certificate for an OIDC identity and
records the signature in Rekor. sigstore-python (the library model-signing itself uses) checks the
certificate chain to the Fulcio roots, the log entry's inclusion proof / signed timestamp and the DSSE
signature; it verifies offline against the public-good trusted root that ships in its wheel, or a
``--trust-config`` for a private instance. The identity, issuer and validity-at-log-time checks run
first here so that each failure says which one it is.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ObjectIdentifier

from scanner.integrity.bundle import strict_json
from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.trust import KeylessTrust, keyless_trust_entries  # noqa: F401 - re-exported

_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw UTF-8 bytes
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String


@dataclass(frozen=True)
class KeylessSigner:
    identity: str
    issuer: str
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    log_time: dt.datetime


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded (v2 extension preferred, v1 as fallback)."""
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            raw = cert.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]
        except x509.ExtensionNotFound:
            continue
        if der:  # UTF8String: tag 0x0c, short or long length form
            if len(raw) < 2 or raw[0] != 0x0C:
                continue
            n, body = raw[1], raw[2:]
            if n & 0x80:
                k = n & 0x7F
                n, body = int.from_bytes(body[:k], "big"), body[k:]
            return body[:n].decode("utf-8", "replace")
        return bytes(raw).decode("utf-8", "replace")
    return None


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """SAN values Fulcio binds the identity to: e-mail addresses and URIs (workload identities)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *san.get_values_for_type(x509.RFC822Name),
        *san.get_values_for_type(x509.UniformResourceIdentifier),
    ]


def _sigstore() -> Any:
    try:
        import sigstore.models as models
        from sigstore.errors import Error as SigstoreError
        from sigstore.verify import Verifier, policy
    except ImportError:
        raise IntegrityError(
            "Sigstore keyless verification needs sigstore-python: pip install 'modelward[sigstore]'"
        ) from None
    logging.getLogger("sigstore").setLevel(logging.ERROR)  # "offline mode" notices are not ours to print
    return models, Verifier, policy, SigstoreError


def _trusted_root(models: Any, trust: KeylessTrust) -> Any:
    try:
        if trust.trust_config is not None:
            return models.ClientTrustConfig.from_json(Path(trust.trust_config).read_text()).trusted_root
        return models.ClientTrustConfig.production(offline=True).trusted_root
    except OSError as exc:
        raise IntegrityError(f"{trust.trust_config}: cannot read trust config: {exc.strerror}") from None
    except Exception as exc:  # sigstore raises several types for a malformed or unavailable root
        raise IntegrityError(f"Sigstore trusted root unavailable offline: {exc}") from None


def verify_keyless(
    raw_bundle: bytes, trust: KeylessTrust, source: str = "signature"
) -> tuple[KeylessSigner, bytes]:
    """Authenticate a keyless bundle; return the signer and the exact signed in-toto payload."""
    models, verifier_cls, policy, sigstore_error = _sigstore()
    try:
        bundle = models.Bundle.from_json(raw_bundle)
    except Exception as exc:  # InvalidBundle, ValueError, protobuf/JSON errors
        raise IntegrityError(f"{source}: not a usable Sigstore bundle: {_one_line(exc)}") from None
    cert: x509.Certificate = bundle.signing_certificate
    identities, issuer = certificate_identities(cert), certificate_issuer(cert)
    if issuer != trust.issuer:
        raise VerificationFailed(
            f"wrong issuer: the certificate was issued for {issuer!r}, expected {trust.issuer!r}"
        )
    if trust.identity is not None and trust.identity not in identities:
        raise VerificationFailed(
            f"wrong identity: the certificate is for {', '.join(identities) or 'no identity'}, "
            f"expected {trust.identity}"
        )
    if trust.identity_regex is not None and not any(
        re.fullmatch(trust.identity_regex, i) for i in identities
    ):
        raise VerificationFailed(
            f"wrong identity: the certificate is for {', '.join(identities) or 'no identity'}, "
            f"which does not match /{trust.identity_regex}/"
        )
    log_time = _integrated_time(raw_bundle, source)
    if not cert.not_valid_before_utc <= log_time <= cert.not_valid_after_utc:
        raise VerificationFailed(
            f"certificate not valid at the log entry's time {log_time.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})"
        )
    root = _trusted_root(models, trust)
    ident = (
        policy.Identity(identity=trust.identity, issuer=trust.issuer)
        if trust.identity is not None
        else policy.OIDCIssuer(trust.issuer)
    )
    try:
        payload_type, payload = verifier_cls(trusted_root=root).verify_dsse(bundle=bundle, policy=ident)
    except sigstore_error as exc:
        raise VerificationFailed(_explain(exc)) from None
    if payload_type != "application/vnd.in-toto+json":
        raise IntegrityError(f"{source}: DSSE payload type {payload_type!r} is not an in-toto statement")
    signer = KeylessSigner(
        identity=identities[0] if identities else "",
        issuer=issuer or "",
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        log_time=log_time,
    )
    return signer, bytes(payload)


def _integrated_time(raw_bundle: bytes, source: str) -> dt.datetime:
    """When Rekor logged the entry: the moment the short-lived certificate must have been valid."""
    doc = strict_json(raw_bundle, source)
    entries = (doc.get("verificationMaterial") or {}).get("tlogEntries") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise IntegrityError(
            f"{source}: the bundle has no transparency log entry (tlogEntries): it cannot be verified offline"
        )
    try:
        return dt.datetime.fromtimestamp(int(entries[0]["integratedTime"]), dt.timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        raise IntegrityError(f"{source}: tlogEntries[0].integratedTime is missing or not a time") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _explain(exc: BaseException) -> str:
    """sigstore's reason, prefixed with which part of the evidence failed."""
    text = _one_line(exc)
    low = text.lower()
    if (
        "log entry" in low
        or "inclusion" in low
        or "checkpoint" in low
        or "signed entry timestamp" in low
        or "tlog" in low
        or "set" in low.split()
    ):
        return f"transparency log entry does not match the bundle: {text}"
    if "certificate" in low or "chain" in low or "sct" in low:
        return f"signing certificate does not chain to the trusted Fulcio roots: {text}"
    if "signature" in low:
        return f"signature does not verify: the payload was altered or another key signed it ({text})"
    return f"Sigstore verification failed: {text}"
