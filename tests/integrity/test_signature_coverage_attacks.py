"""Red-team round on signature coverage and binding: a signature must vouch for the bytes that were judged.

Each test builds the attack with real keys and real files and checks it is refused: a signature that covers
nothing verifies nothing, files its ignore list hides are unsigned, a TLS certificate is not a model signer,
and a file that changes between verification and inspection is never reported as verified.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import scanner.integrity.verify as verify_mod
import scanner.pipeline as pipeline_mod
from scanner.integrity.bundle import build_bundle, pae
from scanner.integrity.errors import FileChangedError
from scanner.integrity.keys import curve_hash, key_hint
from scanner.integrity.sign import sign_model
from scanner.integrity.verify import verify_model
from tests.integrity.conftest import KeyPair, Pki

SAFE_JSON = b'{"hidden_size": 8}'


def _sign_statement(
    kp: KeyPair, resources: list[dict[str, str]], serialization: dict[str, Any], out: Path
) -> None:
    """A statement the trusted key really signed (e.g. for another, empty or fully ignored folder)."""
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": root}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": serialization, "resources": resources},
    }
    payload = json.dumps(statement).encode()
    sig = kp.key.sign(pae(payload), ec.ECDSA(curve_hash(kp.key)))
    out.write_text(build_bundle(payload, sig, key_hint=key_hint(kp.key.public_key())))


def _model(tmp_path: Path) -> Path:
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_bytes(SAFE_JSON)
    (m / "evil.pkl").write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    return m


FILES_SHA256 = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


@pytest.mark.parametrize(
    ("resources", "ignore_paths"),
    [
        ([], ["."]),  # ignores the whole model
        ([], ["config.json", "evil.pkl"]),  # ignores every file there is
        ([], []),  # a signature over an empty folder, replayed on a full one
    ],
    ids=["ignore-dot", "ignore-every-file", "empty-manifest"],
)
def test_a_signature_that_covers_no_file_verifies_nothing(
    cli, tmp_path: Path, make_key: Callable[..., KeyPair], resources, ignore_paths
) -> None:
    m = _model(tmp_path)
    kp = make_key()
    sig = tmp_path / "s.sig"
    _sign_statement(kp, resources, {**FILES_SHA256, "ignore_paths": ignore_paths}, sig)
    res = cli("verify", str(m), "--signature", str(sig), "--key", str(kp.public))
    assert res.exit_code == 1, res.output
    assert "Verification succeeded" not in res.stdout
    assert "covers no file" in res.stderr or "extra (not signed)" in res.stderr
    result = verify_model(m, sig, public_key=kp.public)
    assert not result.ok and result.covers_nothing


def test_files_hidden_by_the_signatures_ignore_paths_are_unsigned_in_a_scan(
    cli, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    m = tmp_path / "model"
    (m / "code").mkdir(parents=True)
    (m / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    kp = make_key()
    sign_model(m, kp.private, m / "model.sig", ignore_paths=["code", "ignore-me"])
    (m / "code" / "modeling_evil.py").write_text("import os\nos.getcwd()\n")  # added after signing
    (m / "ignore-me").write_text("print('hello')\n")
    res = cli("scan", "--format", "json", "--key", str(kp.public), str(m))
    doc = json.loads(res.stdout)
    files = {f["path"]: f for f in doc["files"]}
    for hidden in ("code/modeling_evil.py", "ignore-me"):
        assert files[hidden]["signature"] == "unsigned", files[hidden]
        assert "SIGNATURE-UNSIGNED-FILE" in {x["rule_id"] for x in files[hidden]["findings"]}
    assert files["model.safetensors"]["signature"] == "verified"
    assert doc["verdict"]["decision"] != "allow"


def _rewrite_after_verification(monkeypatch: pytest.MonkeyPatch, victim: Path, new: bytes) -> None:
    """Swap a file's bytes after the signature verified and before the scan reads it (same size)."""
    real = pipeline_mod.check_snapshot_signature

    def hooked(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)
        victim.write_bytes(new)
        return outcome

    monkeypatch.setattr(pipeline_mod, "check_snapshot_signature", hooked)


@pytest.mark.parametrize(
    ("method", "algorithm"),
    [("files", "sha256"), ("files", "blake2b"), ("shards", "sha256"), ("shards", "blake2b")],
)
def test_a_file_swapped_between_verification_and_inspection_is_never_verified(
    cli, tmp_path: Path, make_key: Callable[..., KeyPair], monkeypatch: pytest.MonkeyPatch, method, algorithm
) -> None:
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_bytes(SAFE_JSON)
    (m / "notes.txt").write_bytes(b"x" * 300)
    kp = make_key()
    sign_model(m, kp.private, m / "model.sig", method=method, algorithm=algorithm, shard_size=100)
    _rewrite_after_verification(monkeypatch, m / "config.json", b'{"hidden_size": 9}')
    res = cli("scan", "--format", "json", "--key", str(kp.public), str(m))
    doc = json.loads(res.stdout)
    files = {f["path"]: f for f in doc["files"]}
    assert files["config.json"]["signature"] != "verified"
    assert files["config.json"].get("signer") is None
    assert files["notes.txt"]["signature"] == "verified"
    assert files["notes.txt"]["sha256"] == hashlib.sha256(b"x" * 300).hexdigest()
    assert res.exit_code == 1 and doc["verdict"]["decision"] == "block"


def test_a_file_changed_after_it_was_hashed_fails_verification(
    tmp_path: Path, make_key: Callable[..., KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digests must be of the files the walk saw: a rewrite right after hashing is not 'verified'."""
    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_bytes(SAFE_JSON)
    kp = make_key()
    sign_model(m, kp.private, m / "model.sig")
    real = verify_mod.hash_model_files

    def hooked(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        (m / "config.json").write_bytes(b'{"hidden_size": 9}')
        return out

    monkeypatch.setattr(verify_mod, "hash_model_files", hooked)
    with pytest.raises(FileChangedError, match="config.json changed while it was verified"):
        verify_model(m, m / "model.sig", public_key=kp.public)


def test_a_tls_certificate_from_the_trusted_ca_is_not_a_model_signer(
    cli, model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyUsage digitalSignature + ExtendedKeyUsage serverAuth only: RFC 5280 limits it to TLS."""
    import scanner.integrity.sign as sign_mod

    tls = make_pki(tag="tls", digital_signature=True, code_signing=False)
    sig = tmp_path / "tls.sig"
    monkeypatch.setattr(sign_mod, "check_signing_usage", lambda cert: None)  # the attacker's own signer
    sign_model(model_dir, tls.leaf_key.private, sig, certificate=tls.leaf_pem, chain=[tls.ca_pem])
    monkeypatch.undo()
    res = cli("verify", str(model_dir), "--signature", str(sig), "--chain", str(tls.ca_pem))
    assert res.exit_code == 1
    assert "ExtendedKeyUsage does not include codeSigning" in res.stderr
    good = make_pki(tag="good", digital_signature=True, code_signing=True)
    sign_model(model_dir, good.leaf_key.private, sig, certificate=good.leaf_pem, chain=[good.ca_pem])
    res = cli("verify", str(model_dir), "--signature", str(sig), "--chain", str(good.ca_pem))
    assert res.exit_code == 0, res.output


def _cert(subject: str, issuer: Any, issuer_key: Any, key: Any, *, ca: bool, code_signing: bool) -> Any:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, ca, False, False, False), critical=True
        )
    )
    if code_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.mark.parametrize("intermediate_is_ca", [False, True])
def test_a_leaf_issued_by_an_end_entity_certificate_does_not_chain(
    tmp_path: Path, make_pki: Callable[..., Pki], intermediate_is_ca: bool
) -> None:
    """The trusted CA issued a plain signing certificate; its holder must not be able to mint signers."""
    from cryptography.hazmat.primitives import serialization

    from scanner.integrity.errors import VerificationFailed
    from scanner.integrity.manifest import compute_manifest
    from scanner.integrity.statement import build_statement

    pki = make_pki(tag="root")
    m = _model(tmp_path)
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = _cert(
        "team member", pki.ca_cert.subject, pki.ca_key, mid_key, ca=intermediate_is_ca, code_signing=True
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("minted signer", mid.subject, mid_key, leaf_key, ca=False, code_signing=True)
    payload = build_statement(compute_manifest(m))
    signature = leaf_key.sign(pae(payload), ec.ECDSA(curve_hash(leaf_key)))
    der = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, mid)]
    sig = tmp_path / "minted.sig"
    sig.write_text(build_bundle(payload, signature, certificates=der))
    if intermediate_is_ca:
        assert verify_model(m, sig, trust_anchors=[pki.ca_pem]).ok
    else:
        with pytest.raises(VerificationFailed, match="does not chain"):
            verify_model(m, sig, trust_anchors=[pki.ca_pem])


@pytest.mark.parametrize(
    "name",
    [
        "../model/config.json",
        "/etc/passwd",
        "config.json\x00.txt",
        "./config.json",
        "config.json/",
        "sub/../config.json",
        "CONFIG.json",
        "cafe\u0301.json",  # NFD twin of the NFC file on disk
        "config.json:0:18",  # a shard name in a files manifest
    ],
)
def test_a_manifest_name_that_only_resembles_the_file_never_verifies_it(
    tmp_path: Path, make_key: Callable[..., KeyPair], name: str
) -> None:
    from scanner.integrity.errors import IntegrityError

    m = tmp_path / "model"
    m.mkdir()
    (m / "config.json").write_bytes(SAFE_JSON)
    (m / "caf\u00e9.json").write_bytes(SAFE_JSON)
    kp = make_key()
    digest = hashlib.sha256(SAFE_JSON).hexdigest()
    real = "caf\u00e9.json" if name.startswith("cafe") else "config.json"
    other = "config.json" if real != "config.json" else "caf\u00e9.json"
    resources = [
        {"name": n, "algorithm": "sha256", "digest": digest} for n in sorted([name, other])
    ]  # the alias instead of the real name
    sig = tmp_path / "alias.sig"
    _sign_statement(kp, resources, FILES_SHA256, sig)
    try:
        result = verify_model(m, sig, public_key=kp.public)
    except IntegrityError:
        return  # refused outright
    assert not result.ok
    assert not result.covered(real)


@pytest.mark.parametrize(
    "bounds",
    [
        [(0, 100), (100, 200)],  # the tail is not covered
        [(0, 150), (150, 300)],  # another layout than shard_size says
        [(0, 100), (50, 150), (100, 200), (200, 300)],  # overlapping
        [(0, 100), (100, 200), (200, 300), (300, 400)],  # past the end
        [(0, 100), (200, 300)],  # a gap
        [(0, 300)],  # one range for the whole file
    ],
)
def test_shards_that_do_not_tile_the_file_exactly_never_verify(
    tmp_path: Path, make_key: Callable[..., KeyPair], bounds: list[tuple[int, int]]
) -> None:
    data = bytes(range(256)) + b"z" * 44  # 300 bytes
    m = tmp_path / "model"
    m.mkdir()
    (m / "w.bin").write_bytes(data)
    kp = make_key()
    resources = [
        {
            "name": f"w.bin:{a}:{b}",
            "algorithm": "sha256-sharded-100",
            "digest": hashlib.sha256(data[a:b]).hexdigest(),
        }
        for a, b in bounds
    ]
    sig = tmp_path / "shards.sig"
    _sign_statement(kp, resources, {**FILES_SHA256, "method": "shards", "shard_size": 100}, sig)
    result = verify_model(m, sig, public_key=kp.public)
    assert not result.ok and not result.covered("w.bin")


def test_a_cosign_payload_naming_two_digests_is_not_a_signature_of_either(
    make_key: Callable[..., KeyPair],
) -> None:
    """Duplicate keys: Python keeps the last digest, other verifiers the first; neither may be trusted."""
    from scanner.integrity.cosign import verify_cosign
    from scanner.sources.base import AttachedSignature

    kp = make_key()
    scanned, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    payload = (
        '{"critical": {"identity": {"docker-reference": "r/m"}, "image": {"docker-manifest-digest": "'
        + other
        + '", "docker-manifest-digest": "'
        + scanned
        + '"}, "type": "cosign container image signature"}, "optional": null}'
    ).encode()
    sig = AttachedSignature("cosign", payload, kp.key.sign(payload, ec.ECDSA(curve_hash(kp.key))), "tag")
    outcome = verify_cosign([sig], scanned, [str(kp.public)])
    assert outcome.signer is None
    clean = payload.replace(f'"docker-manifest-digest": "{other}", '.encode(), b"")
    good = AttachedSignature("cosign", clean, kp.key.sign(clean, ec.ECDSA(curve_hash(kp.key))), "tag")
    assert verify_cosign([good], scanned, [str(kp.public)]).signer is not None
