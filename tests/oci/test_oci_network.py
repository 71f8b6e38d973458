"""OCI through a fault-injecting proxy: the program's retry policy, exit codes, and tokens kept off storage."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.findings import Decision
from scanner.sources.oci import OCISource

from .conftest import big_safetensors
from .tamper_proxy import TamperProxy
from .test_oci_registry import oras_artifact, oscan

pytestmark = pytest.mark.slow

TOKEN = "registry-token-NETWORK-987654"
CREDS = ("net-user", "net-Password-42")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")


def _failed(proxy: TamperProxy, kind: str, status: int) -> list[dict]:
    return [e for e in proxy.log if e["kind"] == kind and e["status"] == status]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("kind", ["manifest", "blob", "token"])
def test_transient_statuses_retried_on_every_endpoint(registry, quick, docker_config, kind: str, status: int):
    oras_artifact(registry, "acme/retry", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.bearer = (*CREDS, TOKEN)
        docker_config(proxy.host, *CREDS)
        proxy.statuses[kind] = [status, status]
        report = oscan(f"oci://{proxy.host}/acme/retry:v1")
        assert not report.errors, report.errors
        assert report.verdict.decision is Decision.BLOCK  # the evil pickle layer was read and judged
        assert len(_failed(proxy, kind, status)) == 2


@pytest.mark.parametrize("kind", ["manifest", "blob"])
def test_retry_after_respected(registry, quick, kind: str):
    oras_artifact(registry, "acme/retry", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.statuses[kind] = [429]
        proxy.status_headers = {"Retry-After": "1"}
        report = oscan(f"oci://{proxy.host}/acme/retry:v1")
        assert not report.errors, report.errors
        reqs = [e for e in proxy.log if e["kind"] == kind]
        i = next(n for n, e in enumerate(reqs) if e["status"] == 429)
        assert 0.95 <= reqs[i + 1]["t"] - reqs[i]["t"] <= 5.0


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("kind", ["manifest", "blob"])
def test_no_retry_on_what_cannot_succeed(registry, quick, kind: str, status: int):
    oras_artifact(registry, "acme/retry", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.statuses[kind] = [status] * 6
        res = CliRunner().invoke(app, ["scan", f"oci://{proxy.host}/acme/retry:v1", "--insecure"])
        assert res.exit_code == 2, res.output
        assert "error:" in res.stderr
        paths = [e["path"] for e in _failed(proxy, kind, status) if e["method"] == "GET"]
        assert paths and len(paths) == len(set(paths)), paths  # one request per URL


def test_exhausted_retries_name_status_attempts_exit_2(registry, quick, monkeypatch, tmp_path):
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "3")
    oras_artifact(registry, "acme/retry", "v1")
    with TamperProxy(registry.base) as proxy:
        for kind, cmd in [("manifest", "scan"), ("blob", "scan"), ("manifest", "pull"), ("blob", "pull")]:
            proxy.log.clear()
            proxy.statuses = {kind: [503] * 3}
            args = [cmd, f"oci://{proxy.host}/acme/retry:v1", "--insecure"]
            if cmd == "pull":
                args += ["--to", str(tmp_path / f"d-{kind}")]
            res = CliRunner().invoke(app, args)
            err = " ".join(res.stderr.split())
            assert res.exit_code == 2, (kind, cmd, res.output)
            assert "error:" in err and "503" in err and "after 3 attempt" in err, (kind, cmd, err)
            assert proxy.host in err
            assert len(_failed(proxy, kind, 503)) == 3
            assert not (tmp_path / f"d-{kind}").exists()


def test_bearer_token_never_reaches_blob_storage_on_another_origin(registry, quick, docker_config):
    """Registries redirect blob GETs to storage (S3, a CDN): the registry token stays with the registry."""
    oras_artifact(registry, "acme/redirect", "v1")
    with TamperProxy(registry.base) as storage, TamperProxy(registry.base) as proxy:
        proxy.bearer = (*CREDS, TOKEN)
        proxy.redirect_blobs_to = f"http://{storage.host}"
        docker_config(proxy.host, *CREDS)
        storage.statuses["blob"] = [503]  # a retried storage request must not pick the token up either
        report = oscan(f"oci://{proxy.host}/acme/redirect:v1")
        assert not report.errors, report.errors
        assert report.verdict.decision is Decision.BLOCK
        big = big_safetensors(3_000_000)  # read in several ranges, from the cached storage URL
        layer = registry.descriptor(
            "acme/redirect", big, "application/vnd.oci.image.layer.v1.tar", title="big.safetensors"
        )
        registry.artifact("acme/redirect", "v2", [layer])
        snap = OCISource(insecure=True).resolve(f"oci://{proxy.host}/acme/redirect:v2")
        reader = next(a for a in snap.artifacts if a.path.endswith("big.safetensors")).open()
        for off in (0, 2_900_000, 1_000_000, 2_000_000):
            assert reader.read(off, 1000) == big[off : off + 1000]
        assert len([e for e in storage.log if e["kind"] == "blob" and e["status"] == 206]) >= 4
        leaks = [
            e["path"]
            for e in storage.log
            for k, v in e["headers"].items()
            if k == "authorization" or TOKEN in v or CREDS[1] in v
        ]
        assert leaks == []
        assert any(
            e["headers"].get("authorization") == f"Bearer {TOKEN}" for e in proxy.log if e["kind"] == "blob"
        )


def test_registry_that_stalls_mid_manifest_exits_2(registry, monkeypatch):
    """A registry answering 429 with a Retry-After beyond the budget stops at once instead of sleeping."""
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "2")
    oras_artifact(registry, "acme/retry", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.statuses["manifest"] = [429] * 5
        proxy.status_headers = {"Retry-After": "30"}
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["scan", f"oci://{proxy.host}/acme/retry:v1", "--insecure"])
        assert time.monotonic() - t0 < 10
        assert res.exit_code == 2 and "429" in res.stderr and "budget" in " ".join(res.stderr.split())


@pytest.mark.parametrize("kind", ["manifest", "blob"])
@pytest.mark.parametrize("cmd", ["scan", "pull"])
def test_trickling_registry_is_a_stall_exit_2(registry, monkeypatch, tmp_path, kind: str, cmd: str):
    monkeypatch.setenv("MODELWARD_NETWORK_STALL_SECONDS", "1")
    monkeypatch.setenv("MODELWARD_NETWORK_MIN_RATE", "100")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "4")
    oras_artifact(registry, "acme/slow", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.trickle[kind] = 10  # 10 bytes/s, below the 100 bytes/s minimum
        args = [cmd, f"oci://{proxy.host}/acme/slow:v1", "--insecure"]
        if cmd == "pull":
            args += ["--to", str(tmp_path / "dest")]
        t0 = time.monotonic()
        res = CliRunner().invoke(app, args)
        err = " ".join(res.stderr.split())
        assert time.monotonic() - t0 < 10
        assert res.exit_code == 2, res.output
        assert "error:" in err and "stalled" in err and proxy.host in err
        assert not (tmp_path / "dest").exists()
