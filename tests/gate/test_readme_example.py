"""The README's CI-gate example works as shown (its policy file, its sign/lock/check commands)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.harness import REPO


def _readme_policy() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n# policies/ours\.yaml\n(.*?)```", text, re.S)
    assert block, "README lost its policies/ours.yaml example"
    return block.group(1)


def test_readme_strict_example(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    model = proj / "models" / "classifier"
    model.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    (model / "config.json").write_text('{"labels": 2}')
    (proj / "keys").mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    (proj / "keys" / "team.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (proj / "keys" / "team.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (proj / "policies").mkdir()
    (proj / "policies" / "ours.yaml").write_text(_readme_policy())
    (proj / "modelward.toml").write_text(
        'policy = "default"\n[models]\nclassifier = { source = "models/classifier", policy = "policies/ours.yaml" }\n'
    )
    monkeypatch.chdir(proj)
    assert cli("check").exit_code == 2  # no lockfile yet: one clear error
    assert (
        cli(
            "sign",
            "models/classifier",
            "--key",
            "keys/team.pem",
            "--signature",
            "models/classifier/model.sig",
        ).exit_code
        == 0
    )
    assert cli("lock").exit_code == 0
    res = cli("check")
    assert res.exit_code == 0, res.stdout
    assert "signature: verified" in res.stdout
    (model / "config.json").write_text('{"labels": 3}')  # a changed file: drift and a broken signature
    assert cli("check").exit_code == 1
