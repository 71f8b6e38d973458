"""X.509 chain validation for certificate-mode model signatures, with ``cryptography`` only.

Semantics follow model-signing 1.1.1 (which uses an OpenSSL store):
- trust anchors are only the certificates the user supplies (``--chain``); certificates carried in
  the bundle after the leaf are untrusted intermediates;
- the chain is validated *at the leaf's notBefore*, so an expired leaf still verifies (there is no
  transparency-log timestamp to prove when it signed). We report expiry as a warning instead;
- the leaf must allow signing: KeyUsage digitalSignature, or ExtendedKeyUsage codeSigning; stricter than
  upstream, an ExtendedKeyUsage that lists purposes without codeSigning (a TLS certificate) is refused.
Differences: any supplied certificate is a trust anchor (OpenSSL wants a self-signed root), and CA
certificates are held to RFC 5280 basics (basicConstraints CA, keyCertSign when KeyUsage is present,
path length) instead of OpenSSL's defaults.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.keys import check_supported


def load_certificates(paths: Iterable[str | os.PathLike[str]]) -> list[x509.Certificate]:
    """All PEM certificates in the given files (a file may hold several)."""
    certs: list[x509.Certificate] = []
    for path in paths:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"{p}: cannot read certificate file: {exc.strerror or exc}") from None
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise IntegrityError(f"{p}: no readable PEM certificate in file") from None
        certs.extend(found)
    return certs


def load_der(data: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise IntegrityError(f"{what} is not a valid DER certificate") from None


def describe(cert: x509.Certificate) -> str:
    """Subject as RFC 4514 text; falls back to the CN-less serial so the signer is always named."""
    text = cert.subject.rfc4514_string()
    return text or f"serial {cert.serial_number:x}"


def san_values(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(getattr(name, "value", name)) for name in san]


def check_signing_usage(cert: x509.Certificate) -> None:
    """model-signing's rule (KeyUsage digitalSignature OR ExtendedKeyUsage codeSigning), plus RFC 5280's:
    a certificate whose ExtendedKeyUsage lists purposes may be used for those only, so a TLS server or
    client certificate from the same CA (digitalSignature, serverAuth) is not a model signer."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None:
        if ExtendedKeyUsageOID.CODE_SIGNING in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
            return
        raise VerificationFailed(
            f"signing certificate '{describe(cert)}' may not be used for signing: its ExtendedKeyUsage "
            "does not include codeSigning"
        )
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return
    except x509.ExtensionNotFound:
        pass
    raise VerificationFailed(
        f"signing certificate '{describe(cert)}' may not be used for signing "
        "(needs KeyUsage digitalSignature or ExtendedKeyUsage codeSigning)"
    )


def _ca_basic_constraints(policy: object, cert: x509.Certificate, ext: x509.BasicConstraints) -> None:
    if not ext.ca:
        raise ValueError("basicConstraints says this is not a CA")


def _ca_key_usage(policy: object, cert: x509.Certificate, ext: x509.KeyUsage | None) -> None:
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("KeyUsage lacks keyCertSign")


def validate_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: dt.datetime | None = None,
) -> list[x509.Certificate]:
    """Path-validate ``leaf`` to one of ``anchors`` at time ``at`` (default: leaf notBefore)."""
    try:
        from cryptography.x509.verification import (
            Criticality,
            ExtensionPolicy,
            PolicyBuilder,
            Store,
            VerificationError,
        )
    except ImportError:  # pragma: no cover - depends on the installed cryptography
        raise IntegrityError("certificate verification needs cryptography >= 45") from None
    if not anchors:
        raise IntegrityError("certificate verification needs at least one trust anchor (--chain)")
    when = at or leaf.not_valid_before_utc
    ca_policy = (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _ca_basic_constraints)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(when)
        .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, list(intermediates)).chain)
    except VerificationError as exc:
        raise VerificationFailed(
            f"signing certificate '{describe(leaf)}' does not chain to a trusted certificate "
            f"at {when.isoformat()}: {exc}"
        ) from None


def leaf_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    check_supported(key, f"signing certificate '{describe(cert)}'")
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key
