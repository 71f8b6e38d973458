"""pull verifies the model's signature over the quarantined bytes before anything is installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

from .servers.hf_hub_server import HubServer

pytest.importorskip("sigstore", reason="sigstore-python (modelward[sigstore]) not installed")

VECTORS = Path(__file__).resolve().parents[1] / "integrity" / "vectors"
IDENTITY, ISSUER = "stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2"


def _signed_repo(hub: HubServer, release: str, **override: bytes) -> None:
    src = VECTORS / release
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.name != "ignore-me"}
    hub.add_repo("acme/signed", {**files, **override})


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_keyless_signed_model_is_verified_then_installed(hub: HubServer, tmp_path: Path) -> None:
    _signed_repo(hub, "v1.0.0-sigstore")
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            "hf://acme/signed",
            "--to",
            str(dest),
            "--format",
            "json",
            "--identity",
            IDENTITY,
            "--issuer",
            ISSUER,
        ],
    )
    assert res.exit_code == 0, res.output
    files = {Path(f["path"]).name: f for f in json.loads(res.stdout)["files"]}
    assert files["signme-1"]["signature"] == "verified"
    assert (dest / "signme-1").is_file()


@pytest.mark.parametrize("case", ["wrong-identity", "tampered-file"])
def test_bad_signature_blocks_and_installs_nothing(hub: HubServer, tmp_path: Path, case: str) -> None:
    override = {"signme-2": b"tampered"} if case == "tampered-file" else {}
    _signed_repo(hub, "v1.0.0-sigstore", **override)
    who = "mallory@us.ibm.com" if case == "wrong-identity" else IDENTITY
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            "hf://acme/signed",
            "--to",
            str(dest),
            "--format",
            "json",
            "--identity",
            who,
            "--issuer",
            ISSUER,
        ],
    )
    assert res.exit_code == 1, res.output
    rules = {f["rule_id"] for fr in json.loads(res.stdout)["files"] for f in fr["findings"]}
    assert rules & {"SIGNATURE-INVALID", "SIGNATURE-MISMATCH"}
    assert _leftovers(dest) == []


def _policy(tmp_path: Path) -> Path:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nname: p\nblock_severity: high\nsignatures:\n  required: true\n  trust:\n"
        "    - sources: ['hf://acme/*']\n"
        f"      keys: ['{VECTORS / 'keys/certificate/signing-key-pub.pem'}']\n"
    )
    return policy


def test_key_signature_through_policy_trust(hub: HubServer, tmp_path: Path) -> None:
    _signed_repo(hub, "v1.1.0-elliptic-key")
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            "hf://acme/signed",
            "--to",
            str(dest),
            "--policy",
            str(_policy(tmp_path)),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    files = {Path(f["path"]).name: f for f in json.loads(res.stdout)["files"]}
    assert files["signme-1"]["signature"] == files["signme-2"]["signature"] == "verified"
    assert (dest / "signme-2").is_file()


def test_policy_requiring_signatures_blocks_an_unsigned_model(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo("acme/signed", {"config.json": b'{"model_type": "tiny"}'})
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["pull", "hf://acme/signed", "--to", str(dest), "--policy", str(_policy(tmp_path))]
    )
    assert res.exit_code == 1, res.output
    assert _leftovers(dest) == []


def test_missing_signature_file_is_an_error(hub: HubServer, tmp_path: Path) -> None:
    _signed_repo(hub, "v1.1.0-elliptic-key")
    res = CliRunner().invoke(
        app,
        [
            "pull",
            "hf://acme/signed",
            "--to",
            str(tmp_path / "out"),
            "--signature",
            str(tmp_path / "nonexistent.sig"),
        ],
    )
    assert res.exit_code == 2 and "nonexistent.sig" in res.output
