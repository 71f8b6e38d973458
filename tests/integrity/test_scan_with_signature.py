"""`modelward scan` verifies a signature beside the model and policies can require one."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from scanner.integrity.sign import sign_model


@pytest.fixture
def signed_model(tmp_path: Path, make_key):
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"hidden_size": 8}')
    (d / "sub" / "notes.txt").write_text("trained on public data\n")
    kp = make_key("p256")
    sign_model(d, kp.private, d / "model.sig")
    return d, kp


def _scan_json(cli, *args: str) -> tuple[int, dict]:
    res = cli("scan", "--format", "json", *args)
    return res.exit_code, json.loads(res.stdout)


def test_scan_verifies_signature_and_reuses_its_digests(cli, signed_model):
    d, kp = signed_model
    code, doc = _scan_json(cli, "--key", str(kp.public), str(d))
    assert code == 0
    files = {f["path"]: f for f in doc["files"]}
    assert files["config.json"]["signature"] == "verified"
    assert files["sub/notes.txt"]["signature"] == "verified"
    assert files["config.json"]["sha256"] == hashlib.sha256((d / "config.json").read_bytes()).hexdigest()


def test_tampered_file_after_signing_blocks(cli, signed_model):
    d, kp = signed_model
    (d / "config.json").write_text('{"hidden_size": 9}')
    code, doc = _scan_json(cli, "--key", str(kp.public), str(d))
    assert code == 1
    files = {f["path"]: f for f in doc["files"]}
    assert files["config.json"]["signature"] == "mismatch"
    assert "SIGNATURE-MISMATCH" in {x["rule_id"] for x in files["config.json"]["findings"]}


def test_added_and_removed_files_are_named(cli, signed_model):
    d, kp = signed_model
    (d / "extra.txt").write_text("new\n")
    (d / "sub" / "notes.txt").unlink()
    code, doc = _scan_json(cli, "--key", str(kp.public), str(d))
    rules = {(f["path"], x["rule_id"]) for f in doc["files"] for x in f["findings"]}
    assert ("extra.txt", "SIGNATURE-UNSIGNED-FILE") in rules
    assert ("sub/notes.txt", "SIGNATURE-FILE-MISSING") in rules
    assert code == 1


def test_wrong_key_is_an_invalid_signature(cli, signed_model, make_key):
    d, _ = signed_model
    other = make_key("p384", name="other")
    code, doc = _scan_json(cli, "--key", str(other.public), str(d))
    assert code == 1
    assert "SIGNATURE-INVALID" in {x["rule_id"] for f in doc["files"] for x in f["findings"]}


def test_signature_without_key_is_noted_not_trusted(cli, signed_model):
    d, _ = signed_model
    code, doc = _scan_json(cli, str(d))
    assert code == 0
    assert "SIGNATURE-UNVERIFIED" in {x["rule_id"] for f in doc["files"] for x in f["findings"]}
    assert all(f["signature"] is None for f in doc["files"] if f["path"] == "config.json")


def test_garbage_signature_is_unusable(cli, signed_model):
    d, kp = signed_model
    (d / "model.sig").write_text("{not json")
    code, doc = _scan_json(cli, "--key", str(kp.public), str(d))
    assert code == 1
    assert "SIGNATURE-UNUSABLE" in {x["rule_id"] for f in doc["files"] for x in f["findings"]}


def _policy(tmp_path: Path, key: Path | None) -> Path:
    trust = (
        f"""
          trust:
            - sources: ["file://*"]
              keys: [{key.name}]"""
        if key
        else ""
    )
    p = tmp_path / "signed.yaml"
    p.write_text(
        textwrap.dedent(f"""
        version: 1
        extends: default
        signatures:
          required: true{trust}
    """).lstrip()
    )
    return p


def test_policy_signature_requirement_met_with_trusted_key(cli, signed_model, tmp_path):
    d, kp = signed_model
    pol = _policy(kp.public.parent, kp.public)
    res = cli("scan", "--policy", str(pol), str(d))
    assert res.exit_code == 0, res.stdout
    (d / "model.sig").rename(tmp_path / "model.sig")  # a signature kept outside the tree works too
    res = cli("scan", "--policy", str(pol), "--signature", str(tmp_path / "model.sig"), str(d))
    assert res.exit_code == 0, res.stdout


def test_policy_signature_requirement_unmet(cli, signed_model, tmp_path):
    d, kp = signed_model
    (d / "model.sig").unlink()
    pol = _policy(kp.public.parent, kp.public)
    res = cli("scan", "--policy", str(pol), str(d))
    assert res.exit_code == 1
    assert "POLICY-SIGNATURE-REQUIRED" in res.stdout


def test_missing_key_file_is_a_usage_error(cli, signed_model, tmp_path):
    d, _ = signed_model
    res = cli("scan", "--key", str(tmp_path / "nope.pub"), str(d))
    assert res.exit_code == 2
    assert "nope.pub" in res.stderr
