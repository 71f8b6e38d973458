"""pull from an OCI registry: layers verified against their digests, scanned, installed only when allowed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from scanner.cli import app

from .conftest import evil_pickle, safetensors_bytes


def test_pull_installs_verified_layers(registry, tmp_path: Path):
    repo = "acme/pull-ok"
    registry.artifact(
        repo,
        "v1",
        [
            registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="weights/model.safetensors"
            )
        ],
    )
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["pull", "--insecure", "--to", str(dest), f"oci://{registry.host}/{repo}:v1"]
    )
    assert res.exit_code == 0, res.output
    assert (dest / "weights" / "model.safetensors").read_bytes() == safetensors_bytes()


def test_pull_blocks_a_malicious_layer_and_installs_nothing(registry, tmp_path: Path):
    repo = "acme/pull-evil"
    registry.artifact(
        repo,
        "v1",
        [
            registry.descriptor(
                repo, safetensors_bytes(), "application/octet-stream", title="model.safetensors"
            ),
            registry.descriptor(repo, evil_pickle(), "application/octet-stream", title="model.pkl"),
        ],
    )
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["pull", "--insecure", "--to", str(dest), f"oci://{registry.host}/{repo}:v1"]
    )
    assert res.exit_code == 1
    assert not dest.exists() or not any(dest.rglob("*"))


def test_pull_over_plain_http_needs_insecure(registry, tmp_path: Path, monkeypatch):
    # Loopback registries speak plain HTTP by default (like Docker); stand in for a remote host.
    monkeypatch.setattr("scanner.sources.oci.is_loopback", lambda host: False)
    res = CliRunner().invoke(
        app, ["pull", "--to", str(tmp_path / "o"), f"oci://{registry.host}/acme/pull-ok:v1"]
    )
    assert res.exit_code == 2
    assert not (tmp_path / "o").exists()
