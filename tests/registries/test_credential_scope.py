"""Credentials reach only the origin they were given for: first request, cached redirect targets, resumes, retries.

The local Hub answers ``resolve`` for LFS files with a 302 to its CDN port (another
origin: same host, other port). Every header each origin received is recorded.
"""

from __future__ import annotations

import base64
import random

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, origin
from scanner.pipeline import ScanOptions, scan_targets
from scanner.pull import PullOptions, pull
from scanner.sources.hf import HFSource
from scanner.sources.url import URLSource

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer, resolve_url

TOKEN = "hf_scopedtokenvalue0123456789abcdef"
_ZEROS = safetensors_bytes({"w": 625_000})
# A valid safetensors file (LFS: resolve redirects to the CDN) with random float bytes, so reads at any offset
# tell the bytes apart; the pull scans and installs it.
DATA = _ZEROS[: len(_ZEROS) - 2_500_000] + random.Random(11).randbytes(2_500_000)
USER, PASSWORD = "alice", "pa55-userinfo-secret"


def _leaks(hub: HubServer, secrets: tuple[str, ...], role: str = "cdn") -> list[str]:
    """Every header value the given origin received that carries a credential."""
    out = []
    for e in hub.requests_to(role):
        for k, v in e["headers"].items():
            if k == "authorization" or any(s in v for s in secrets):
                out.append(f"{e['method']} {e['path'][:60]}: {k}")
    return out


@pytest.fixture
def private_repo(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    hub.add_repo("acme/private", {"model.safetensors": DATA, "config.json": b'{"a": 1}'}, token=TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return hub


def test_origin_is_scheme_host_and_port():
    assert origin("https://Hub.example/x") == origin("https://hub.example:443/y")
    assert origin("http://hub.example/x") != origin("https://hub.example/x")
    assert origin("http://127.0.0.1:8000/a") != origin("http://127.0.0.1:8001/a")


def test_hf_token_never_reaches_the_cdn_across_range_reads_resume_and_retry(private_repo: HubServer):
    hub = private_repo
    art = next(a for a in HFSource().resolve("hf://acme/private").artifacts if a.path == "model.safetensors")
    # The first body breaks: resumed from the cached CDN URL.
    hub.faults.drop_after["model.safetensors"] = 40_000
    hub.faults.statuses["cdn"] = [503]  # one retried request on the CDN
    reader = art.open()
    rng = random.Random(3)
    for _ in range(12):
        off = rng.randrange(len(DATA) - 70_000)
        assert reader.read(off, 60_000) == DATA[off : off + 60_000]
    assert reader.tail(100) == DATA[-100:]
    cdn = hub.requests_to("cdn")
    assert len(cdn) >= 6 and any(e["status"] == 503 for e in cdn) and reader.stats.retries >= 2
    assert all(e["auth"] == f"Bearer {TOKEN}" for e in hub.requests_to("hub", "/resolve/"))
    assert _leaks(hub, (TOKEN,)) == []


def test_stale_cdn_url_goes_back_to_the_origin_with_the_token_and_not_to_the_cdn(private_repo: HubServer):
    hub = private_repo
    art = next(a for a in HFSource().resolve("hf://acme/private").artifacts if a.path == "model.safetensors")
    reader = art.open()
    reader.read(0, 10)
    hub.faults.statuses["cdn"] = [403]  # the signed CDN URL expired: ask the Hub again
    assert reader.read(2_000_000, 10) == DATA[2_000_000:2_000_010]
    assert len(hub.requests_to("hub", "/resolve/")) == 2
    assert _leaks(hub, (TOKEN,)) == []


def test_resumed_pull_never_sends_the_token_to_the_cdn(private_repo: HubServer, tmp_path):
    hub = private_repo
    hub.faults.drop_after["model.safetensors"] = 100_000
    hub.faults.drop_times = 3
    hub.faults.statuses["cdn"] = [502]
    outcome = pull("hf://acme/private", PullOptions(progress=False, to=tmp_path / "dest"))
    assert (tmp_path / "dest" / "model.safetensors").read_bytes() == DATA, outcome.report.verdict
    assert (
        len([e for e in hub.requests_to("cdn") if e["range"] and not e["range"].startswith("bytes=0-")]) >= 3
    )
    assert _leaks(hub, (TOKEN,)) == []


def test_scan_cli_with_token_keeps_it_off_the_cdn(private_repo: HubServer):
    hub = private_repo
    hub.faults.statuses["cdn"] = [500, 429]
    res = CliRunner().invoke(app, ["scan", "hf://acme/private", "-f", "json"])
    assert res.exit_code in (0, 1), res.stderr
    assert hub.requests_to("cdn") and _leaks(hub, (TOKEN,)) == []
    assert TOKEN not in res.output and TOKEN not in res.stderr


@pytest.mark.parametrize("faults", ["none", "drop", "retry"])
def test_url_userinfo_stays_on_its_origin_across_redirects(hub: HubServer, faults: str):
    """http://user:pass@hub/…/resolve/… redirects to the CDN origin: the CDN never sees the Basic credentials."""
    commit = hub.add_repo("acme/public", {"model.safetensors": DATA})
    url = resolve_url(hub.endpoint, "acme/public", commit, "model.safetensors").replace(
        "http://", f"http://{USER}:{PASSWORD}@"
    )
    if faults == "drop":
        hub.faults.drop_after["model.safetensors"] = 30_000
        hub.faults.drop_times = 2
    elif faults == "retry":
        hub.faults.statuses["cdn"] = [503, 504]
    src = URLSource(allow_http=True)
    snap = src.resolve(url)
    reader = snap.artifacts[0].open()
    for off in (0, 1_000_000, 2_400_000, 500_000):
        assert reader.read(off, 50_000) == DATA[off : off + 50_000]
    for _ in range(2):  # fresh readers (the scan opens each file anew) go through the origin again
        r = snap.artifacts[0].open()
        assert r.read(123_456, 1000) == DATA[123_456:124_456]
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert all(e["auth"] == f"Basic {basic}" for e in hub.requests_to("hub"))
    assert _leaks(hub, (basic, PASSWORD)) == []


def test_url_userinfo_scan_and_pull_cli_keep_credentials_off_the_cdn(hub: HubServer, tmp_path):
    commit = hub.add_repo("acme/public", {"model.safetensors": DATA})
    url = resolve_url(hub.endpoint, "acme/public", commit, "model.safetensors").replace(
        "http://", f"http://{USER}:{PASSWORD}@"
    )
    hub.faults.drop_after["model.safetensors"] = 500_000
    res = CliRunner().invoke(app, ["pull", url, "--allow-http", "--to", str(tmp_path / "d")])
    assert res.exit_code in (0, 1), res.stderr
    report = scan_targets([url], ScanOptions(source_options={"allow_http": True}))
    assert not report.errors
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert _leaks(hub, (basic, PASSWORD)) == []
    assert PASSWORD not in res.output + res.stderr


def test_redirect_to_other_scheme_or_port_drops_auth_and_back_to_origin_keeps_it(hub: HubServer):
    """The client itself: auth goes to the credentials' origin only, whatever URL is being requested."""
    commit = hub.add_repo("acme/public", {"model.safetensors": DATA})
    client = HTTPClient(allow_http=True)
    url = resolve_url(hub.endpoint, "acme/public", commit, "model.safetensors")
    auth = {"Authorization": "Bearer hf_clienttesttoken0000000000"}
    with client.request("GET", url, headers={"Range": "bytes=0-9"}, auth_headers=auth, stream=True) as resp:
        cdn_url = resp.url
        assert origin(cdn_url) != origin(url) and resp.status_code == 206
    # Re-requesting the cached CDN URL with the origin's credentials: they stay home.
    with client.request(
        "GET", cdn_url, headers={"Range": "bytes=0-9"}, auth_headers=auth, auth_origin=url, stream=True
    ) as resp:
        assert resp.status_code == 206
    assert not any(e["auth"] for e in hub.requests_to("cdn"))
    r = HTTPRangeReader(url, name="model.safetensors", client=client, size=len(DATA), auth_headers=auth)
    r.read(1_000_000, 10)
    r.read(10, 10)
    assert not any(e["auth"] for e in hub.requests_to("cdn"))
