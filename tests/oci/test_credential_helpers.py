"""Registry credentials from Docker credential helpers (credsStore / credHelpers, the docker-credential-* protocol),
and plain HTTP for loopback registries without --insecure, like Docker."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

from .conftest import PASSWORD, USER, safetensors_bytes


def _helper(bin_dir: Path, name: str, answers: dict[str, dict[str, str]], log: Path) -> None:
    """A real executable speaking the protocol: `get` reads the server URL on stdin, prints JSON or fails."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"answers = {json.dumps(answers)!r}\n"
        "server = sys.stdin.read().strip()\n"
        f"open({str(log)!r}, 'a').write(sys.argv[1] + ' ' + server + '\\n')\n"
        "a = json.loads(answers).get(server)\n"
        "if a is None:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "print(json.dumps(a))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("style", ["credsStore", "credHelpers"])
def test_helper_credentials_reach_an_authenticated_registry(
    auth_registry, tmp_path: Path, monkeypatch, style: str
):
    repo = "helper/model"
    auth_registry.artifact(
        repo,
        "v1",
        [
            auth_registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="model.safetensors"
            )
        ],
    )
    cfg = tmp_path / "docker"
    cfg.mkdir()
    entry = (
        {"credsStore": "mwtest"} if style == "credsStore" else {"credHelpers": {auth_registry.host: "mwtest"}}
    )
    (cfg / "config.json").write_text(json.dumps(entry))
    log = tmp_path / "helper.log"
    _helper(
        tmp_path / "bin",
        "mwtest",
        {auth_registry.host: {"ServerURL": auth_registry.host, "Username": USER, "Secret": PASSWORD}},
        log,
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    res = CliRunner().invoke(app, ["scan", f"oci://{auth_registry.host}/{repo}:v1", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert log.read_text().split() == ["get", auth_registry.host]
    assert PASSWORD not in res.output


def test_helper_without_credentials_is_a_clear_401(auth_registry, tmp_path: Path, monkeypatch):
    cfg = tmp_path / "docker"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "mwtest"}))
    _helper(tmp_path / "bin", "mwtest", {}, tmp_path / "helper.log")
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    res = CliRunner().invoke(app, ["scan", f"oci://{auth_registry.host}/helper/none:v1"])
    assert res.exit_code == 2
    assert "docker-credential-mwtest has no credentials" in res.output


def test_loopback_registry_needs_no_insecure_flag(registry):
    repo = "loopback/model"
    registry.artifact(
        repo,
        "v1",
        [
            registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="model.safetensors"
            )
        ],
    )
    assert registry.host.startswith("127.0.0.1:")
    res = CliRunner().invoke(app, ["scan", f"oci://{registry.host}/{repo}:v1"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["scan", f"oci://localhost:{registry.host.split(':')[1]}/{repo}:v1"])
    assert res.exit_code == 0, res.output


def test_username_and_password_stdin(auth_registry, tmp_path: Path, monkeypatch):
    repo = "login/model"
    auth_registry.artifact(
        repo,
        "v1",
        [
            auth_registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="model.safetensors"
            )
        ],
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    target = f"oci://{auth_registry.host}/{repo}:v1"
    ok = CliRunner().invoke(
        app, ["scan", target, "--username", USER, "--password-stdin"], input=PASSWORD + "\n"
    )
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, ["scan", target, "--username", USER, "--password-stdin"], input="wrong\n")
    assert bad.exit_code == 2 and "wrong" not in bad.output
    assert CliRunner().invoke(app, ["scan", target, "--username", USER]).exit_code == 2
