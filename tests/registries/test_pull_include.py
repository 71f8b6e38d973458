"""pull --include/--exclude: download and install only the selected files, like `hf download`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from scanner.cli import app

from .models import evil_pickle, safetensors_bytes
from .servers.hf_hub_server import HubServer


def test_pull_only_the_safetensors(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo(
        "acme/mixed",
        {
            "config.json": b'{"model_type": "x"}',
            "model.safetensors": safetensors_bytes({"w": 64}),
            "pytorch_model.bin": evil_pickle(),
            "onnx/model.onnx": b"\x08\x07",
        },
    )
    dest = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            "hf://acme/mixed",
            "--to",
            str(dest),
            "--include",
            "*.safetensors",
            "--include",
            "config.json",
        ],
    )
    assert res.exit_code == 0, res.output  # the malicious .bin was never downloaded nor installed
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["config.json", "model.safetensors"]
    assert not [r for r in hub.requests_to(None, "pytorch_model.bin") if r.get("sent")]


def test_pull_exclude(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo("acme/mixed", {"config.json": b"{}", "pytorch_model.bin": evil_pickle()})
    dest = tmp_path / "out"
    res = CliRunner().invoke(app, ["pull", "hf://acme/mixed", "--to", str(dest), "--exclude", "*.bin"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in dest.rglob("*") if p.is_file()] == ["config.json"]
