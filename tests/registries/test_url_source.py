"""https:// and (explicitly allowed) http:// single files, served by Debian's nginx with full RFC 7233 Range."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.pipeline import ScanOptions, scan_targets
from scanner.pull import PullOptions, pull
from scanner.sources.base import SourceError
from scanner.sources.url import URLSource

from .models import evil_pickle, safetensors_bytes, write_torch_checkpoint

WEIGHTS = safetensors_bytes({"w": 10_000})


@pytest.fixture
def site(nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    (nginx.www / "model.safetensors").write_bytes(WEIGHTS)
    (nginx.www / "private" / "model.safetensors").write_bytes(WEIGHTS)
    write_torch_checkpoint(nginx.www / "big.pt", {"w": 10_000_000})  # 40 MB, sparse
    write_torch_checkpoint(nginx.www / "evil.pt", {"w": 10}, data_pkl=evil_pickle())
    return nginx


def test_plain_http_refused_unless_allowed(site):
    url = f"{site.url}/model.safetensors"
    with pytest.raises(SourceError, match="--allow-http"):
        URLSource().resolve(url)
    res = CliRunner().invoke(app, ["scan", url])
    assert res.exit_code == 2 and "--allow-http" in res.stderr
    snap = URLSource(allow_http=True).resolve(url)
    assert snap.kind == "url" and snap.artifacts[0].size == len(WEIGHTS)
    assert snap.resolved.startswith(url) and "etag" in snap.resolved


def test_pinned_digest_is_the_resolved_reference(site):
    digest = hashlib.sha256(WEIGHTS).hexdigest()
    snap = URLSource(allow_http=True).resolve(f"{site.url}/model.safetensors#sha256={digest}")
    assert snap.resolved == f"sha256:{digest}"
    assert snap.artifacts[0].claimed_sha256 == digest
    with pytest.raises(SourceError, match="64 hex"):
        URLSource(allow_http=True).resolve(f"{site.url}/model.safetensors#sha256=abc")


def test_scan_big_checkpoint_reads_little_and_follows_redirect(site):
    report = scan_targets([f"{site.url}/redirect/big.pt"], ScanOptions(source_options={"allow_http": True}))
    assert not report.errors
    fr = report.files[0]
    assert fr.format == "pytorch-zip"
    assert fr.bytes_read < fr.size * 0.01, (fr.bytes_read, fr.size)


def test_scan_evil_blocks(site):
    report = scan_targets([f"{site.url}/evil.pt"], ScanOptions(source_options={"allow_http": True}))
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in report.all_findings())


def test_pull_with_digest_verifies_and_installs(site, tmp_path: Path):
    digest = hashlib.sha256(WEIGHTS).hexdigest()
    dest = tmp_path / "dl"
    outcome = pull(
        f"{site.url}/model.safetensors#sha256={digest}",
        PullOptions(progress=False, to=dest, source_options={"allow_http": True}),
    )
    assert outcome.installed and (dest / "model.safetensors").read_bytes() == WEIGHTS


def test_pull_with_wrong_digest_blocks(site, tmp_path: Path):
    wrong = "0" * 64
    dest = tmp_path / "dl"
    res = CliRunner().invoke(
        app,
        [
            "pull",
            f"{site.url}/model.safetensors#sha256={wrong}",
            "--allow-http",
            "--to",
            str(dest),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 1
    rules = {f["rule_id"] for fr in json.loads(res.stdout)["files"] for f in fr["findings"]}
    assert "REGISTRY-DIGEST-MISMATCH" in rules
    assert not dest.exists()


def test_pull_without_digest_warns_unverified(site, tmp_path: Path):
    outcome = pull(
        f"{site.url}/model.safetensors",
        PullOptions(progress=False, to=tmp_path / "dl", source_options={"allow_http": True}),
    )
    assert any(f.rule_id == "REGISTRY-UNVERIFIED" for f in outcome.report.all_findings())


def test_basic_auth_from_userinfo_and_missing_file(site):
    ok = URLSource(allow_http=True).resolve(
        f"http://alice:s3cretpass@127.0.0.1:{site.port}/private/model.safetensors"
    )
    assert "s3cretpass" not in ok.target and ok.artifacts[0].size == len(WEIGHTS)
    with pytest.raises(SourceError, match="401") as bad:
        URLSource(allow_http=True).resolve(
            f"http://alice:wrongpass1@127.0.0.1:{site.port}/private/model.safetensors"
        )
    assert "wrongpass1" not in str(bad.value)
    with pytest.raises(SourceError, match="404"):
        URLSource(allow_http=True).resolve(f"{site.url}/missing.bin")
