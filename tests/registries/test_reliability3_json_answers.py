"""A JSON answer's byte cap bounds what is read, not what parsing it costs: the parse is bounded too.

``json.loads`` turns 3 bytes (``{},``) into ~75 bytes of objects: the MLflow source took answers up to 16 MB
(``[[]],`` x 3M peaked near 600 MB), OCI manifests up to 4 MB (~140 MB parsed). ``scanner.io.json_budget``
computes an upper bound of the parse's cost from the raw bytes and refuses past its budget, failing closed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io import json_budget
from scanner.sources import mlflow_source
from tests import bombs

from .raw_server import RawServer, answer

GOAL = 150 << 20
MODELWARD = str(Path(sys.executable).with_name("modelward"))
RUN = "0123456789abcdef0123456789abcdef"


def _bomb(shape: bytes, size: int) -> bytes:
    """``{"files":[], "x":[shape,shape,…]}`` of about ``size`` bytes: a listing a server could send."""
    n = size // (len(shape) + 1)
    return b'{"files":[],"x":[' + b",".join([shape] * n) + b"]}"


def _listing(n: int) -> bytes:
    files = [{"path": f"m/f{i:07d}.bin", "is_dir": False, "file_size": 123456} for i in range(n)]
    return json.dumps({"files": files}).encode()


def mlflow_server(listing: bytes) -> RawServer:
    """runs/get names a proxied artifact root; the root's listing is ``listing``."""

    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        path = urlsplit(p).path
        if path == "/api/2.0/mlflow/runs/get":
            doc = {"run": {"info": {"artifact_uri": f"mlflow-artifacts:/0/{RUN}/artifacts"}}}
            answer(c, 200, [("Content-Type", "application/json")], json.dumps(doc).encode())
        elif path == "/api/2.0/mlflow-artifacts/artifacts":
            answer(c, 200, [("Content-Type", "application/json")], listing)
        else:
            answer(
                c, 404, [("Content-Type", "application/json")], b'{"error_code":"RESOURCE_DOES_NOT_EXIST"}'
            )

    return RawServer(handle)


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "30")

    def start(listing: bytes) -> RawServer:
        srv = mlflow_server(listing)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", srv.url)
        return srv

    return start


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    [b"[[]]", b"{}", b'"\\u1234"', b'{"a":1}'],
    ids=["nested-lists", "empty-objects", "strings", "pairs"],
)
def test_mlflow_listing_that_explodes_when_parsed_is_refused_within_the_memory_goal(
    mlflow_env, shape
) -> None:  # type: ignore[no-untyped-def]
    mlflow_env(_bomb(shape, mlflow_source.MAX_JSON_BYTES - 64))  # the most the byte cap lets through
    got = bombs.cli_peak(["scan", f"runs:/{RUN}/", "-f", "json"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)  # before: 16 MB of [[]] peaked at ~600 MB


def test_mlflow_costly_answer_names_the_limit(mlflow_env) -> None:  # type: ignore[no-untyped-def]
    mlflow_env(_bomb(b"{}", 2 << 20))
    res = CliRunner().invoke(app, ["scan", f"runs:/{RUN}/", "-f", "json"])
    assert res.exit_code == 2 and "once parsed" in res.stderr, res.output


@pytest.mark.slow
def test_mlflow_large_real_listing_still_resolves(mlflow_env) -> None:  # type: ignore[no-untyped-def]
    mlflow_env(_listing(40_000))  # 40k files in one folder: ~3 MB of listing
    snap = mlflow_source.MLflowSource().resolve(f"runs:/{RUN}/")
    assert len(snap.artifacts) == 40_000 and snap.artifacts[0].path == "f0000000.bin"


@pytest.mark.parametrize(
    "data",
    [
        b"[" + b",".join([b"[[]]"] * 5000) + b"]",
        b'["' + b"a" * 50_000 + b'\xf0\x9f\x98\x80"]',
        b'{"a":{"b":[1,2.5,"x"]}}',
    ],
    ids=["nested", "widened-text", "small"],
)
def test_parse_cost_is_an_upper_bound_of_what_parsing_allocates(data: bytes) -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        json.loads(data)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= json_budget.parse_cost(data), (peak, json_budget.parse_cost(data))


def test_deep_nesting_is_a_value_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        json_budget.loads_bounded(b"[" * 200_000 + b"]" * 200_000, "x", budget=1 << 40)


# --- OCI: manifests, indexes and token answers -------------------------------------------------------------


def oci_registry(manifest: bytes, media_type: str, token: bytes | None = None) -> RawServer:
    """/v2/ and every manifest answer ``manifest``; with ``token``, /v2/ asks for a bearer token first and the
    token endpoint answers ``token``."""
    holder: list[str] = []

    def handle(c, m, p, h):  # type: ignore[no-untyped-def]
        path = urlsplit(p).path
        if path == "/token":
            answer(c, 200, [("Content-Type", "application/json")], token or b"{}")
        elif token is not None and "authorization" not in h:
            challenge = f'Bearer realm="{holder[0]}/token",service="r",scope="repository:acme/m:pull"'
            answer(c, 401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")], b"{}")
        elif path == "/v2/":
            answer(c, 200, [("Content-Type", "application/json")], b"{}")
        elif "/manifests/" in path:
            answer(c, 200, [("Content-Type", media_type)], manifest)
        else:
            answer(c, 404, [("Content-Type", "application/json")], b'{"errors":[]}')

    srv = RawServer(handle)
    holder.append(srv.url)
    return srv


def _manifest_bomb(key: str, shape: bytes, size: int) -> bytes:
    n = size // (len(shape) + 1)
    return b'{"schemaVersion":2,"' + key.encode() + b'":[' + b",".join([shape] * n) + b"]}"


INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.slow
@pytest.mark.parametrize(
    "key,media,shape",
    [("manifests", INDEX, b"{}"), ("layers", MANIFEST, b"[[]]"), ("manifests", INDEX, b'{"a":1}')],
    ids=["index-of-empty-entries", "manifest-nested-layers", "index-pairs"],
)
def test_oci_manifest_that_explodes_when_parsed_is_refused_within_the_memory_goal(
    monkeypatch, key, media, shape
) -> None:  # type: ignore[no-untyped-def]
    from scanner.sources import oci

    srv = oci_registry(_manifest_bomb(key, shape, oci.MAX_MANIFEST_BYTES - 64), media)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "30")
    got = bombs.cli_peak(["scan", f"oci://127.0.0.1:{srv.port}/acme/m:v1", "-f", "json"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)  # before: exit 1 at 146-186 MB


# --- Hub API answers ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shape", [b"[[]]", b"{}"], ids=["nested-lists", "empty-objects"])
def test_hub_answer_that_explodes_when_parsed_is_refused_within_the_memory_goal(
    hf_env, monkeypatch, shape
) -> None:  # type: ignore[no-untyped-def]
    from scanner.sources import hf

    from .test_reliability_hub_answers import COMMIT, hub

    n = (hf.HUB_MAX_ANSWER_BYTES - 200) // (len(shape) + 1)
    info = f'{{"id":"a/b","sha":"{COMMIT}","siblings":[],"x":['.encode() + b",".join([shape] * n) + b"]}"
    srv = hub(info)
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    monkeypatch.setenv("MODELWARD_NETWORK_SECONDS", "30")
    got = bombs.cli_peak(["scan", "hf://a/b", "-f", "json"], MODELWARD)
    if got is None:
        pytest.skip("GNU time is not installed")
    code, peak, _wall = got
    assert code == 2 and peak < GOAL, (code, peak >> 20)


def test_streamed_cost_matches_the_whole_body() -> None:
    body = b'{"a":[' + b",".join([b"[[]]"] * 3000) + b'],"b":"\xc3\xa9"}'
    cost = json_budget.JsonCost(budget=1 << 40)
    for i in range(0, len(body), 1000):
        cost.add(body[i : i + 1000])
    assert cost.cost == json_budget.parse_cost(body)
