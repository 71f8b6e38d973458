"""EC key loading and the two key facts model-signing depends on: the curve's hash and the key hint.

Only ECDSA on P-256/P-384/P-521 is accepted, as upstream does for key and certificate modes; anything
else is refused with a message that names the file and the key type. Messages never contain key bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from scanner.integrity.errors import IntegrityError

_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def _describe(key: object) -> str:
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"RSA-{key.key_size}"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return "Ed448"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return f"EC {key.curve.name}"
    return type(key).__name__


def check_supported(key: object, source: str) -> None:
    """Raise unless ``key`` is an EC key on a curve model-signing can use."""
    if (
        isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey))
        and key.curve.name in _CURVE_HASH
    ):
        return
    raise IntegrityError(
        f"{source}: unsupported key type {_describe(key)}; model signatures use ECDSA keys on P-256, P-384 or P-521"
    )


def curve_hash(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> hashes.HashAlgorithm:
    """ECDSA digest by curve size (P-256 -> SHA-256, P-384 -> SHA-384, P-521 -> SHA-512)."""
    check_supported(key, "key")
    return _CURVE_HASH[key.curve.name]()


def key_hint(public_key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the PEM SubjectPublicKeyInfo *text*, computed from the parsed key (not file bytes)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(f"{p}: {what} file not found") from None
    except OSError as exc:
        raise IntegrityError(f"{p}: cannot read {what}: {exc.strerror or exc}") from None


def load_private_key(
    path: str | os.PathLike[str], password: bytes | None = None
) -> ec.EllipticCurvePrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        if password is None:
            raise IntegrityError(f"{path}: private key is encrypted and no password was given") from None
        raise IntegrityError(f"{path}: a password was given but the private key is not encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        if b"PUBLIC KEY" in data or b"CERTIFICATE" in data:
            raise IntegrityError(
                f"{path}: expected a PEM private key, found a public key or certificate"
            ) from None
        raise IntegrityError(f"{path}: not a readable PEM private key (or wrong password)") from None
    check_supported(key, str(path))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_public_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        if b"PRIVATE KEY" in data:
            raise IntegrityError(f"{path}: expected a PEM public key, found a private key") from None
        raise IntegrityError(f"{path}: not a readable PEM public key") from None
    check_supported(key, str(path))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key
