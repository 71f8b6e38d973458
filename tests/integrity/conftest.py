"""Fixtures for integrity tests: EC keys, a small CA, a model tree, and the real model_signing CLI."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CURVES = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}
NOW = dt.datetime.now(dt.timezone.utc)


@dataclass
class KeyPair:
    private: Path
    public: Path
    key: ec.EllipticCurvePrivateKey


def write_key(directory: Path, name: str, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    priv = directory / f"{name}.pem"
    pub = directory / f"{name}.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(priv, pub, key)


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[..., KeyPair]:
    def _make(curve: str = "p256", name: str | None = None) -> KeyPair:
        return write_key(tmp_path, name or f"key-{curve}", ec.generate_private_key(CURVES[curve]()))

    return _make


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Pki:
    ca_pem: Path
    leaf_pem: Path
    leaf_key: KeyPair
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate


@pytest.fixture
def make_pki(tmp_path: Path) -> Callable[..., Pki]:
    """A self-signed EC root and one leaf; knobs for usage and validity to test refusals."""

    def _make(
        *,
        tag: str = "pki",
        digital_signature: bool = True,
        code_signing: bool = True,
        key_usage: bool = True,
        leaf_not_before: dt.datetime | None = None,
        leaf_not_after: dt.datetime | None = None,
        leaf_curve: str = "p256",
        server_auth: bool = True,
    ) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{tag} test root"))
            .issuer_name(_name(f"{tag} test root"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=3650))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA384())
        )
        leaf_kp = write_key(tmp_path, f"{tag}-leaf-key", ec.generate_private_key(CURVES[leaf_curve]()))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{tag} signer"))
            .issuer_name(ca.subject)
            .public_key(leaf_kp.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(leaf_not_before or NOW - dt.timedelta(days=1))
            .not_valid_after(leaf_not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if key_usage:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature, False, not digital_signature, False, False, False, False, False, False
                ),
                critical=True,
            )
        if code_signing:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
        elif server_auth:  # without code signing, a TLS certificate unless asked for no EKU at all
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        leaf = builder.sign(ca_key, hashes.SHA384())
        ca_pem = tmp_path / f"{tag}-ca.pem"
        leaf_pem = tmp_path / f"{tag}-leaf.pem"
        ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        return Pki(ca_pem, leaf_pem, leaf_kp, ca_key, ca)

    return _make


def build_model(root: Path) -> Path:
    """A small model tree exercising ordering (a/z.bin vs a.bin), nesting, empty files and git paths."""
    model = root / "model"
    (model / "a").mkdir(parents=True)
    (model / "sub" / "deeper").mkdir(parents=True)
    (model / ".git").mkdir()
    (model / "a.bin").write_bytes(b"A" * 1000)
    (model / "a" / "z.bin").write_bytes(b"zzz")
    (model / "sub" / "deeper" / "weights.safetensors").write_bytes(bytes(range(256)) * 40)
    (model / "config.json").write_text('{"arch": "tiny"}')
    (model / "empty.txt").write_bytes(b"")
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")
    return model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return build_model(tmp_path)


def run_model_signing(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real upstream CLI (``python -m model_signing``), as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "model_signing", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
