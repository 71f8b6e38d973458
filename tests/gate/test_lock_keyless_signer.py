"""lock records a Sigstore signer (identity and issuer); check fails when another signer signs the model."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from scanner.gate.lockfile import read_lock

pytest.importorskip("sigstore", reason="sigstore-python (modelward[sigstore]) not installed")

VECTORS = Path(__file__).resolve().parents[1] / "integrity" / "vectors"
IDENTITY, ISSUER = "stefanb@us.ibm.com", "https://sigstore.verify.ibm.com/oauth2"


def test_keyless_signer_is_locked_and_a_certificate_signer_is_drift(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    model = proj / "models" / "m"
    shutil.copytree(VECTORS / "v1.1.0-sigstore", model, ignore=shutil.ignore_patterns("ignore-me"))
    (proj / "trust.yaml").write_text(
        textwrap.dedent(f"""
        version: 1
        extends: default
        signatures:
          required: true
          trust:
            - sources: ["file://*"]
              identities:
                - {{identity: "{IDENTITY}", issuer: "{ISSUER}"}}
              chains: ["{VECTORS / "keys/certificate/ca-cert.pem"}"]
    """)
    )
    (proj / "modelward.toml").write_text('policy = "trust.yaml"\n[models]\nm = "models/m"\n')
    res = cli("lock", "--project", str(proj))
    assert res.exit_code == 0, res.output
    signer = read_lock(proj / "modelward.lock").models["m"].signer
    assert IDENTITY in signer and ISSUER in signer
    assert cli("check", "--project", str(proj)).exit_code == 0
    # Same bytes, now signed with a CA-issued certificate the policy also trusts: still a different signer.
    shutil.copy(VECTORS / "v1.1.0-certificate" / "model.sig", model / "model.sig")
    res = cli("check", "--project", str(proj))
    assert res.exit_code == 1
    assert "LOCK-SIGNER-CHANGED" in res.stdout
