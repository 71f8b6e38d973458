"""Hub API answers are bounded: a huge repository listing is refused with exit 2, never parsed into gigabytes.

huggingface_hub reads each API answer whole and parses it into objects (~20x its size): a 28 MB
``model_info`` listing peaked at 620 MB. Every answer now passes a byte cap (as sent, and once decoded from
gzip/deflate), and the client's agent-registry lookup (an extra request, an unbounded parse of a cached file
in ``HF_HOME``) is skipped.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests import bombs

from .raw_server import RawServer, answer, ranged

pytestmark = pytest.mark.slow

GOAL = 150 << 20
MODELWARD = str(Path(sys.executable).with_name("modelward"))
COMMIT = "1" * 40


def listing(n: int) -> bytes:
    sib = ",".join(
        json.dumps({"rfilename": f"d/f{i:07d}.json", "size": 2, "blobId": f"{i:040x}"}) for i in range(n)
    )
    return f'{{"id":"a/b","sha":"{COMMIT}","siblings":[{sib}]}}'.encode()


def hub(info: bytes, mode: str = "plain") -> RawServer:
    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        if p.startswith("/api/agent-harnesses"):
            answer(c, 200, [], b'{"harnesses": []}')
        elif p.startswith("/api/models/a/b/tree"):
            answer(c, 200, [("Content-Type", "application/json")], b"[]")
        elif p.startswith("/api/models/a/b"):
            if mode == "gzip":
                answer(c, 200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], info)
            elif mode == "chunked":
                c.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                for i in range(0, len(info), 1 << 16):
                    part = info[i : i + (1 << 16)]
                    c.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                c.sendall(b"0\r\n\r\n")
            else:
                answer(c, 200, [("Content-Type", "application/json")], info)
        else:
            ranged(c, h, b"{}")

    return RawServer(handle)


@pytest.fixture
def small_cap(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_HUB_MAX_ANSWER_BYTES", str(256 << 10))
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "6")


@pytest.mark.parametrize("mode", ["plain", "chunked"])
def test_listing_over_the_cap_is_exit_2_naming_the_limit(small_cap: None, monkeypatch, mode: str) -> None:  # type: ignore[no-untyped-def]
    srv = hub(listing(5000), mode)  # ~450 kB
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    res = CliRunner().invoke(app, ["scan", "hf://a/b", "-f", "json"])
    assert res.exit_code == 2, res.output
    assert "larger than" in res.stderr or "declares" in res.stderr
    assert "MODELWARD_HUB_MAX_ANSWER_BYTES" in res.stderr or "limit" in res.stderr


def test_gzip_bomb_listing_is_never_inflated_past_the_cap(small_cap: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bomb = listing(1)[:-2] + b"," + b" " * (40 << 20) + b"]}"  # 40 MB of JSON, ~40 kB of gzip
    srv = hub(gzip.compress(bomb, 9), "gzip")
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    res = CliRunner().invoke(app, ["scan", "hf://a/b", "-f", "json"])
    assert res.exit_code == 2, res.output
    assert "once decoded" in res.stderr


def test_small_gzip_listing_is_decoded_and_scanned(small_cap: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    info = json.dumps(
        {"id": "a/b", "sha": COMMIT, "siblings": [{"rfilename": "c.json", "size": 2, "blobId": "0" * 40}]}
    ).encode()
    srv = hub(gzip.compress(info), "gzip")
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    res = CliRunner().invoke(app, ["scan", "hf://a/b", "-f", "json"])
    # the served bytes are not the claimed blob: the listing was decoded, read and the claim checked
    assert res.exit_code == 1 and "REGISTRY-DIGEST-MISMATCH" in res.stdout, res.output


def test_real_size_listing_stays_under_the_memory_goal(hf_env: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    srv = hub(listing(300_000))  # 28 MB: 620 MB peak before
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "20")
    # one file selected: a regression fails on memory and exit code, it does not fetch 300k files
    got = bombs.cli_peak(["scan", "hf://a/b", "-f", "json", "--include", "d/f0000000.json"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)


def test_a_huge_cached_agent_registry_is_never_parsed(hf_env: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """huggingface_hub parsed ``HF_HOME/.agent_harnesses.json`` whatever its size on every call (600 MB)."""
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY")  # users' default: the User-Agent names a detected agent
    hf_env.mkdir(parents=True, exist_ok=True)
    big = b'{"harnesses":[' + b",".join(b'{"name":"x%d","env":{"A":"*"}}' % i for i in range(800_000)) + b"]}"
    (hf_env / ".agent_harnesses.json").write_bytes(big)
    info = json.dumps({"id": "a/b", "sha": COMMIT, "siblings": []}).encode()
    srv = hub(info)
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    got = bombs.cli_peak(["scan", "hf://a/b", "-f", "json"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    _code, peak, _wall = got
    assert peak < GOAL, peak >> 20
    assert not [p for _m, p, _h in srv.log if "agent-harnesses" in p]
