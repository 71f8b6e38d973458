"""An S3 prefix with a huge (or endless) listing is refused while it is listed, within the memory goal.

fsspec's ``find`` collected the whole listing (up to the 1M-object cap) before modelward looked at it: 60k
objects peaked at 220 MB and an endless paginator grew until the network budget ran out. The S3 listing is
now streamed page by page, slimmed, and stopped past ``MAX_STREAMED_OBJECTS``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.sources import object_store
from tests import bombs

from .raw_server import RawServer, answer

pytest.importorskip("s3fs")
pytestmark = pytest.mark.slow

GOAL = 150 << 20
MODELWARD = str(Path(sys.executable).with_name("modelward"))
PER = 1000
_NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _page(i: int, pages: int | None) -> bytes:
    items = "".join(
        f"<Contents><Key>p/d/f{i * PER + j:09d}.json</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
        f"<ETag>&quot;{j:032x}&quot;</ETag><Size>2</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for j in range(PER)
    )
    more = pages is None or i + 1 < pages
    nxt = f"<NextContinuationToken>{i + 1}</NextContinuationToken><IsTruncated>true</IsTruncated>"
    tail = nxt if more else "<IsTruncated>false</IsTruncated>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult {_NS}><Name>b</Name><Prefix>p/</Prefix>'
        f"<KeyCount>{PER}</KeyCount><MaxKeys>1000</MaxKeys>{tail}{items}</ListBucketResult>"
    ).encode()


def fake_s3(pages: int | None) -> RawServer:
    """ListObjectsV2 with ``pages`` pages of 1000 objects (None: it never ends); every object read is a 404."""

    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        q = parse_qs(urlsplit(p).query)
        if m == "GET" and "list-type" in q and q.get("delimiter", [""])[0] == "/":
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult {_NS}><Name>b</Name><Prefix>p/</Prefix>'
                "<KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"
                "<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes></ListBucketResult>"
            ).encode()
            answer(c, 200, [("Content-Type", "application/xml")], body)
        elif m == "GET" and "list-type" in q:
            answer(
                c,
                200,
                [("Content-Type", "application/xml")],
                _page(int(q.get("continuation-token", ["0"])[0]), pages),
            )
        else:
            answer(c, 404, [], b"")

    return RawServer(handle)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    for k, v in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "MODELWARD_NETWORK_SECONDS": "60",
    }.items():
        monkeypatch.setenv(k, v)

    def start(pages: int | None) -> RawServer:
        srv = fake_s3(pages)
        monkeypatch.setenv("AWS_ENDPOINT_URL", srv.url)
        return srv

    return start


@pytest.mark.parametrize("pages", [60, None], ids=["60k-objects", "endless"])
def test_huge_listing_is_refused_within_the_memory_goal(s3_env, pages: int | None) -> None:  # type: ignore[no-untyped-def]
    srv = s3_env(pages)
    # --include: a regression fails on memory and exit code at once instead of reading 60k objects
    got = bombs.cli_peak(["scan", "s3://b/p", "-f", "json", "--include", "none"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)
    listed = [p for m, p, _h in srv.log if "list-type" in p]
    assert len(listed) <= object_store.MAX_STREAMED_OBJECTS // PER + 3  # stopped while listing


def test_listing_over_the_cap_names_the_limit(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(object_store, "MAX_STREAMED_OBJECTS", 2500)
    s3_env(5)
    res = CliRunner().invoke(app, ["scan", "s3://b/p", "-f", "json", "--include", "none"])
    assert res.exit_code == 2 and "more than 2500 objects" in res.stderr, res.output


def test_listing_under_the_cap_lists_every_object(s3_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(object_store, "MAX_STREAMED_OBJECTS", 2500)
    s3_env(2)
    snap = object_store.ObjectStoreSource().resolve("s3://b/p")
    assert len(snap.artifacts) == 2000
    a = snap.artifacts[0]
    assert a.path == "d/f000000000.json" and a.size == 2 and a.info["etag"] == "0" * 32
