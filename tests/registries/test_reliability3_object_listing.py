"""gs:// and az:// listings are streamed and stopped past ``MAX_STREAMED_OBJECTS``, like S3's.

gcsfs's and adlfs's ``find`` gathered every page of a listing (up to the 1M-object cap) before modelward looked
at it, so a huge or endless listing grew memory until the network budget ran out. Both are now walked page by
page (gcsfs ``_call_list_objects``, the Azure SDK's ``list_blobs``) through the helper S3 uses.

GCS: a small JSON-API server (``objects.list``/``objects.get``) on loopback, fake-gcs-server is not packaged
here. Azure: Azurite (``npm install azurite``; found on PATH as ``azurite-blob``) for a real listing, and a raw
server for an endless one.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.sources import object_store
from tests import bombs

from .conftest import free_port
from .raw_server import RawServer, answer

pytestmark = pytest.mark.slow

GOAL = 150 << 20
MODELWARD = str(Path(sys.executable).with_name("modelward"))
PER = 1000


# --- GCS: objects.list pages ---------------------------------------------------------------------------------


def _gcs_item(n: int) -> dict[str, str]:
    return {
        "kind": "storage#object",
        "name": f"p/d/f{n:09d}.json",
        "bucket": "b",
        "size": "2",
        "generation": "1700000000000000",
        "metageneration": "1",
        "md5Hash": "CY9rzUYh03PK3k6DJie09g==",
        "crc32c": "AAAAAA==",
        "etag": "CAE=",
        "updated": "2024-01-01T00:00:00.000Z",
        "timeCreated": "2024-01-01T00:00:00.000Z",
    }


def fake_gcs(pages: int | None, repeat: bool = False) -> RawServer:
    """``objects.list`` with ``pages`` pages of 1000 objects (None: endless; ``repeat``: the same page and
    token forever); ``p`` is a prefix, not an object; every object read is a 404."""

    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        url = urlsplit(p)
        q = parse_qs(url.query)
        path = unquote(url.path)
        if m == "GET" and path.rstrip("/").endswith("/b/b/o"):
            i = 0 if repeat else int(q.get("pageToken", ["0"])[0])
            size = min(PER, int(q.get("maxResults", [str(PER)])[0]))
            doc: dict[str, object] = {
                "kind": "storage#objects",
                "items": [_gcs_item(i * PER + j) for j in range(size)],
            }
            if pages is None or i + 1 < pages:
                doc["nextPageToken"] = str(i + 1) if not repeat else "0"
            answer(c, 200, [("Content-Type", "application/json")], json.dumps(doc).encode())
        elif m == "GET" and path.endswith("/b/b"):
            answer(c, 200, [("Content-Type", "application/json")], b'{"kind":"storage#bucket","name":"b"}')
        else:
            answer(
                c,
                404,
                [("Content-Type", "application/json")],
                b'{"error":{"code":404,"message":"No such object"}}',
            )

    return RawServer(handle)


@pytest.fixture
def gcs_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("gcsfs")
    for k, v in {
        "NO_GCE_CHECK": "true",  # no metadata-server probe: the test has no Google credentials
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json"),
        "MODELWARD_NETWORK_SECONDS": "60",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")

    def start(pages: int | None, repeat: bool = False) -> RawServer:
        srv = fake_gcs(pages, repeat)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", srv.url)
        return srv

    return start


def _listed(srv: RawServer) -> int:
    return sum(1 for m, p, _h in srv.log if urlsplit(p).path.rstrip("/").endswith("/o") and "pageToken" in p)


@pytest.mark.parametrize(
    "pages,repeat", [(60, False), (None, False), (None, True)], ids=["60k-objects", "endless", "same-page"]
)
def test_gcs_huge_listing_is_refused_within_the_memory_goal(gcs_env, pages, repeat) -> None:  # type: ignore[no-untyped-def]
    srv = gcs_env(pages, repeat)
    got = bombs.cli_peak(["scan", "gs://b/p", "-f", "json", "--include", "none"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)
    assert _listed(srv) <= object_store.MAX_STREAMED_OBJECTS // PER + 3  # stopped while listing


def test_gcs_listing_over_the_cap_names_the_limit(gcs_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(object_store, "MAX_STREAMED_OBJECTS", 2500)
    srv = gcs_env(5)
    res = CliRunner().invoke(app, ["scan", "gs://b/p", "-f", "json", "--include", "none"])
    assert res.exit_code == 2 and "more than 2500 objects" in res.stderr, res.output
    assert _listed(srv) <= 3


def test_gcs_listing_under_the_cap_lists_every_object(gcs_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(object_store, "MAX_STREAMED_OBJECTS", 2500)
    gcs_env(2)
    snap = object_store.ObjectStoreSource().resolve("gs://b/p")
    assert len(snap.artifacts) == 2000
    a = snap.artifacts[0]
    assert a.path == "d/f000000000.json" and a.size == 2


# --- Azure: Azurite, and a raw List Blobs server -------------------------------------------------------------

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azure_conn(url: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={url}/{ACCOUNT};"
    )


def _blob_page(i: int, pages: int | None, url: str) -> bytes:
    blobs = "".join(
        f"<Blob><Name>p/d/f{i * PER + j:09d}.json</Name><Properties>"
        f"<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified><Etag>0x8DC{j:013X}</Etag>"
        f"<Content-Length>2</Content-Length><Content-Type>application/json</Content-Type>"
        f"<BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>"
        for j in range(PER)
    )
    more = pages is None or i + 1 < pages
    return (
        f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{url}/{ACCOUNT}/" '
        f'ContainerName="c"><Prefix>p/</Prefix><MaxResults>5000</MaxResults><Blobs>{blobs}</Blobs>'
        f"<NextMarker>{i + 1 if more else ''}</NextMarker></EnumerationResults>"
    ).encode()


def fake_azure(pages: int | None) -> RawServer:
    holder: list[str] = []

    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        q = parse_qs(urlsplit(p).query)
        if m == "GET" and q.get("comp") == ["list"]:
            page = _blob_page(int(q.get("marker", ["0"])[0]), pages, holder[0])
            answer(c, 200, [("Content-Type", "application/xml"), ("x-ms-version", "2021-08-06")], page)
        else:  # the prefix itself is no blob
            answer(c, 404, [("x-ms-error-code", "BlobNotFound"), ("x-ms-version", "2021-08-06")], b"")

    srv = RawServer(handle)
    holder.append(srv.url)
    return srv


@pytest.fixture
def az_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    pytest.importorskip("adlfs")
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "60")
    for k in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(k, raising=False)

    def start(url: str) -> None:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _azure_conn(url))

    return start


def test_azure_endless_listing_is_refused_within_the_memory_goal(az_env) -> None:  # type: ignore[no-untyped-def]
    srv = fake_azure(None)  # before: 187 MB, then out of time at network_seconds
    az_env(srv.url)
    got = bombs.cli_peak(["scan", "az://c/p", "-f", "json", "--include", "none"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    listed = [p for m, p, _h in srv.log if "comp=list" in p]
    assert code == 2 and peak < GOAL, (code, peak >> 20)
    assert len(listed) <= object_store.MAX_STREAMED_OBJECTS // PER + 3


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("azurite-blob")
    if exe is None:
        pytest.skip("azurite is not installed (npm install -g azurite)")
    port = free_port()
    where = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            exe,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
        ]
        + ["--skipApiVersionCheck"],  # the Azure SDK may be newer than Azurite
        cwd=where,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.skip("azurite did not start")
        url = f"http://127.0.0.1:{port}"
        from azure.storage.blob import BlobServiceClient

        svc = BlobServiceClient.from_connection_string(_azure_conn(url))
        cc = svc.create_container("zoo")
        for i in range(30):
            cc.upload_blob(f"p/d/f{i:03d}.json", b"{}")
        cc.upload_blob("p/d/sub/x.json", b"[]")
        cc.upload_blob("other/y.json", b"[]")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_azurite_listing_lists_every_blob_under_the_prefix(az_env, azurite: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    az_env(azurite)
    snap = object_store.ObjectStoreSource().resolve("az://zoo/p")
    paths = sorted(a.path for a in snap.artifacts)
    assert paths == [f"d/f{i:03d}.json" for i in range(30)] + ["d/sub/x.json"]
    assert all(a.size == 2 for a in snap.artifacts) and all(a.info.get("etag") for a in snap.artifacts)
    # the listing really was streamed (adlfs's gather-everything ``find`` is not used)
    monkeypatch.setattr(object_store, "MAX_STREAMED_OBJECTS", 20)
    with pytest.raises(object_store.SourceError, match="more than 20 objects"):
        object_store.ObjectStoreSource().resolve("az://zoo/p")


def test_azurite_scan_reads_the_listed_blobs(az_env, azurite: str) -> None:  # type: ignore[no-untyped-def]
    az_env(azurite)
    res = CliRunner().invoke(app, ["scan", "az://zoo/p/d/sub", "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [f["path"] for f in doc["files"]] == ["az://zoo/p/d/sub/x.json"], doc
