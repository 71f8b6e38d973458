from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from scanner.integrity.bundle import build_bundle, pae, parse_bundle
from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.keys import curve_hash, key_hint
from scanner.integrity.sign import sign_model
from scanner.integrity.verify import verify_model

from .conftest import NOW, KeyPair, Pki


def _resign(sig: Path, key: ec.EllipticCurvePrivateKey, statement: dict, **material: object) -> None:
    """Write a bundle over an arbitrary statement, validly signed: tests the statement checks."""
    payload = json.dumps(statement).encode()
    signature = key.sign(pae(payload), ec.ECDSA(curve_hash(key)))
    sig.write_text(build_bundle(payload, signature, key_hint=key_hint(key.public_key()), **material))  # type: ignore[arg-type]


def _statement(sig: Path) -> dict:
    return json.loads(parse_bundle(sig.read_bytes()).payload)


@pytest.mark.parametrize("curve", ["p256", "p384", "p521"])
def test_key_round_trip_all_curves(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], curve: str
) -> None:
    kp = make_key(curve)
    sig = tmp_path / "model.sig"
    signed = sign_model(model_dir, kp.private, sig)
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok
    assert result.signer.kind == "key" and result.signer.key_hint == key_hint(kp.key.public_key())
    assert result.root_digest == signed.root_digest
    assert result.covered("a.bin") and result.covered("sub/deeper/weights.safetensors")
    assert result.verified_digests()["a.bin"] == ("sha256", hashlib.sha256(b"A" * 1000).hexdigest())
    assert not result.covered(".git/HEAD")


def test_signature_inside_model_is_ignored(model_dir: Path, make_key: Callable[..., KeyPair]) -> None:
    kp = make_key()
    sig = model_dir / "model.sig"
    signed = sign_model(model_dir, kp.private, sig)
    assert "model.sig" in signed.manifest.serialization.ignore_paths
    assert "model.sig" not in signed.manifest.by_name()
    assert verify_model(model_dir, sig, public_key=kp.public).ok


def test_tampered_extra_missing_are_all_named(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    (model_dir / "a.bin").write_bytes(b"B" * 1000)
    (model_dir / "config.json").unlink()
    (model_dir / "sub" / "evil.py").write_text("import os")
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert not result.ok
    assert result.changed == ["a.bin"]
    assert result.missing == ["config.json"]
    assert result.extra == ["sub/evil.py"]
    assert result.files["a.bin"].digest is None and not result.covered("a.bin")
    assert result.covered("a/z.bin")
    text = "\n".join(result.problems())
    assert "changed: a.bin" in text and "missing: config.json" in text and "sub/evil.py" in text


def test_ignore_unsigned_files(model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    (model_dir / "new.bin").write_bytes(b"unsigned")
    assert verify_model(model_dir, sig, public_key=kp.public).extra == ["new.bin"]
    result = verify_model(model_dir, sig, public_key=kp.public, ignore_unsigned_files=True)
    assert result.ok and "new.bin" not in result.files
    (model_dir / "a.bin").write_bytes(b"changed")
    (model_dir / "config.json").unlink()
    result = verify_model(model_dir, sig, public_key=kp.public, ignore_unsigned_files=True)
    assert result.changed == ["a.bin"] and result.missing == ["config.json"]


def test_user_and_signature_ignore_paths_are_added(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig, ignore_paths=["config.json"])
    (model_dir / "config.json").write_text("changed but unprotected")
    (model_dir / "notes.md").write_text("local notes")
    result = verify_model(model_dir, sig, public_key=kp.public, ignore_paths=["notes.md"])
    assert result.ok
    assert any("'config.json' unprotected" in w for w in result.warnings)
    assert "config.json" in result.ignored_paths and "notes.md" in result.ignored_paths


def test_shards_and_blake2b_round_trip_and_size_change(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key("p384")
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig, method="shards", algorithm="blake2b", shard_size=256)
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok and result.serialization.shard_size == 256
    assert len(result.files["a.bin"].resources) == 4
    with open(model_dir / "a.bin", "ab") as fh:
        fh.write(b"!")
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.changed == ["a.bin"]
    assert "shards differ" in result.problems()[0]


def test_wrong_key_hint_mismatch(model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]) -> None:
    kp, other = make_key(name="one"), make_key(name="two")
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    with pytest.raises(VerificationFailed, match="key mismatch"):
        verify_model(model_dir, sig, public_key=other.public)
    # without the hint the signature check itself must catch the wrong key
    doc = json.loads(sig.read_text())
    del doc["verificationMaterial"]["publicKey"]["hint"]
    sig.write_text(json.dumps(doc))
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_model(model_dir, sig, public_key=other.public)
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok and any("no key hint" in w for w in result.warnings)


def test_tampered_payload_fails_signature(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    doc = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"] = statement["predicate"]["resources"][:1]
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(doc))
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_model(model_dir, sig, public_key=kp.public)


def test_validly_signed_but_inconsistent_root_digest(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    statement = _statement(sig)
    statement["subject"][0]["digest"]["sha256"] = "00" * 32
    _resign(sig, kp.key, statement)
    with pytest.raises(VerificationFailed, match="inconsistent"):
        verify_model(model_dir, sig, public_key=kp.public)
    statement["subject"].append(dict(statement["subject"][0]))
    _resign(sig, kp.key, statement)
    with pytest.raises(IntegrityError, match="exactly one subject"):
        verify_model(model_dir, sig, public_key=kp.public)


def test_legacy_v01_predicate_is_accepted(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "legacy.sig"
    files = ["a/z.bin", "a.bin", "config.json", "empty.txt", "sub/deeper/weights.safetensors"]
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": f,
                "digest": {"sha256": hashlib.sha256((model_dir / f).read_bytes()).hexdigest()},
                "annotations": {"actual_hash_algorithm": "file-sha256"},
            }
            for f in files
        ],
        "predicateType": "https://model_signing/Digests/v0.1",
        "predicate": {"unused": "Unused, just passed due to API requirements"},
    }
    _resign(sig, kp.key, statement)
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok and result.legacy
    (model_dir / "a.bin").write_bytes(b"x")
    assert verify_model(model_dir, sig, public_key=kp.public).changed == ["a.bin"]


def test_certificate_round_trip(model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki]) -> None:
    pki = make_pki(leaf_curve="p521")
    sig = tmp_path / "cert.sig"
    sign_model(model_dir, pki.leaf_key.private, sig, certificate=pki.leaf_pem, chain=[pki.ca_pem])
    bundle = json.loads(sig.read_text())
    assert len(bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]) == 2
    result = verify_model(model_dir, sig, trust_anchors=[pki.ca_pem])
    assert result.ok
    assert result.signer.kind == "certificate" and result.signer.subject == "CN=pki signer"
    assert result.signer.chain == ("CN=pki signer", "CN=pki test root")
    # the signature file itself is fine, but a different CA must not be trusted
    other = make_pki(tag="other")
    with pytest.raises(VerificationFailed, match="does not chain"):
        verify_model(model_dir, sig, trust_anchors=[other.ca_pem])
    # a key-mode verify of a certificate signature works with the leaf's key and nothing else
    assert verify_model(model_dir, sig, public_key=pki.leaf_key.public).ok
    with pytest.raises(VerificationFailed, match="key mismatch"):
        verify_model(model_dir, sig, public_key=other.leaf_key.public)


def test_expired_leaf_still_verifies_like_upstream(
    model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki]
) -> None:
    """model-signing validates the chain at the leaf's notBefore: expiry alone is not a failure."""
    pki = make_pki(leaf_not_before=NOW - dt.timedelta(days=30), leaf_not_after=NOW - dt.timedelta(days=1))
    sig = tmp_path / "cert.sig"
    sign_model(model_dir, pki.leaf_key.private, sig, certificate=pki.leaf_pem)
    result = verify_model(model_dir, sig, trust_anchors=[pki.ca_pem])
    assert result.ok
    assert any("expired" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("usage", "ok"),
    [
        # a TLS certificate (digitalSignature, ExtendedKeyUsage serverAuth only) is not a model signer: upstream
        # accepts it, RFC 5280 limits it to the purposes its ExtendedKeyUsage lists
        ({"digital_signature": True, "code_signing": False}, False),
        ({"digital_signature": True, "code_signing": False, "server_auth": False}, True),
        ({"digital_signature": False, "code_signing": True}, True),
        ({"key_usage": False, "code_signing": True}, True),
        ({"digital_signature": False, "code_signing": False}, False),
        ({"key_usage": False, "code_signing": False}, False),
    ],
)
def test_certificate_usage_rules(
    model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki], usage: dict, ok: bool
) -> None:
    pki = make_pki(**usage)
    sig = tmp_path / "cert.sig"
    if not ok:
        with pytest.raises(IntegrityError, match="may not be used for signing"):
            sign_model(model_dir, pki.leaf_key.private, sig, certificate=pki.leaf_pem, chain=[pki.ca_pem])
        # a signer that skips our check (e.g. upstream) still gets refused at verification
        from cryptography import x509

        leaf = x509.load_pem_x509_certificate(pki.leaf_pem.read_bytes())
        sign_model(model_dir, pki.leaf_key.private, sig)
        statement = _statement(sig)
        _resign(
            sig, pki.leaf_key.key, statement, certificates=[leaf.public_bytes(serialization.Encoding.DER)]
        )
        with pytest.raises(VerificationFailed, match="may not be used for signing"):
            verify_model(model_dir, sig, trust_anchors=[pki.ca_pem])
    else:
        sign_model(model_dir, pki.leaf_key.private, sig, certificate=pki.leaf_pem, chain=[pki.ca_pem])
        assert verify_model(model_dir, sig, trust_anchors=[pki.ca_pem]).ok


def test_certificate_must_match_key(
    model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki], make_key: Callable[..., KeyPair]
) -> None:
    pki = make_pki()
    with pytest.raises(IntegrityError, match="does not belong to the signing key"):
        sign_model(model_dir, make_key().private, tmp_path / "s.sig", certificate=pki.leaf_pem)


def test_key_signature_in_cert_mode_is_a_clear_error(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], make_pki: Callable[..., Pki]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    with pytest.raises(IntegrityError, match="not a certificate chain"):
        verify_model(model_dir, sig, trust_anchors=[make_pki().ca_pem])


def _write_private(path: Path, key: object) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )  # type: ignore[attr-defined]
    )
    return path


def test_rsa_ed25519_and_other_curves_are_refused(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    rsa_key = _write_private(
        tmp_path / "rsa.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    with pytest.raises(IntegrityError, match="unsupported key type RSA-2048"):
        sign_model(model_dir, rsa_key, tmp_path / "s.sig")
    ed = _write_private(tmp_path / "ed.pem", ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(IntegrityError, match="unsupported key type Ed25519"):
        sign_model(model_dir, ed, tmp_path / "s.sig")
    k1 = _write_private(tmp_path / "k1.pem", ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(IntegrityError, match="EC secp256k1"):
        sign_model(model_dir, k1, tmp_path / "s.sig")
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(IntegrityError, match="unsupported key type RSA"):
        verify_model(model_dir, sig, public_key=rsa_pub)
    with pytest.raises(IntegrityError, match="found a private key"):
        verify_model(model_dir, sig, public_key=kp.private)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda text, doc: "this is not json", "not valid JSON"),
        (lambda text, doc: text[: len(text) // 2], "not valid JSON"),
        (lambda text, doc: "", "not valid JSON"),
        (lambda text, doc: "[]", "not a JSON object"),
        (
            lambda text, doc: json.dumps(
                {**doc, "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2"}
            ),
            "mediaType",
        ),
        (
            lambda text, doc: json.dumps(
                {
                    **doc,
                    "dsseEnvelope": {
                        **doc["dsseEnvelope"],
                        "signatures": doc["dsseEnvelope"]["signatures"] * 2,
                    },
                }
            ),
            "2 signatures",
        ),
        (
            lambda text, doc: json.dumps({**doc, "dsseEnvelope": {**doc["dsseEnvelope"], "signatures": []}}),
            "no signatures",
        ),
        (
            lambda text, doc: json.dumps({**doc, "dsseEnvelope": {**doc["dsseEnvelope"], "payload": "%%%"}}),
            "not valid base64",
        ),
        (
            lambda text, doc: json.dumps(
                {**doc, "dsseEnvelope": {**doc["dsseEnvelope"], "payloadType": "text/plain"}}
            ),
            "payloadType",
        ),
        (
            lambda text, doc: text.replace('"mediaType"', '"mediaType": "x", "mediaType"', 1),
            "duplicate JSON key",
        ),
        (lambda text, doc: json.dumps({**doc, "verificationMaterial": {"tlogEntries": []}}), "no publicKey"),
    ],
)
def test_unusable_bundles_raise_one_clear_error(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], mutate: Callable, message: str
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    text = sig.read_text()
    sig.write_text(mutate(text, json.loads(text)))
    with pytest.raises(IntegrityError, match=message) as info:
        verify_model(model_dir, sig, public_key=kp.public)
    assert not isinstance(info.value, VerificationFailed)
    assert "\n" not in str(info.value)


def test_keyless_sigstore_bundle_is_named(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], make_pki: Callable[..., Pki]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    doc = json.loads(sig.read_text())
    doc["verificationMaterial"] = {
        "certificate": {"rawBytes": base64.b64encode(b"\x30\x00").decode()},
        "tlogEntries": [{}],
    }
    sig.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="keyless"):
        verify_model(model_dir, sig, trust_anchors=[make_pki().ca_pem])


def test_symlink_in_tree_at_verify(model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    os.symlink("/etc/hostname", model_dir / "sneaky")
    with pytest.raises(IntegrityError, match="sneaky: is a symbolic link"):
        verify_model(model_dir, sig, public_key=kp.public)


def test_single_file_model_round_trip(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "one.sig"
    sign_model(model_dir / "a.bin", kp.private, sig)
    result = verify_model(model_dir / "a.bin", sig, public_key=kp.public)
    assert result.ok and list(result.files) == ["."]
    (model_dir / "a.bin").write_bytes(b"other")
    assert verify_model(model_dir / "a.bin", sig, public_key=kp.public).changed == ["."]


def test_find_signature_beside_model(model_dir: Path, make_key: Callable[..., KeyPair]) -> None:
    from scanner.integrity.verify import find_signature

    assert find_signature(model_dir) is None
    sign_model(model_dir, make_key().private, model_dir / "model.sig")
    assert find_signature(model_dir) == model_dir / "model.sig"
    (model_dir.parent / "one.bin.sig").write_text("{}")
    (model_dir.parent / "one.bin").write_bytes(b"x")
    assert find_signature(model_dir.parent / "one.bin") == model_dir.parent / "one.bin.sig"
