"""The HTTP Range Reader against the local Hub/CDN server: few requests, right bytes, every fault visible."""

from __future__ import annotations

import hashlib
import random
import time

import pytest

from scanner.io.http_reader import HTTPRangeReader
from scanner.io.http_session import HTTPClient, RetryPolicy, Stats
from scanner.io.reader import ReaderError

from .servers.hf_hub_server import HubServer, resolve_url

DATA = random.Random(7).randbytes(3_000_000)  # LFS-sized: served via the CDN redirect
SMALL = b'{"architectures": ["Tiny"], "hidden": 8}'


def _settled(fn, want, timeout: float = 2.0):
    """The server logs a request after its last write; give the log a moment to catch up."""
    deadline = time.monotonic() + timeout
    while (got := fn()) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return got


def _client(**kw) -> HTTPClient:
    return HTTPClient(
        allow_http=True, retry=RetryPolicy(attempts=3, backoff=0.001), sleep=lambda s: None, **kw
    )


@pytest.fixture
def repo(hub: HubServer) -> tuple[HubServer, str]:
    commit = hub.add_repo("acme/blobs", {"model.bin": DATA, "config.json": SMALL})
    return hub, commit


def _reader(hub: HubServer, commit: str, path: str = "model.bin", **kw) -> HTTPRangeReader:
    size = kw.pop("size", len(DATA) if path == "model.bin" else len(SMALL))
    return HTTPRangeReader(
        resolve_url(hub.endpoint, "acme/blobs", commit, path),
        name=path,
        client=kw.pop("client", None) or _client(),
        size=size,
        **kw,
    )


def test_random_reads_match_and_count_network_bytes(repo):
    hub, commit = repo
    r = _reader(hub, commit)
    rng = random.Random(1)
    for _ in range(15):
        off = rng.randrange(len(DATA))
        n = rng.randrange(1, 5000)
        assert r.read(off, n) == DATA[off : off + n]
    assert r.tail(22) == DATA[-22:]
    assert r.read(len(DATA), 10) == b""
    assert r.bytes_read == _settled(lambda: hub.bytes_sent("cdn"), r.bytes_read)  # bytes on the wire
    assert r.bytes_read < len(DATA)


def test_small_sequential_reads_coalesce_into_few_requests(repo):
    hub, commit = repo
    r = _reader(hub, commit)
    hub.clear_log()
    pos = 0
    while pos < 1_000_000:  # a pickle cursor walking opcodes, 1-40 bytes at a time
        n = (pos * 7) % 40 + 1
        assert r.read(pos, n) == DATA[pos : pos + n]
        pos += n
    gets = hub.requests_to("cdn")
    assert len(gets) <= 12, f"{len(gets)} requests for a sequential 1 MB walk"
    assert r.stats.requests <= 14  # includes the one redirect hop through the hub


def test_redirect_followed_once_then_cdn_url_reused(repo):
    hub, commit = repo
    r = _reader(hub, commit)
    r.read(0, 10)
    r.read(2_000_000, 10)
    r.read(1_000_000, 10)
    assert len(hub.requests_to("hub", "/resolve/")) == 1
    assert len(hub.requests_to("cdn")) == 3
    assert len({e["conn"] for e in hub.requests_to("cdn")}) == 1  # one kept-alive connection


def test_auth_header_never_reaches_the_cdn(repo):
    hub, commit = repo
    r = _reader(hub, commit, auth_headers={"Authorization": "Bearer hf_secretsecretsecretsecret"})
    r.read(0, 100)
    assert all(e["auth"] for e in hub.requests_to("hub"))
    assert not any(e["auth"] for e in hub.requests_to("cdn"))


def test_dropped_connection_is_resumed(repo):
    hub, commit = repo
    hub.faults.drop_after["model.bin"] = 100_000
    hub.faults.drop_times = 2
    r = _reader(hub, commit)
    data = b"".join(r.stream())
    assert data == DATA
    assert r.stats.retries >= 2
    assert r.verified == {}  # no claim given: nothing to verify against
    assert r.sha256() == hashlib.sha256(DATA).hexdigest()


def test_connection_keeps_dropping_is_a_clear_error(repo):
    hub, commit = repo
    hub.faults.drop_after["model.bin"] = 1000
    hub.faults.drop_times = 100
    r = _reader(hub, commit, body_retries=2)
    with pytest.raises(ReaderError, match="connection dropped"):
        r.read(0, 200_000)
    assert [p.rule_id for p in r.integrity_problems] == ["REGISTRY-INCOMPLETE-READ"]


def test_transient_500_retried_permanent_500_reported(repo):
    hub, commit = repo
    hub.faults.error500["cdn"] = 2
    r = _reader(hub, commit)
    assert r.read(5, 5) == DATA[5:10]
    hub.faults.error500["cdn"] = -1
    r2 = _reader(hub, commit)
    with pytest.raises(ReaderError, match="500"):
        r2.read(0, 10)
    assert r2.integrity_problems[0].rule_id == "REGISTRY-INCOMPLETE-READ"


def test_size_disagreeing_with_claim(repo):
    hub, commit = repo
    hub.faults.wrong_size.add("model.bin")
    r = _reader(hub, commit)
    with pytest.raises(ReaderError, match="registry claims"):
        r.read(0, 10)
    assert r.integrity_problems[0].rule_id == "REGISTRY-SIZE-MISMATCH"


def test_wrong_content_range_refused(repo):
    hub, commit = repo
    hub.faults.bad_content_range = True
    with pytest.raises(ReaderError, match="answered bytes|Content-Range"):
        _reader(hub, commit).read(100, 10)


def test_range_ignored_small_file_is_taken_whole(repo):
    hub, commit = repo
    hub.faults.ignore_range = True
    r = _reader(
        hub,
        commit,
        path="config.json",
        expected_git_sha1=hashlib.sha1(b"blob %d\0" % len(SMALL) + SMALL).hexdigest(),
    )
    assert r.read(3, 5) == SMALL[3:8]
    assert r.read(10, 5) == SMALL[10:15]
    deadline = time.monotonic() + 5  # the server logs a request after it has sent the body: wait for it
    while not hub.requests_to("hub") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(hub.requests_to("hub")) == 1
    assert r.verified.get("git-sha1")


def test_range_ignored_large_file_refused_not_downloaded(repo):
    hub, commit = repo
    hub.faults.ignore_range = True
    r = _reader(hub, commit, full_body_limit=1_000_000)
    with pytest.raises(ReaderError, match="ignores HTTP Range"):
        r.read(0, 100)
    assert r.bytes_read == 0
    # A deliberate whole-file stream (a download) is still possible through such a server.
    assert b"".join(_reader(hub, commit, full_body_limit=1_000_000).stream()) == DATA


def test_tampered_bytes_detected_when_whole_file_passes(repo):
    hub, commit = repo
    hub.faults.tamper.add("model.bin")
    r = _reader(hub, commit, expected_sha256=hashlib.sha256(DATA).hexdigest())
    data = b"".join(r.stream())
    assert len(data) == len(DATA) and data != DATA
    assert [p.rule_id for p in r.integrity_problems] == ["REGISTRY-DIGEST-MISMATCH"]
    r2 = _reader(
        hub,
        commit,
        path="config.json",
        expected_git_sha1=hashlib.sha1(b"blob %d\0" % len(SMALL) + SMALL).hexdigest(),
    )
    hub.faults.tamper.add("config.json")
    r2.read(0, 4)  # a small file arrives whole in its first block
    assert r2.integrity_problems and r2.integrity_problems[0].evidence["algorithm"] == "git-sha1"


def test_slow_server_times_out_with_clear_error(repo):
    hub, commit = repo
    hub.faults.slow = 0.5
    r = _reader(hub, commit, client=_client(timeout=(0.2, 0.2)))
    with pytest.raises(ReaderError, match="timed out|connection"):
        r.read(0, 10)
    hub.faults.slow = 0.05
    assert _reader(hub, commit, client=_client(timeout=(2, 2))).read(0, 10) == DATA[:10]


def test_unknown_size_probe_learns_size_and_keeps_first_block(repo):
    hub, commit = repo
    url = resolve_url(hub.endpoint, "acme/blobs", commit, "model.bin")
    stats = Stats()
    r = HTTPRangeReader(url, name="model.bin", client=_client(), stats=stats)
    assert r.size == len(DATA)
    before = stats.requests
    assert r.head(1000) == DATA[:1000]
    assert stats.requests == before


def test_fuzz_random_faults_never_return_wrong_bytes(repo):
    """Whatever the server does, a read returns the right bytes or raises ReaderError."""
    hub, commit = repo
    rng = random.Random(3)
    for i in range(25):
        hub.faults.drop_after = {"model.bin": rng.randrange(1, 200_000)} if rng.random() < 0.5 else {}
        hub.faults.drop_times = rng.randrange(1, 6)
        hub._drops_done.clear()
        hub.faults.error500 = {"cdn": rng.choice([0, 1, 2, -1])}
        hub.faults.bad_content_range = rng.random() < 0.15
        hub.faults.ignore_range = rng.random() < 0.15
        r = _reader(hub, commit, body_retries=3, full_body_limit=rng.choice([10, 10_000_000]))
        off, n = rng.randrange(len(DATA)), rng.randrange(1, 300_000)
        try:
            assert r.read(off, n) == DATA[off : off + n], i
        except ReaderError:
            pass
