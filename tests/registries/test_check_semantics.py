"""`check` as users of uv/npm lockfiles expect: it verifies the pins, a moved branch is news (unless the policy
wants fresh pins), every finding names its fix, a second run re-reads nothing, SARIF points at the declaration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

from .models import safetensors_bytes, write_torch_checkpoint
from .servers.hf_hub_server import HubServer

FILES = {"config.json": b'{"model_type": "tiny"}', "model.safetensors": safetensors_bytes({"w": 64})}


def _project(tmp_path: Path, policy: str = "") -> Path:
    proj = tmp_path / "proj"
    (proj / "src" / "pkg").mkdir(parents=True)
    (proj / "modelward.toml").write_text(f'{policy}\n[models]\n# the encoder\ntiny = "hf://acme/tiny"\n')
    return proj


def _cli(proj: Path, monkeypatch: pytest.MonkeyPatch, *args: str, cwd: Path | None = None):
    monkeypatch.chdir(cwd or proj)
    return CliRunner().invoke(app, list(args))


def test_moved_branch_is_information_and_names_the_command(
    hub: HubServer, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path)
    assert _cli(proj, monkeypatch, "lock").exit_code == 0
    hub.add_repo("acme/tiny", {**FILES, "config.json": b'{"model_type": "moved"}'})
    # from a sub-folder: check finds modelward.toml by walking up
    res = _cli(proj, monkeypatch, "check", "-f", "json", cwd=proj / "src" / "pkg")
    assert res.exit_code == 0, res.output
    moved = [
        f
        for fr in json.loads(res.stdout)["files"]
        for f in fr["findings"]
        if f["rule_id"] == "LOCK-REF-MOVED"
    ]
    assert moved and moved[0]["severity"] == "info" and "modelward lock --upgrade tiny" in moved[0]["message"]


def test_fresh_pins_policy_blocks_a_moved_branch(hub: HubServer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path, policy='policy = "fresh.yaml"')
    (proj / "fresh.yaml").write_text("version: 1\nextends: default\nlock:\n  fresh: true\n")
    assert _cli(proj, monkeypatch, "lock").exit_code == 0
    hub.add_repo("acme/tiny", {**FILES, "config.json": b'{"model_type": "moved"}'})
    res = _cli(proj, monkeypatch, "check")
    assert res.exit_code == 1 and "LOCK-REF-MOVED" in res.stdout


def test_second_check_of_an_unchanged_project_reads_no_weights(
    hub: HubServer, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key-for-the-check-cache")
    ckpt = tmp_path / "pytorch_model.bin"
    write_torch_checkpoint(ckpt, {"w": 200_000})
    hub.add_repo("acme/tiny", {**FILES, "pytorch_model.bin": ckpt})
    proj = _project(tmp_path)
    assert _cli(proj, monkeypatch, "lock").exit_code == 0
    assert _cli(proj, monkeypatch, "check").exit_code == 0
    before = len(hub.requests_to(None, "pytorch_model.bin"))
    assert before > 0
    res = _cli(proj, monkeypatch, "check", "-f", "json")
    assert res.exit_code == 0, res.output
    assert len(hub.requests_to(None, "pytorch_model.bin")) == before  # judged from the cache, not re-read
    files = {f["path"]: f for f in json.loads(res.stdout)["files"]}
    assert files["tiny/pytorch_model.bin"]["cached"] is True


def test_sarif_points_remote_findings_at_the_declaring_line(
    hub: HubServer, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path)
    assert _cli(proj, monkeypatch, "lock").exit_code == 0
    hub.add_repo("acme/tiny", {**FILES, "config.json": b'{"model_type": "moved"}'})
    res = _cli(proj, monkeypatch, "check", "-f", "sarif", "-o", "out.sarif")
    doc = json.loads((proj / "out.sarif").read_text())
    locs = [r["locations"][0]["physicalLocation"] for r in doc["runs"][0]["results"]]
    assert locs, res.output
    for loc in locs:
        assert loc["artifactLocation"] == {"uri": "modelward.toml", "uriBaseId": "%SRCROOT%"}
        assert loc["region"]["startLine"] == 4  # `tiny = "hf://acme/tiny"`
