"""One retry policy for every request: Hub API, resolve, CDN and plain URLs, against a fault-injecting Hub.

The first N requests of a kind ("api", "resolve", "cdn") answer an injected status; the
server logs every request with its arrival time, so the tests count attempts and measure
the pauses the client made.
"""

from __future__ import annotations

import email.utils
import time

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_session import HTTPClient, HTTPFetchError
from scanner.io.retry import RetriesExhausted, RetryPolicy, call_with_retries, server_wait
from scanner.pipeline import ScanOptions, scan_targets
from scanner.pull import PullError, PullOptions, pull
from scanner.sources.hf import HFSource

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer, resolve_url

CONFIG = b'{"model_type": "tiny"}'
WEIGHTS = safetensors_bytes({"w": 20_000})  # LFS: resolve -> 302 -> CDN


@pytest.fixture
def repo(hub: HubServer) -> HubServer:
    hub.add_repo("acme/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    return hub


def _kind_requests(hub: HubServer, kind: str) -> list[dict]:
    if kind == "cdn":
        return hub.requests_to("cdn")
    if kind == "api":
        return hub.requests_to("hub", "/api/")
    return hub.requests_to("hub", "/resolve/")


# ---- the policy itself ---------------------------------------------------------------------------------


def test_server_wait_parses_retry_after_and_ratelimit():
    now = time.time()
    assert server_wait({"Retry-After": "7"}) == 7
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= server_wait({"retry-after": date}, now=now) <= 30
    assert server_wait({"Retry-After": email.utils.formatdate(now - 100, usegmt=True)}, now=now) == 0
    assert (
        server_wait({"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})
        == 55
    )
    assert server_wait({"RateLimit": '"api";r=12;t=55'}) is None  # requests left: no reason to wait
    assert server_wait({"RateLimit-Reset": "9"}) == 9
    assert 19 <= server_wait({"RateLimit-Reset": str(int(now) + 20)}, now=now) <= 20  # epoch form
    assert server_wait({"Retry-After": "soon"}) is None and server_wait({}) is None


def test_delay_is_capped_jittered_and_grows():
    p = RetryPolicy(attempts=5, backoff=1.0, max_backoff=4.0, max_wait=10.0)
    assert all(0.5 <= p.delay(0) <= 1.0 for _ in range(50))
    assert all(2.0 <= p.delay(2) <= 4.0 for _ in range(50))
    assert all(2.0 <= p.delay(9) <= 4.0 for _ in range(50))  # capped at max_backoff
    assert 10.0 <= p.delay(0, {"Retry-After": "3600"}) <= 10.5  # the server's wish, capped
    assert 3.0 <= p.delay(0, {"Retry-After": "3"}) <= 3.5  # never earlier than asked


def test_call_with_retries_counts_and_stops_at_the_deadline():
    calls = []

    def flaky():
        calls.append(1)
        raise ConnectionError("boom")

    pol = RetryPolicy(attempts=4, backoff=0.0, max_wait=5.0)
    with pytest.raises(RetriesExhausted, match="4 tries") as ei:
        call_with_retries(
            flaky,
            policy=pol,
            transient=lambda e: (True, 503, None),
            describe=lambda e, n: f"{n} tries",
            sleep=lambda s: None,
        )
    assert len(calls) == 4 and ei.value.attempts == 4 and ei.value.status == 503
    calls.clear()
    with pytest.raises(RetriesExhausted, match="deadline"):
        call_with_retries(
            flaky,
            policy=pol,
            transient=lambda e: (True, 429, {"Retry-After": "5"}),
            describe=lambda e, n: f"{n} tries",
            deadline=time.monotonic() + 1,
            sleep=lambda s: None,
        )
    assert len(calls) == 1  # waiting 5 s would pass the deadline: stop now
    calls.clear()
    with pytest.raises(ConnectionError):
        call_with_retries(
            flaky,
            policy=pol,
            transient=lambda e: (False, 404, None),
            describe=lambda e, n: "",
            sleep=lambda s: None,
        )
    assert len(calls) == 1


# ---- every kind of request, every transient status ------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
@pytest.mark.parametrize("kind", ["api", "resolve", "cdn"])
def test_transient_status_is_retried_everywhere(repo: HubServer, kind: str, status: int):
    hub = repo
    hub.faults.statuses[kind] = [status, status]
    report = scan_targets(["hf://acme/tiny"], ScanOptions())
    assert not report.errors, report.errors
    assert {f.path.rsplit("/", 1)[-1]: f.format for f in report.files}["model.safetensors"] == "safetensors"
    failed = [e for e in _kind_requests(hub, kind) if e["status"] == status]
    assert len(failed) == 2
    assert not any(
        f.rule_id in ("FILE-READ-ERROR", "REGISTRY-INCOMPLETE-READ") for f in report.all_findings()
    )


@pytest.mark.parametrize("kind", ["api", "resolve", "cdn"])
def test_retry_after_is_respected(repo: HubServer, kind: str):
    hub = repo
    hub.faults.statuses[kind] = [429]
    hub.faults.status_headers = {"Retry-After": "1"}
    report = scan_targets(["hf://acme/tiny"], ScanOptions())
    assert not report.errors, report.errors
    reqs = _kind_requests(hub, kind)
    i = next(n for n, e in enumerate(reqs) if e["status"] == 429)
    gap = reqs[i + 1]["t"] - reqs[i]["t"]
    assert 0.95 <= gap <= 5.0, gap


@pytest.mark.slow
def test_ratelimit_header_and_http_date_are_respected(repo: HubServer):
    hub = repo
    hub.faults.statuses["api"] = [429, 503]
    hub.faults.status_headers = {
        "RateLimit": '"api";r=0;t=1',
        "RateLimit-Policy": '"fixed window";"api";q=5;w=300',
    }
    t0 = time.monotonic()
    HFSource().resolve("hf://acme/tiny")
    assert time.monotonic() - t0 >= 1.9  # two pauses of 1 s, as the server asked
    hub.faults.statuses["cdn"] = [503]
    hub.faults.status_headers = {"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)}
    client = HTTPClient(allow_http=True)
    url = resolve_url(
        hub.endpoint, "acme/tiny", HFSource().resolve("hf://acme/tiny").resolved, "model.safetensors"
    )
    t0 = time.monotonic()
    with client.request("GET", url, headers={"Range": "bytes=0-7"}, stream=True) as resp:
        assert resp.status_code == 206
    assert time.monotonic() - t0 >= 0.9  # an HTTP-date a second or two ahead (whole seconds)


def test_server_wait_is_capped(repo: HubServer, monkeypatch: pytest.MonkeyPatch):
    hub = repo
    monkeypatch.setenv("MODELWARD_HTTP_MAX_WAIT", "0.2")
    hub.faults.statuses["api"] = [429]
    hub.faults.status_headers = {"Retry-After": "3600"}
    t0 = time.monotonic()
    HFSource().resolve("hf://acme/tiny")
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("kind", ["api", "resolve", "cdn"])
def test_no_retry_on_what_cannot_succeed(repo: HubServer, kind: str, status: int):
    hub = repo
    hub.faults.statuses[kind] = [status] * 5
    res = CliRunner().invoke(app, ["scan", "hf://acme/tiny"])
    assert res.exit_code == 2, res.output
    assert "error:" in res.stderr and "Traceback" not in res.output
    refused = [e["path"] for e in _kind_requests(hub, kind) if e["status"] == status]
    assert refused and len(refused) == len(set(refused)), refused  # one request per URL: never retried


def test_exhausted_retries_name_url_status_and_attempts_and_exit_2(repo: HubServer, monkeypatch, tmp_path):
    hub = repo
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "3")
    for kind, cmd in [
        ("api", "scan"),
        ("cdn", "scan"),
        ("resolve", "scan"),
        ("api", "pull"),
        ("cdn", "pull"),
    ]:
        hub.clear_log()
        hub.faults.statuses[kind] = [503] * 3
        args = [cmd, "hf://acme/tiny"] + (["--to", str(tmp_path / f"d-{kind}")] if cmd == "pull" else [])
        res = CliRunner().invoke(app, args)
        hub.faults.statuses.clear()
        assert res.exit_code == 2, (kind, cmd, res.output)
        err = " ".join(res.stderr.split())
        assert "error:" in err and "503" in err and "after 3 attempt" in err, (kind, cmd, err)
        assert "127.0.0.1" in err and "cdnsignature" not in err  # the URL, redacted
        assert len([e for e in _kind_requests(hub, kind) if e["status"] == 503]) == 3


def test_connection_refused_is_retried_then_named(hf_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "2")
    from .conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/model.safetensors"
    client = HTTPClient(allow_http=True)
    with pytest.raises(HTTPFetchError, match=r"connection failed after 2 attempt") as ei:
        client.request("GET", url)
    assert "127.0.0.1" in str(ei.value)
    res = CliRunner().invoke(app, ["scan", url, "--allow-http"])
    assert res.exit_code == 2 and "error:" in res.stderr
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    res = CliRunner().invoke(app, ["scan", "hf://acme/tiny"])
    assert res.exit_code == 2 and "after 2 attempt" in " ".join(res.stderr.split())
    with pytest.raises(PullError):
        pull("hf://acme/tiny", PullOptions(progress=False))


def test_check_retries_then_exits_2_with_the_same_message(repo: HubServer, monkeypatch, tmp_path):
    hub = repo
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "3")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "modelward.toml").write_text('policy = "default"\n[models]\ntiny = "hf://acme/tiny"\n')
    runner = CliRunner()
    res = runner.invoke(app, ["lock", "--project", str(proj)])
    assert res.exit_code == 0, res.stderr
    hub.faults.statuses = {"api": [503, 429], "cdn": [502, 500]}  # transient: retried, check passes
    res = runner.invoke(app, ["check", "--project", str(proj)])
    assert res.exit_code == 0, res.stderr + res.output
    for kind in ("api", "cdn"):
        hub.faults.statuses = {kind: [503] * 3}
        # --no-cache: an unchanged project is otherwise judged from cached results without touching the CDN
        res = runner.invoke(app, ["check", "--project", str(proj), "--no-cache"])
        err = " ".join(res.stderr.split())
        assert res.exit_code == 2, (kind, res.output)
        assert "503" in err and "after 3 attempt" in err, (kind, err)


def test_org_listing_follows_the_same_policy(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    from scanner.audit.hub_org import expand_org
    from scanner.sources.base import SourceError

    for i in range(3):
        hub.add_repo(f"acme/m{i}", {"config.json": CONFIG})
    hub.faults.statuses["api"] = [503, 429]
    assert expand_org("hf://acme") == ["hf://acme/m0", "hf://acme/m1", "hf://acme/m2"]
    assert len([e for e in hub.requests_to("hub", "/api/models") if e["status"] in (503, 429)]) == 2
    monkeypatch.setenv("MODELWARD_HTTP_ATTEMPTS", "2")
    hub.faults.statuses["api"] = [502, 502]
    with pytest.raises(SourceError, match=r"502 .*after 2 attempt"):
        expand_org("hf://acme")
    hub.faults.statuses["api"] = [404]
    hub.clear_log()
    with pytest.raises(SourceError):
        expand_org("hf://acme")
    assert len(hub.requests_to("hub", "/api/models")) == 1  # never retried
