"""Cosign key signatures of OCI artifacts (sha256-<hex>.sig tag), made in the test with `cryptography` in the
cosign format and pushed to the Debian docker-registry on 127.0.0.1; verified by scan and pull."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from scanner.cli import app

from .conftest import safetensors_bytes

PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"


def _key(tmp_path: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / f"{name}.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


def _payload(ref: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": ref},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def _publish(
    registry, repo: str, key: ec.EllipticCurvePrivateKey, *, signed_digest: str | None = None
) -> str:
    digest = registry.artifact(
        repo,
        "v1",
        [
            registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="model.safetensors"
            )
        ],
    )
    payload = _payload(f"{registry.host}/{repo}", signed_digest or digest)
    sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    registry.artifact(
        repo,
        f"sha256-{digest[7:]}.sig",
        [
            registry.descriptor(
                repo,
                payload,
                PAYLOAD_TYPE,
                **{"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode()},
            )
        ],
    )
    return digest


def _scan(registry, repo: str, *args: str):
    res = CliRunner().invoke(
        app, ["scan", f"oci://{registry.host}/{repo}:v1", "--insecure", "-f", "json", *args]
    )
    return res, (json.loads(res.stdout) if res.stdout.strip().startswith("{") else {})


def test_trusted_key_verifies_every_layer(registry, tmp_path: Path) -> None:
    key, pub = _key(tmp_path, "team")
    _publish(registry, "cosign/ok", key)
    res, doc = _scan(registry, "cosign/ok", "--key", str(pub))
    assert res.exit_code == 0, res.output
    model = next(f for f in doc["files"] if f["path"].endswith("model.safetensors"))
    assert model["signature"] == "verified" and model["signer"].startswith("cosign key ")


@pytest.mark.parametrize("case", ["wrong-key", "other-manifest"])
def test_bad_cosign_signature_blocks(registry, tmp_path: Path, case: str) -> None:
    key, pub = _key(tmp_path, "team")
    other, other_pub = _key(tmp_path, "mallory")
    repo = f"cosign/{case}"
    _publish(
        registry,
        repo,
        other if case == "wrong-key" else key,
        signed_digest="sha256:" + "0" * 64 if case == "other-manifest" else None,
    )
    res, doc = _scan(registry, repo, "--key", str(pub))
    assert res.exit_code == 1, res.output
    bad = [x for f in doc["files"] for x in f["findings"] if x["rule_id"] == "SIGNATURE-INVALID"]
    assert bad and (
        "does not verify" in bad[0]["message"]
        if case == "wrong-key"
        else "names sha256:000" in bad[0]["message"]
    )


def test_policy_requiring_signatures_blocks_an_unsigned_artifact(registry, tmp_path: Path) -> None:
    key, pub = _key(tmp_path, "team")
    registry.artifact(
        "cosign/unsigned",
        "v1",
        [
            registry.descriptor(
                "cosign/unsigned", safetensors_bytes(), "application/octet-stream", title="m.safetensors"
            )
        ],
    )
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nname: p\nblock_severity: high\nsignatures:\n  required: true\n  trust:\n"
        f"    - sources: ['oci://*']\n      keys: ['{pub}']\n"
    )
    res, _ = _scan(registry, "cosign/unsigned", "--policy", str(policy))
    assert res.exit_code == 1, res.output
    _publish(registry, "cosign/signed-policy", key)
    res, _ = _scan(registry, "cosign/signed-policy", "--policy", str(policy))
    assert res.exit_code == 0, res.output


def test_pull_verifies_cosign_before_installing(registry, tmp_path: Path) -> None:
    key, pub = _key(tmp_path, "team")
    _, wrong = _key(tmp_path, "other")
    _publish(registry, "cosign/pull", key)
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            f"oci://{registry.host}/cosign/pull:v1",
            "--insecure",
            "--to",
            str(dest),
            "--key",
            str(wrong),
        ],
    )
    assert res.exit_code == 1, res.output
    assert not dest.exists() or not any(dest.rglob("*.safetensors"))
    res = CliRunner().invoke(
        app,
        ["pull", f"oci://{registry.host}/cosign/pull:v1", "--insecure", "--to", str(dest), "--key", str(pub)],
    )
    assert res.exit_code == 0, res.output
    assert any(dest.rglob("model.safetensors"))
