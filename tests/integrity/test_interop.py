"""Both directions against the real PyPI model-signing 1.1.1 (CLI and API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.integrity.bundle import parse_bundle
from scanner.integrity.sign import sign_model
from scanner.integrity.verify import verify_model

from .conftest import KeyPair, Pki, run_model_signing

pytestmark = pytest.mark.slow

ms_signing = pytest.importorskip(
    "model_signing.signing", reason="model-signing==1.1.1 (+ pyopenssl) not installed"
)
ms_hashing = pytest.importorskip("model_signing.hashing")
ms_verifying = pytest.importorskip("model_signing.verifying")
pytest.importorskip("OpenSSL", reason="model-signing 1.1.1 needs pyopenssl at import time")


def _tamper(model: Path) -> None:
    (model / "a.bin").write_bytes(b"tampered")
    (model / "config.json").unlink()
    (model / "extra.pkl").write_bytes(b"\x80\x04N.")


def _ok(proc) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "succeeded" in proc.stdout + proc.stderr


@pytest.mark.parametrize("curve", ["p256", "p384", "p521"])
def test_upstream_cli_key_signature_verifies_here(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], curve: str
) -> None:
    kp = make_key(curve)
    sig = model_dir / "model.sig"
    _ok(run_model_signing("sign", "key", model_dir, "--private_key", kp.private, "--signature", sig))
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok, result.problems()
    assert set(result.files) == {
        "a/z.bin",
        "a.bin",
        "config.json",
        "empty.txt",
        "sub/deeper/weights.safetensors",
    }

    _tamper(model_dir)
    result = verify_model(model_dir, sig, public_key=kp.public)
    assert (result.changed, result.missing, result.extra) == (["a.bin"], ["config.json"], ["extra.pkl"])
    assert (
        run_model_signing(
            "verify", "key", model_dir, "--signature", sig, "--public_key", kp.public
        ).returncode
        != 0
    )


def test_our_key_signature_verifies_upstream(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key("p384")
    sig = model_dir / "model.sig"
    sign_model(model_dir, kp.private, sig)
    _ok(run_model_signing("verify", "key", model_dir, "--signature", sig, "--public_key", kp.public))
    _tamper(model_dir)
    proc = run_model_signing("verify", "key", model_dir, "--signature", sig, "--public_key", kp.public)
    assert proc.returncode != 0
    for name in ("a.bin", "config.json", "extra.pkl"):
        assert name in proc.stderr


def test_ignore_unsigned_files_agrees_with_upstream(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "s.sig"
    sign_model(model_dir, kp.private, sig)
    (model_dir / "later.txt").write_text("added after signing")
    args = ("verify", "key", model_dir, "--signature", sig, "--public_key", kp.public)
    assert run_model_signing(*args).returncode != 0
    _ok(run_model_signing(*args, "--ignore_unsigned_files"))
    assert verify_model(model_dir, sig, public_key=kp.public, ignore_unsigned_files=True).ok
    assert not verify_model(model_dir, sig, public_key=kp.public).ok


def test_certificate_mode_both_directions(
    model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki]
) -> None:
    pki = make_pki()
    ours = tmp_path / "ours.sig"
    sign_model(model_dir, pki.leaf_key.private, ours, certificate=pki.leaf_pem, chain=[pki.ca_pem])
    _ok(
        run_model_signing(
            "verify", "certificate", model_dir, "--signature", ours, "--certificate_chain", pki.ca_pem
        )
    )

    theirs = tmp_path / "theirs.sig"
    _ok(
        run_model_signing(
            "sign",
            "certificate",
            model_dir,
            "--private_key",
            pki.leaf_key.private,
            "--signing_certificate",
            pki.leaf_pem,
            "--certificate_chain",
            pki.ca_pem,
            "--signature",
            theirs,
        )
    )
    result = verify_model(model_dir, theirs, trust_anchors=[pki.ca_pem])
    assert result.ok and result.signer.subject == "CN=pki signer"

    _tamper(model_dir)
    assert not verify_model(model_dir, theirs, trust_anchors=[pki.ca_pem]).ok
    proc = run_model_signing(
        "verify", "certificate", model_dir, "--signature", ours, "--certificate_chain", pki.ca_pem
    )
    assert proc.returncode != 0


def test_single_file_model_both_directions(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    target = model_dir / "sub" / "deeper" / "weights.safetensors"
    theirs, ours = tmp_path / "theirs.sig", tmp_path / "ours.sig"
    _ok(run_model_signing("sign", "key", target, "--private_key", kp.private, "--signature", theirs))
    assert verify_model(target, theirs, public_key=kp.public).ok
    sign_model(target, kp.private, ours)
    _ok(run_model_signing("verify", "key", target, "--signature", ours, "--public_key", kp.public))


@pytest.mark.parametrize(("algorithm", "shard_size"), [("sha256", 1000), ("blake2", 300), ("blake2", None)])
def test_upstream_api_shards_and_blake2_verify_here(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], algorithm: str, shard_size: int | None
) -> None:
    kp = make_key()
    sig = tmp_path / "api.sig"
    hcfg = ms_hashing.Config()
    if shard_size:
        hcfg = hcfg.use_shard_serialization(shard_size=shard_size, hashing_algorithm=algorithm)
    else:
        hcfg = hcfg.use_file_serialization(hashing_algorithm=algorithm)
    ms_signing.Config().use_elliptic_key_signer(private_key=kp.private).set_hashing_config(hcfg).sign(
        model_dir, sig
    )
    serialization = json.loads(parse_bundle(sig.read_bytes()).payload)["predicate"]["serialization"]
    if shard_size:
        assert isinstance(serialization["shard_size"], float)  # the upstream quirk we must coerce

    result = verify_model(model_dir, sig, public_key=kp.public)
    assert result.ok, result.problems()
    assert result.serialization.hash_type == ("sha256" if algorithm == "sha256" else "blake2b")
    assert result.serialization.shard_size == shard_size

    (model_dir / "a.bin").write_bytes(b"A" * 999 + b"B")
    assert verify_model(model_dir, sig, public_key=kp.public).changed == ["a.bin"]


def test_our_shards_verify_with_upstream_api(
    model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "ours.sig"
    sign_model(model_dir, kp.private, sig, method="shards", shard_size=512)
    verifier = ms_verifying.Config().use_elliptic_key_verifier(public_key=kp.public)
    verifier.set_hashing_config(ms_hashing.Config().use_shard_serialization(shard_size=512))
    verifier.verify(model_dir, sig)  # raises on failure
    (model_dir / "a.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="a.bin"):
        verifier.verify(model_dir, sig)
