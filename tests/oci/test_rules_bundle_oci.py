"""`modelward rules update --from oci://…`: bundles served by the Debian docker-registry on 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from scanner import rules as rules_mod
from scanner.cli import app
from scanner.resources import packaged_signatures_dir


@pytest.fixture(autouse=True)
def private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MODELWARD_SIGNATURES", raising=False)
    rules_mod._cached.cache_clear()
    yield
    rules_mod._cached.cache_clear()


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    k = ec.generate_private_key(ec.SECP256R1())
    priv, pub = tmp_path / "rules.pem", tmp_path / "rules.pub.pem"
    priv.write_bytes(
        k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub.write_bytes(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def _bundle(tmp_path: Path, version: str, priv: Path) -> bytes:
    src = tmp_path / f"sig-{version}"
    shutil.copytree(packaged_signatures_dir(), src, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (src / "VERSION").write_text(version + "\n")
    out = tmp_path / f"rules-{version}.tar.gz"
    assert (
        CliRunner().invoke(app, ["rules", "pack", str(src), "-o", str(out), "--key", str(priv)]).exit_code
        == 0
    )
    return out.read_bytes()


@pytest.mark.parametrize("case", ["valid", "tampered", "older"])
def test_update_from_an_oci_registry(registry, tmp_path: Path, case: str) -> None:
    priv, pub = _keys(tmp_path)
    data = _bundle(tmp_path, "2000.1.1.1" if case == "older" else "2099.3.3.3", priv)
    if case == "tampered":
        data = data[:-40] + bytes(b ^ 0xFF for b in data[-40:])
    repo = f"rules/{case}"
    registry.artifact(
        repo,
        "latest",
        [
            registry.descriptor(
                repo, data, "application/vnd.modelward.rules.v1.tar+gzip", title="rules.tar.gz"
            )
        ],
    )
    before = rules_mod.get_rule_db().version
    res = CliRunner().invoke(
        app, ["rules", "update", "--from", f"oci://{registry.host}/{repo}:latest", "--key", str(pub)]
    )
    rules_mod._cached.cache_clear()
    if case == "valid":
        assert res.exit_code == 0, res.output
        assert rules_mod.get_rule_db().version == "2099.3.3.3"
    else:
        assert res.exit_code == 2 and res.output.count("error:") == 1, res.output
        assert rules_mod.get_rule_db().version == before
