"""Verified pull: only verified, scanned, allowed bytes reach the destination; every fault leaves nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.pull import PullError, PullOptions, pull
from scanner.sources.hf import hf_hub_cache

from .models import evil_pickle, safetensors_bytes, write_torch_checkpoint
from .servers.hf_hub_server import HubServer

CONFIG = b'{"model_type": "tiny"}'
WEIGHTS = safetensors_bytes({"w": 50_000})  # 200 kB, LFS: served through the CDN redirect


def _repo(hub: HubServer, name: str = "acme/tiny", **extra: bytes | Path) -> str:
    return hub.add_repo(
        name,
        {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/vocab.json": b'{"a": 0}', **extra},
    )


def _leftovers(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_pull_installs_hf_cache_layout_usable_offline(hub: HubServer):
    commit = _repo(hub)
    res = CliRunner().invoke(app, ["pull", "hf://acme/tiny"])
    assert res.exit_code == 0, res.output
    cache = hf_hub_cache()
    repo_dir = cache / "models--acme--tiny"
    assert (repo_dir / "refs" / "main").read_text() == commit
    link = repo_dir / "snapshots" / commit / "model.safetensors"
    assert link.is_symlink() and os.readlink(link) == f"../../blobs/{hashlib.sha256(WEIGHTS).hexdigest()}"
    assert not [p for p in cache.iterdir() if p.name.startswith(".modelward")]

    from huggingface_hub import hf_hub_download, snapshot_download

    p = hf_hub_download("acme/tiny", "tokenizer/vocab.json", local_files_only=True, cache_dir=cache)
    assert Path(p).read_bytes() == b'{"a": 0}'
    assert (
        Path(
            snapshot_download("acme/tiny", local_files_only=True, cache_dir=cache), "config.json"
        ).read_bytes()
        == CONFIG
    )
    # A fresh process with the default cache of HF_HOME and offline mode finds the files too.
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from huggingface_hub import hf_hub_download as d;print(d('acme/tiny', 'model.safetensors'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).read_bytes() == WEIGHTS


def test_same_size_tampered_blob_is_blocked_and_nothing_installed(hub: HubServer):
    _repo(hub)
    hub.faults.tamper.add("model.safetensors")
    res = CliRunner().invoke(app, ["pull", "hf://acme/tiny", "--format", "json"])
    assert res.exit_code == 1, res.output
    rules = {f["rule_id"] for fr in json.loads(res.stdout)["files"] for f in fr["findings"]}
    assert "REGISTRY-DIGEST-MISMATCH" in rules
    assert "nothing was installed" in res.stderr
    assert _leftovers(hf_hub_cache()) == []


def test_huggingface_hub_itself_accepts_the_tampered_blob(hub: HubServer):
    """Why pull exists: the client checks only sizes (REGISTRY.md §2)."""
    from huggingface_hub import hf_hub_download

    _repo(hub)
    hub.faults.tamper.add("model.safetensors")
    p = hf_hub_download(
        "acme/tiny", "model.safetensors", endpoint=hub.endpoint, token=False, cache_dir=hf_hub_cache()
    )
    assert Path(p).read_bytes() != WEIGHTS and len(Path(p).read_bytes()) == len(WEIGHTS)


def test_malicious_checkpoint_blocked_nothing_installed(hub: HubServer, tmp_path: Path):
    ck = tmp_path / "pytorch_model.bin"
    write_torch_checkpoint(ck, {"w": 100}, data_pkl=evil_pickle())
    _repo(hub, **{"pytorch_model.bin": ck})
    dest = tmp_path / "out"
    res = CliRunner().invoke(app, ["pull", "hf://acme/tiny", "--to", str(dest), "--format", "json"])
    assert res.exit_code == 1
    rules = {f["rule_id"] for fr in json.loads(res.stdout)["files"] for f in fr["findings"]}
    assert "PICKLE-DANGEROUS-GLOBAL" in rules
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".modelward")] == []


def test_wrong_size_blocked(hub: HubServer):
    _repo(hub)
    hub.faults.wrong_size.add("model.safetensors")
    outcome = pull("hf://acme/tiny", PullOptions(progress=False))
    assert outcome.report.verdict.decision.value == "block" and not outcome.installed
    assert any(f.rule_id == "REGISTRY-SIZE-MISMATCH" for f in outcome.report.all_findings())
    assert _leftovers(hf_hub_cache()) == []


def test_dropped_connection_resumed_and_verified(hub: HubServer):
    _repo(hub)
    hub.faults.drop_after["model.safetensors"] = 50_000
    hub.faults.drop_times = 2
    outcome = pull("hf://acme/tiny", PullOptions(progress=False))
    assert outcome.installed, outcome.report.verdict
    blob = hf_hub_cache() / "models--acme--tiny" / "blobs" / hashlib.sha256(WEIGHTS).hexdigest()
    assert blob.read_bytes() == WEIGHTS
    ranges = [e["range"] for e in hub.requests_to("cdn")]
    assert "bytes=50000-199999" in " ".join(r or "" for r in ranges) or len(ranges) >= 3


def test_permanent_failure_exit_2_nothing_left(hub: HubServer, tmp_path: Path):
    _repo(hub)
    hub.faults.error500["cdn"] = -1
    os.environ["MODELWARD_HTTP_ATTEMPTS"] = "2"
    try:
        res = CliRunner().invoke(app, ["pull", "hf://acme/tiny", "--to", str(tmp_path / "dest")])
    finally:
        del os.environ["MODELWARD_HTTP_ATTEMPTS"]
    assert res.exit_code == 2
    assert "nothing was installed" in res.stderr and "500" in res.stderr
    assert not (tmp_path / "dest").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".modelward")] == []


def test_interrupted_pull_leaves_nothing(hub: HubServer, tmp_path: Path):
    _repo(hub)
    calls = []

    def stage(msg: str) -> None:
        calls.append(msg)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull("hf://acme/tiny", PullOptions(progress=False, to=tmp_path / "dest"), on_stage=stage)
    assert not (tmp_path / "dest").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_existing_cache_untouched_when_blocked(hub: HubServer):
    commit = _repo(hub)
    assert pull("hf://acme/tiny", PullOptions(progress=False)).installed
    before = _leftovers(hf_hub_cache())
    hub.add_repo("acme/tiny", {"config.json": b'{"v": 2}', "model.safetensors": WEIGHTS})
    hub.faults.tamper.add("config.json")
    outcome = pull("hf://acme/tiny", PullOptions(progress=False))
    assert not outcome.installed
    assert _leftovers(hf_hub_cache()) == before
    assert (hf_hub_cache() / "models--acme--tiny" / "refs" / "main").read_text() == commit


def test_plain_folder_and_range_ignoring_server(hub: HubServer, tmp_path: Path):
    _repo(hub)
    hub.faults.ignore_range = True  # pull streams whole files, so it works without Range
    dest = tmp_path / "plain"
    outcome = pull("hf://acme/tiny", PullOptions(progress=False, to=dest))
    assert outcome.installed
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert (dest / "tokenizer" / "vocab.json").read_bytes() == b'{"a": 0}'


def test_local_target_refused(tmp_path: Path):
    with pytest.raises(PullError, match="remote targets"):
        pull(str(tmp_path), PullOptions(progress=False))
