"""pull honours a lockfile pin: it fetches the pinned commit and refuses bytes that differ from the pins."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from scanner.cli import app
from scanner.sources.hf import hf_hub_cache

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer

FILES = {"config.json": b'{"model_type": "tiny"}', "model.safetensors": safetensors_bytes({"w": 50_000})}


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "modelward.toml").write_text('[models]\ntiny = "hf://acme/tiny"\n')
    return proj


def test_pull_fetches_the_pinned_commit_after_main_moved(hub: HubServer, tmp_path: Path):
    pinned = hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["lock", "--project", str(proj)]).exit_code == 0
    moved = hub.add_repo("acme/tiny", {**FILES, "config.json": b'{"model_type": "changed"}'})
    assert moved != pinned
    res = runner.invoke(app, ["pull", "hf://acme/tiny", "--lock", str(proj / "modelward.lock")])
    assert res.exit_code == 0, res.output
    snap = hf_hub_cache() / "models--acme--tiny" / "snapshots" / pinned
    assert (snap / "config.json").read_bytes() == FILES["config.json"]
    assert not (hf_hub_cache() / "models--acme--tiny" / "snapshots" / moved).exists()


def test_pull_refuses_bytes_that_differ_from_the_pins(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["lock", "--project", str(proj)]).exit_code == 0
    lock = proj / "modelward.lock"
    text = lock.read_text()
    real = hashlib.sha256(FILES["config.json"]).hexdigest()
    lock.write_text(text.replace(real, "0" * 64))
    res = runner.invoke(app, ["pull", "hf://acme/tiny", "--lock", str(lock), "--format", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert "LOCK-DIGEST-CHANGED" in {x["rule_id"] for f in doc["files"] for x in f["findings"]}
    assert not (hf_hub_cache() / "models--acme--tiny").exists()


def test_explicit_lock_without_a_pin_is_an_error(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/tiny", FILES)
    proj = _project(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["lock", "--project", str(proj)]).exit_code == 0
    res = runner.invoke(app, ["pull", "hf://acme/other", "--lock", str(proj / "modelward.lock")])
    assert res.exit_code == 2
    assert "no model with source" in res.stderr
