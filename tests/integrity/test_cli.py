from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from scanner.integrity.cli import register

from .conftest import KeyPair, Pki


@pytest.fixture
def cli() -> Callable[..., object]:
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def invoke(*args: object):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def _no_traceback(result) -> None:  # type: ignore[no-untyped-def]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_sign_then_verify_exit_0(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "m.sig"
    res = cli("sign", model_dir, "--key", kp.private, "--signature", sig)
    assert res.exit_code == 0, res.output
    assert sig.is_file() and "Signed 5 file(s)" in res.stdout
    res = cli("verify", model_dir, "--signature", sig, "--key", kp.public)
    assert res.exit_code == 0, res.output
    assert "Verification succeeded" in res.stdout


def test_mismatch_exit_1_names_every_file(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "m.sig"
    assert cli("sign", model_dir, "--key", kp.private, "--signature", sig).exit_code == 0
    (model_dir / "a.bin").write_bytes(b"evil")
    (model_dir / "empty.txt").unlink()
    (model_dir / "a" / "payload.pkl").write_bytes(b"x")
    res = cli("verify", model_dir, "--signature", sig, "--key", kp.public)
    assert res.exit_code == 1
    _no_traceback(res)
    assert "changed: a.bin" in res.stderr
    assert "missing: empty.txt" in res.stderr
    assert "a/payload.pkl" in res.stderr
    res = cli("verify", model_dir, "--signature", sig, "--public_key", kp.public, "--ignore_unsigned_files")
    assert res.exit_code == 1 and "payload.pkl" not in res.stderr and "changed: a.bin" in res.stderr


def test_wrong_key_exit_1(cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]) -> None:
    kp, other = make_key(name="a"), make_key(name="b")
    sig = tmp_path / "m.sig"
    cli("sign", model_dir, "--key", kp.private, "--signature", sig)
    res = cli("verify", model_dir, "--signature", sig, "--key", other.public)
    assert res.exit_code == 1
    assert "key mismatch" in res.stderr
    _no_traceback(res)


@pytest.mark.parametrize("content", ["{not json", "", '{"mediaType": "application/json"}'])
def test_unusable_signature_exit_2_one_line(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], content: str
) -> None:
    kp = make_key()
    sig = tmp_path / "bad.sig"
    sig.write_text(content)
    res = cli("verify", model_dir, "--signature", sig, "--key", kp.public)
    assert res.exit_code == 2
    _no_traceback(res)
    assert len(res.stderr.strip().splitlines()) == 1 and str(sig) in res.stderr


def test_unusable_key_and_usage_errors_exit_2(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    res = cli("sign", model_dir, "--key", rsa_pem, "--signature", tmp_path / "x.sig")
    assert res.exit_code == 2 and "unsupported key type RSA-2048" in res.stderr
    assert "PRIVATE KEY" not in res.output  # never echo key material
    _no_traceback(res)
    kp = make_key()
    sig = tmp_path / "m.sig"
    cli("sign", model_dir, "--key", kp.private, "--signature", sig)
    res = cli("verify", model_dir, "--signature", sig)
    assert res.exit_code == 2 and "exactly one of --key" in res.stderr
    res = cli("verify", model_dir, "--signature", tmp_path / "absent.sig", "--key", kp.public)
    assert res.exit_code == 2 and "not found" in res.stderr
    os.symlink(model_dir / "a.bin", model_dir / "alias.bin")
    res = cli("verify", model_dir, "--signature", sig, "--key", kp.public)
    assert res.exit_code == 2 and "alias.bin: is a symbolic link" in res.stderr


def test_certificate_mode(cli, model_dir: Path, tmp_path: Path, make_pki: Callable[..., Pki]) -> None:
    pki, other = make_pki(), make_pki(tag="other")
    sig = tmp_path / "c.sig"
    res = cli(
        "sign",
        model_dir,
        "--key",
        pki.leaf_key.private,
        "--cert",
        pki.leaf_pem,
        "--chain",
        pki.ca_pem,
        "--signature",
        sig,
    )
    assert res.exit_code == 0, res.output
    res = cli("verify", model_dir, "--signature", sig, "--chain", pki.ca_pem)
    assert res.exit_code == 0 and "CN=pki signer" in res.stdout
    res = cli("verify", model_dir, "--signature", sig, "--certificate_chain", other.ca_pem)
    assert res.exit_code == 1 and "does not chain" in res.stderr
    bad = make_pki(tag="bad", digital_signature=False, code_signing=False)
    res = cli("sign", model_dir, "--key", bad.leaf_key.private, "--cert", bad.leaf_pem, "--signature", sig)
    assert res.exit_code == 2 and "may not be used for signing" in res.stderr


def test_shards_blake2b_and_cwd_relative_ignore_paths(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    kp = make_key()
    monkeypatch.chdir(model_dir)
    res = cli(
        "sign",
        ".",
        "--key",
        kp.private,
        "--hash",
        "blake2b",
        "--shard-size",
        "300",
        "--ignore-paths",
        "config.json",
    )
    assert res.exit_code == 0, res.output
    statement = json.loads(
        base64.b64decode(json.loads((model_dir / "model.sig").read_text())["dsseEnvelope"]["payload"])
    )
    assert statement["predicate"]["serialization"]["shard_size"] == 300
    assert {"config.json", "model.sig"} <= set(statement["predicate"]["serialization"]["ignore_paths"])
    (model_dir / "config.json").write_text("not covered")
    res = cli("verify", ".", "--signature", "model.sig", "--key", kp.public)
    assert res.exit_code == 0, res.output
    assert "unprotected" in res.stderr  # the signature's own ignore list is surfaced


def test_hostile_file_names_are_escaped(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair]
) -> None:
    kp = make_key()
    sig = tmp_path / "m.sig"
    cli("sign", model_dir, "--key", kp.private, "--signature", sig)
    (model_dir / "x\x1b[31m[bold]red").write_bytes(b"x")
    res = cli("verify", model_dir, "--signature", sig, "--key", kp.public)
    assert res.exit_code == 1
    assert "\x1b" not in res.stderr
    assert "x\\x1b[31m[bold]red" in res.stderr


def test_encrypted_key_needs_password_env(
    cli, model_dir: Path, tmp_path: Path, make_key: Callable[..., KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    kp = make_key()
    enc = tmp_path / "enc.pem"
    enc.write_bytes(
        kp.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret-pass"),
        )
    )
    sig = tmp_path / "m.sig"
    monkeypatch.delenv("MODELWARD_KEY_PASSWORD", raising=False)
    res = cli("sign", model_dir, "--key", enc, "--signature", sig)
    assert res.exit_code == 2 and "encrypted" in res.stderr
    monkeypatch.setenv("MODELWARD_KEY_PASSWORD", "wrong")
    res = cli("sign", model_dir, "--key", enc, "--signature", sig)
    assert res.exit_code == 2 and "s3cret" not in res.output
    monkeypatch.setenv("MODELWARD_KEY_PASSWORD", "s3cret-pass")
    assert cli("sign", model_dir, "--key", enc, "--signature", sig).exit_code == 0
    assert cli("verify", model_dir, "--signature", sig, "--key", kp.public).exit_code == 0
