"""hf:// targets resolved with the real huggingface_hub against the local Hub server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_session import RetryPolicy
from scanner.pipeline import ScanOptions, scan_targets
from scanner.rules import get_rule_db
from scanner.sources.base import SourceError
from scanner.sources.claims import claim_findings
from scanner.sources.hf import HFSource, hf_hub_cache, parse_hf

from .models import evil_pickle, safetensors_bytes, write_torch_checkpoint
from .servers.hf_hub_server import HubServer

CONFIG = b'{"model_type": "tiny", "hidden_size": 8}'


def _files(tmp_path: Path, evil: bool = False) -> dict[str, bytes | Path]:
    ckpt = tmp_path / "pytorch_model.bin"
    write_torch_checkpoint(ckpt, {"w": 5_000_000}, data_pkl=evil_pickle() if evil else None)  # 20 MB, sparse
    return {
        "config.json": CONFIG,
        "model.safetensors": safetensors_bytes({"w": 64}),
        "pytorch_model.bin": ckpt,
    }


def test_parse_never_touches_network():
    assert parse_hf("hf://acme/tiny@refs/pr/1").revision == "refs/pr/1"
    assert parse_hf("hf://datasets/acme/data").repo_type == "dataset"
    assert parse_hf("hf://gpt2").repo_id == "gpt2"
    for bad in ("hf://", "hf://a/b/c", "hf://../etc", "hf://acme/tiny@", "hf://ac--me/x"):
        with pytest.raises(SourceError):
            parse_hf(bad)


def test_resolve_pins_commit_and_claims(hub: HubServer, tmp_path: Path):
    commit = hub.add_repo("acme/tiny", _files(tmp_path))
    res = HFSource().resolve_repo("hf://acme/tiny")
    snap = res.snapshot
    assert snap.kind == "hf" and snap.resolved == commit and res.commit == commit
    arts = {a.path: a for a in snap.artifacts}
    assert set(arts) == {"config.json", "model.safetensors", "pytorch_model.bin"}
    assert (
        arts["config.json"].claimed_git_sha1 == hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG).hexdigest()
    )
    assert arts["config.json"].claimed_sha256 is None
    st = safetensors_bytes({"w": 64})
    assert arts["model.safetensors"].claimed_sha256 == hashlib.sha256(st).hexdigest()
    assert (
        arts["model.safetensors"].claimed_git_sha1 is None
    )  # an LFS blob id is the pointer's, not the content's
    # The branch moves after resolution: reads stay on the pinned commit.
    hub.add_repo("acme/tiny", {"config.json": b'{"moved": true}'})
    with arts["config.json"].open() as r:
        assert r.read(0, r.size) == CONFIG
    assert all(f"/resolve/{commit}/" in e["path"] for e in hub.requests_to("hub", "/resolve/"))


def test_remote_scan_reads_a_tiny_fraction(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/tiny", _files(tmp_path))
    report = scan_targets(["hf://acme/tiny"], ScanOptions())
    assert not report.errors
    by = {f.path.rsplit("/", 1)[1]: f for f in report.files}
    ck = by["pytorch_model.bin"]
    assert ck.format == "pytorch-zip"
    assert ck.bytes_read < ck.size * 0.02, (
        ck.bytes_read,
        ck.size,
    )  # 0.1 % is for multi-GB: see the benchmark
    assert by["config.json"].bytes_read == len(CONFIG)
    assert report.bytes_read < report.total_size * 0.02


def test_remote_malicious_checkpoint_blocks_through_cli(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/evil", _files(tmp_path, evil=True))
    res = CliRunner().invoke(app, ["scan", "hf://acme/evil", "--format", "json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    rules = {f["rule_id"] for fr in data["files"] for f in fr["findings"]}
    assert "PICKLE-DANGEROUS-GLOBAL" in rules
    assert any(fr["path"] == "hf://acme/evil/pytorch_model.bin" for fr in data["files"])


@pytest.mark.parametrize(
    ("setup", "target", "expect"),
    [
        (None, "hf://acme/missing", "repository not found"),
        ("plain", "hf://acme/tiny@nope", "revision 'nope' not found"),
        ("gated", "hf://acme/gated", "gated repository"),
        ("private", "hf://acme/private", "repository not found"),
    ],
)
def test_specific_errors_exit_2(hub: HubServer, setup, target, expect):
    if setup == "plain":
        hub.add_repo("acme/tiny", {"config.json": CONFIG})
    elif setup == "gated":
        hub.add_repo("acme/gated", {"config.json": CONFIG}, gated=True)
    elif setup == "private":
        hub.add_repo("acme/private", {"config.json": CONFIG}, token="hf_owneronlytokenvalue0000000")
    with pytest.raises(SourceError, match=expect):
        HFSource().resolve(target)
    res = CliRunner().invoke(app, ["scan", target])
    assert res.exit_code == 2
    assert expect in res.stderr
    assert "Traceback" not in res.output


def test_private_repo_with_token_from_env(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    token = "hf_privatetokenABCDEFGHIJKLMNOP"
    hub.add_repo(
        "acme/private", {"config.json": CONFIG, "w.safetensors": safetensors_bytes({"w": 4})}, token=token
    )
    monkeypatch.setenv("HF_TOKEN", token)
    report = scan_targets(["hf://acme/private"], ScanOptions())
    assert not report.errors and len(report.files) == 2
    assert all(e["auth"] == f"Bearer {token}" for e in hub.requests_to("hub"))
    assert hub.requests_to("cdn") and not any(e["auth"] for e in hub.requests_to("cdn"))


def test_token_file_in_hf_home_is_used(hub: HubServer, hf_env: Path):
    token = "hf_filetokenABCDEFGHIJKLMNOPQRS"
    hub.add_repo("acme/private", {"config.json": CONFIG}, token=token)
    hf_env.mkdir(parents=True, exist_ok=True)
    (hf_env / "token").write_text(token)
    assert HFSource().resolve("hf://acme/private").artifacts[0].path == "config.json"


def test_datasets_and_revision_tags(hub: HubServer):
    c1 = hub.add_repo("acme/data", {"train.json": b"[1, 2]"}, repo_type="dataset", tags=("v1",))
    hub.add_repo("acme/data", {"train.json": b"[1, 2, 3]"}, repo_type="dataset")
    snap = HFSource().resolve("hf://datasets/acme/data@v1")
    assert snap.resolved == c1
    with snap.artifacts[0].open() as r:
        assert r.read(0, 100) == b"[1, 2]"


def test_hub_security_status_is_information_only(hub: HubServer):
    hub.add_repo(
        "acme/tiny",
        {"model.safetensors": safetensors_bytes({"w": 4})},
        security={
            "model.safetensors": {
                "status": "unsafe",
                "avScan": {"virusFound": False},
                "pickleImportScan": None,
            }
        },
    )
    snap = HFSource().resolve("hf://acme/tiny")
    art = snap.artifacts[0]
    assert art.info["hub_security_status"] == "unsafe"
    found = claim_findings(art, None, None, get_rule_db())
    assert [(f.rule_id, f.severity.value) for f in found] == [("REGISTRY-HUB-SECURITY-STATUS", "info")]


def test_tampered_small_file_recorded_during_scan(hub: HubServer):
    hub.add_repo("acme/tiny", {"config.json": CONFIG})
    hub.faults.tamper.add("config.json")
    art = HFSource().resolve("hf://acme/tiny").artifacts[0]
    with art.open() as r:
        r.read(0, 5)
        found = claim_findings(art, r, None, get_rule_db())
    assert [f.rule_id for f in found] == ["REGISTRY-DIGEST-MISMATCH"]


def test_offline_mode_resolves_from_cache_or_fails_clearly(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import snapshot_download

    commit = hub.add_repo(
        "acme/tiny", {"config.json": CONFIG, "model.safetensors": safetensors_bytes({"w": 4})}
    )
    snapshot_download("acme/tiny", endpoint=hub.endpoint, token=False, cache_dir=hf_hub_cache())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.clear_log()
    snap = HFSource().resolve("hf://acme/tiny")
    assert snap.resolved == commit and {a.path for a in snap.artifacts} == {
        "config.json",
        "model.safetensors",
    }
    st = next(a for a in snap.artifacts if a.path == "model.safetensors")
    assert st.claimed_sha256 == hashlib.sha256(safetensors_bytes({"w": 4})).hexdigest()
    assert hub.log == []  # offline means offline
    with pytest.raises(SourceError, match="offline mode"):
        HFSource().resolve("hf://acme/other")


def test_api_500s_retry_then_clear_error(hub: HubServer):
    hub.add_repo("acme/tiny", {"config.json": CONFIG})
    hub.faults.error500["resolve"] = 2  # transient on file reads: retried by our client
    report = scan_targets(["hf://acme/tiny"], ScanOptions())
    assert not report.errors and report.files[0].format == "json"
    hub.faults.error500["resolve"] = -1
    src = HFSource()
    src.client.retry = RetryPolicy(attempts=2, backoff=0.001)
    art = src.resolve("hf://acme/tiny").artifacts[0]
    report_art = scan_targets(["hf://acme/tiny"], ScanOptions())
    fr = report_art.files[0]
    assert fr.coverage.value != "full" and any(f.rule_id == "FILE-READ-ERROR" for f in fr.findings)
    assert art.size == len(CONFIG)
