"""Sigstore keyless verification against real model-signing signatures (releases 0.3.1-1.1.0), offline."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from scanner.integrity.bundle import read_bundle
from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.keyless import KeylessTrust, verify_keyless
from scanner.integrity.statement import parse_statement
from scanner.integrity.verify import verify_model

pytest.importorskip("sigstore", reason="sigstore-python (modelward[sigstore]) not installed")

VECTORS = Path(__file__).parent / "vectors"
OMS = VECTORS / "oms-spec-v1.0" / "test-vectors" / "v1.0"
IDENTITY, ISSUER = "stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2"
TRUST = KeylessTrust(issuer=ISSUER, identity=IDENTITY)
RELEASES = ["v0.3.1-sigstore", "v1.0.0-sigstore", "v1.0.1-sigstore", "v1.1.0-sigstore"]


def _ignores(release: str) -> list[str]:
    return ["ignore-me"] if release >= "v1.0.1" else []


def _copy(release: str, tmp_path: Path) -> Path:
    dst = tmp_path / release
    shutil.copytree(VECTORS / release, dst)
    return dst


@pytest.mark.parametrize("release", RELEASES)
def test_every_release_verifies_offline(release: str) -> None:
    model = VECTORS / release
    result = verify_model(model, model / "model.sig", keyless=TRUST, ignore_paths=_ignores(release))
    assert result.ok, result.problems()
    assert result.signer.kind == "sigstore" and IDENTITY in result.signer.identity
    assert set(result.files) >= {"signme-1", "signme-2"}


@pytest.mark.parametrize("release", RELEASES)
def test_identity_regex(release: str) -> None:
    model = VECTORS / release
    trust = KeylessTrust(issuer=ISSUER, identity_regex=r"[a-z]+@us\.ibm\.com")
    assert verify_model(model, model / "model.sig", keyless=trust, ignore_paths=_ignores(release)).ok
    with pytest.raises(VerificationFailed, match="wrong identity.*does not match"):
        verify_model(
            model, model / "model.sig", keyless=KeylessTrust(issuer=ISSUER, identity_regex=r".*@example\.org")
        )


@pytest.mark.parametrize(
    ("trust", "message"),
    [
        (KeylessTrust(issuer=ISSUER, identity="mallory@us.ibm.com"), "wrong identity"),
        (KeylessTrust(issuer="https://accounts.google.com", identity=IDENTITY), "wrong issuer"),
    ],
)
def test_wrong_signer_is_named(trust: KeylessTrust, message: str) -> None:
    model = VECTORS / "v1.1.0-sigstore"
    with pytest.raises(VerificationFailed, match=message):
        verify_model(model, model / "model.sig", keyless=trust, ignore_paths=["ignore-me"])


def test_changed_file_fails(tmp_path: Path) -> None:
    model = _copy("v1.0.1-sigstore", tmp_path)
    (model / "signme-2").write_bytes((model / "signme-2").read_bytes() + b"!")
    result = verify_model(model, model / "model.sig", keyless=TRUST, ignore_paths=["ignore-me"])
    assert not result.ok and result.changed == ["signme-2"]


def _tamper_entry(tmp_path: Path, mutate) -> Path:
    model = _copy("v1.1.0-sigstore", tmp_path)
    doc = json.loads((model / "model.sig").read_text())
    mutate(doc["verificationMaterial"]["tlogEntries"][0])
    (model / "model.sig").write_text(json.dumps(doc))
    return model


def test_log_entry_that_does_not_match_fails(tmp_path: Path) -> None:
    def bump_index(entry: dict) -> None:
        entry["logIndex"] = str(int(entry["logIndex"]) + 1)

    model = _tamper_entry(tmp_path, bump_index)
    with pytest.raises(VerificationFailed, match="transparency log entry"):
        verify_model(model, model / "model.sig", keyless=TRUST, ignore_paths=["ignore-me"])


def test_certificate_outside_validity_at_log_time_fails(tmp_path: Path) -> None:
    def later(entry: dict) -> None:
        entry["integratedTime"] = str(
            int(entry["integratedTime"]) + 3600
        )  # Fulcio certificates live 10 minutes

    model = _tamper_entry(tmp_path, later)
    with pytest.raises(VerificationFailed, match="not valid at the log entry's time"):
        verify_model(model, model / "model.sig", keyless=TRUST, ignore_paths=["ignore-me"])


def test_altered_statement_fails(tmp_path: Path) -> None:
    model = _copy("v1.1.0-sigstore", tmp_path)
    doc = json.loads((model / "model.sig").read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (model / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(VerificationFailed):
        verify_model(model, model / "model.sig", keyless=TRUST, ignore_paths=["ignore-me"])


def test_keyless_bundle_without_identity_is_a_clear_error() -> None:
    model = VECTORS / "v1.1.0-sigstore"
    with pytest.raises(IntegrityError, match="--identity"):
        verify_model(model, model / "model.sig", public_key=VECTORS / "keys/certificate/signing-key-pub.pem")


def test_oms_valid_sigstore_vector_authenticates() -> None:
    raw = (OMS / "valid" / "sigstore.bundle.json").read_bytes()
    signer, payload = verify_keyless(raw, TRUST)
    assert (
        signer.identity == IDENTITY and payload == read_bundle(OMS / "valid" / "sigstore.bundle.json").payload
    )


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ("invalid/empty.bundle.json", "not valid JSON"),
        ("invalid/missing-envelope.bundle.json", "dsseEnvelope is missing"),
        ("invalid/missing-tlog-entries.bundle.json", "no transparency log entry"),
        ("invalid/missing-verification-material.bundle.json", "verificationMaterial is missing"),
    ],
)
def test_oms_invalid_vectors_are_rejected_with_a_reason(vector: str, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        read_bundle(OMS / vector)


def test_oms_wrong_predicate_is_rejected() -> None:
    bundle = read_bundle(OMS / "invalid-payload" / "wrong-predicate.bundle.json")
    with pytest.raises(IntegrityError, match="predicateType"):
        parse_statement(bundle.payload)


def test_cli_exit_codes() -> None:
    from typer.testing import CliRunner

    from scanner.cli import app

    model = VECTORS / "v1.0.0-sigstore"
    base = ["verify", str(model), "--signature", str(model / "model.sig")]
    runner = CliRunner()
    ok = runner.invoke(app, [*base, "--identity", IDENTITY, "--issuer", ISSUER])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, [*base, "--identity", "mallory@us.ibm.com", "--issuer", ISSUER])
    assert bad.exit_code == 1 and "wrong identity" in bad.output
    incomplete = runner.invoke(app, [*base, "--identity", IDENTITY])
    assert incomplete.exit_code == 2 and "--issuer" in incomplete.output


@pytest.mark.parametrize(("who", "code"), [(IDENTITY, 0), ("mallory@us.ibm.com", 1)])
def test_policy_trusts_a_sigstore_identity(tmp_path: Path, who: str, code: int) -> None:
    from typer.testing import CliRunner

    from scanner.cli import app

    model = _copy("v1.1.0-sigstore", tmp_path)
    (model / "ignore-me").unlink()
    policy = tmp_path / "signed.yaml"
    policy.write_text(
        "version: 1\nname: signed\nblock_severity: high\nsignatures:\n  required: true\n  trust:\n"
        f"    - sources: ['file://{tmp_path}/*']\n      identities:\n"
        f"        - {{identity: '{who}', issuer: '{ISSUER}'}}\n"
    )
    res = CliRunner().invoke(app, ["scan", str(model), "--policy", str(policy), "-f", "json"])
    assert res.exit_code == code, res.output
    files = {f["path"]: f for f in json.loads(res.stdout)["files"]}
    if code == 0:
        assert files["signme-1"]["signature"] == "verified" and IDENTITY in files["signme-1"]["signer"]
    else:
        assert any(x["rule_id"] == "SIGNATURE-INVALID" for f in files.values() for x in f["findings"])
