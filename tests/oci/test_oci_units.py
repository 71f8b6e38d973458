"""Reference parsing, Docker config credentials, the token flow, layout mapping, and fuzzing of each parser."""

from __future__ import annotations

import base64
import json
import random

import pytest

from scanner.findings import Decision
from scanner.sources.base import SourceError
from scanner.sources.docker_auth import load_credentials, parse_challenge
from scanner.sources.oci import OCISource, parse_oci
from scanner.sources.oci_layouts import config_info, map_manifest, unsafe_title_reason

from .conftest import OCI_MANIFEST
from .tamper_proxy import TamperProxy
from .test_oci_registry import oras_artifact, oscan


@pytest.mark.parametrize(
    "raw,expect",
    [
        ("oci://127.0.0.1:5000/acme/model:v1", ("127.0.0.1:5000", "acme/model", "v1", None)),
        ("oci://reg.example.com/a/b/c", ("reg.example.com", "a/b/c", None, None)),
        ("oci://reg.example.com/a@sha256:" + "a" * 64, ("reg.example.com", "a", None, "sha256:" + "a" * 64)),
        ("oci://reg:443/a:t@sha256:" + "b" * 64, ("reg:443", "a", "t", "sha256:" + "b" * 64)),
        ("oci://docker.io/ubuntu:22.04", ("registry-1.docker.io", "library/ubuntu", "22.04", None)),
        ("oci://[::1]:5000/x:y", ("[::1]:5000", "x", "y", None)),
    ],
)
def test_parse_valid(raw, expect):
    ref = parse_oci(raw)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expect


@pytest.mark.parametrize(
    "raw,msg",
    [
        ("oci://", "invalid registry host"),
        ("oci://host", "missing repository"),
        ("oci://host/", "missing repository"),
        ("oci://host/Repo", "invalid repository name"),
        ("oci://host/a//b", "invalid repository name"),
        ("oci://host/a:bad tag", "invalid characters"),
        ("oci://host/a:-x", "invalid tag"),
        ("oci://host/a@sha256:abc", "malformed digest"),
        ("oci://host/a@md5:" + "a" * 32, "only sha256"),
        ("oci://host:99999/a", "port 99999 out of range"),
        ("oci://host/a?x=1", "invalid characters"),
        ("oci://user:hunter2-secret@host/a", "credentials in the target are not accepted"),
    ],
)
def test_parse_errors(raw, msg):
    with pytest.raises(SourceError) as exc:
        parse_oci(raw)
    assert msg in str(exc.value)
    assert "hunter2-secret" not in str(exc.value)


def test_parse_fuzz_only_source_errors():
    rnd = random.Random(4)
    alphabet = "abcAZ09:/@.-_[]%?#\\\0 sha256:" + "f" * 10
    for _ in range(3000):
        raw = "oci://" + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        try:
            parse_oci(raw)
        except SourceError:
            pass


def _config(tmp_path, auths: dict, **extra) -> str:
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths, **extra}))
    return str(tmp_path)


def test_credentials_lookup(tmp_path):
    tok = base64.b64encode(b"alice:pa:ss").decode()
    d = _config(tmp_path, {"https://reg.example:5000/v1/": {"auth": tok}})
    creds, _ = load_credentials("reg.example:5000", d)
    assert creds is not None and creds.username == "alice" and creds.password == "pa:ss"
    assert "pa:ss" not in repr(creds)
    assert load_credentials("other:5000", d)[0] is None
    d = _config(tmp_path, {"reg": {"username": "bob", "password": "pw-1234"}})
    assert load_credentials("reg", d)[0].username == "bob"
    d = _config(tmp_path, {"https://index.docker.io/v1/": {"auth": tok}})
    assert load_credentials("registry-1.docker.io", d)[0].username == "alice"


def test_credentials_helpers_and_errors(tmp_path):
    d = _config(tmp_path, {}, credHelpers={"reg:1": "ecr-login"})
    creds, hint = load_credentials("reg:1", d)
    assert creds is None and "docker-credential-ecr-login" in hint and "not on PATH" in hint
    d = _config(tmp_path, {"reg:1": {"auth": "!!!not-base64-secretvalue"}})
    with pytest.raises(SourceError) as exc:
        load_credentials("reg:1", d)
    assert "secretvalue" not in str(exc.value)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(SourceError, match="not valid JSON"):
        load_credentials("reg:1", str(tmp_path))
    assert load_credentials("reg:1", str(tmp_path / "missing"))[0] is None


def test_parse_challenge():
    ch = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert ch.scheme == "bearer"
    assert ch.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    assert parse_challenge("") is None
    rnd = random.Random(1)
    for _ in range(500):
        parse_challenge("".join(rnd.choice('Bearer realm=",\\ x') for _ in range(rnd.randint(0, 30))))


def test_bearer_token_flow_from_docker_config(registry, docker_config):
    oras_artifact(registry, "acme/bearer", "v1")
    with TamperProxy(registry.base) as proxy:
        proxy.bearer = ("tok-user", "tok-Password-77", "registry-token-ABCDEF123456")
        report = oscan(f"oci://{proxy.host}/acme/bearer:v1")
        assert report.errors and "token service requires credentials" in report.errors[0]
        docker_config(proxy.host, user="tok-user", password="tok-Password-77")
        report = oscan(f"oci://{proxy.host}/acme/bearer:v1")
        assert not report.errors, report.errors
        assert report.verdict.decision is Decision.BLOCK
        assert any("service=test-registry" in p for p in proxy.token_requests)
        from scanner.report import render

        text = "\n".join(render(report, f) for f in ("console", "json", "sarif"))
        assert "registry-token-ABCDEF123456" not in text and "tok-Password-77" not in text
        docker_config(proxy.host, user="tok-user", password="wrong-Pass-88")
        report = oscan(f"oci://{proxy.host}/acme/bearer:v1")
        assert report.errors and "rejected the credentials" in report.errors[0]
        assert "wrong-Pass-88" not in report.errors[0]


def test_unsafe_titles():
    assert unsafe_title_reason("a/b/model.safetensors") is None
    assert unsafe_title_reason("..hidden/x") is None  # a name starting with dots is not a '..' component
    for t in ("../x", "a/../../x", "/abs", "C:/win", "a\\b", "a\0b", "a\nb", "x" * 5000):
        assert unsafe_title_reason(t)


def _valid_manifest() -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.kitops.modelkit.config.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 10,
        },
        "layers": [
            {
                "mediaType": "application/vnd.kitops.modelkit.model.v1.tar",
                "digest": "sha256:" + "2" * 64,
                "size": 5,
                "annotations": {"org.opencontainers.image.title": "m.pkl"},
            },
            {"mediaType": "application/x", "digest": "sha256:" + "3" * 64, "size": 0},
        ],
    }


def test_map_manifest_layouts():
    lay = map_manifest(_valid_manifest())
    assert lay.name == "kitops" and not lay.issues
    assert [f.path for f in lay.files] == [
        "kitops.modelkit.config.v1+json-111111111111",
        "m.pkl",
        "x-333333333333",
    ]
    assert [f.role for f in lay.files] == ["config", "model", "unknown media type"]
    assert config_info(
        "application/vnd.kitops.modelkit.config.v1+json",
        b'{"package":{"name":"p","version":[1]},"model":{"name":"m"}}',
    ) == {"kitops_package": "p", "kitops_model": "m"}


def test_map_manifest_fuzz():
    base = json.dumps(_valid_manifest()).encode()
    rnd = random.Random(7)
    for i in range(2000):
        data = bytearray(base)
        if i % 2:
            data = data[: rnd.randint(0, len(data))]
        for _ in range(rnd.randint(1, 4)):
            if data:
                data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        try:
            doc = json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict):
            lay = map_manifest(doc)
            assert all(not f.path.startswith("/") and ".." not in f.path.split("/") for f in lay.files)
        config_info("application/vnd.kitops.modelkit.config.v1+json", bytes(data))
    for doc in (
        {"layers": "x"},
        {"layers": [None, 1, []]},
        {"config": 5},
        {"layers": [{"annotations": 3}]},
        {
            "layers": [
                {
                    "mediaType": "a/b",
                    "digest": "sha256:" + "a" * 64,
                    "size": 1,
                    "annotations": {"org.opencontainers.image.title": ""},
                }
            ]
        },
    ):
        map_manifest(doc)


@pytest.mark.slow
def test_resolve_fuzz_through_hostile_registry(registry):
    """Mutated manifests served over HTTP: resolve ends in a Snapshot or one SourceError, never anything else."""
    repo = "acme/fuzz"
    oras_artifact(registry, repo, "v1")
    idx = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "9" * 64,
                "size": 10,
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    seeds = [json.dumps(_valid_manifest()).encode(), json.dumps(idx).encode()]
    rnd = random.Random(11)
    outcomes = {"snapshot": 0, "error": 0}
    with TamperProxy(registry.base) as proxy:
        src = OCISource(insecure=True, discover_signatures=False)
        for i in range(80):
            data = bytearray(seeds[i % 2])
            if i % 3 == 0:
                data = data[: rnd.randint(0, len(data))]
            for _ in range(rnd.randint(0, 3)):
                if data:
                    data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
            proxy.overrides[f"/v2/{repo}/manifests/f{i}"] = bytes(data)
            try:
                src.resolve(f"oci://{proxy.host}/{repo}:f{i}")
                outcomes["snapshot"] += 1
            except SourceError as exc:
                assert "\n" not in str(exc)
                outcomes["error"] += 1
    assert outcomes["snapshot"] and outcomes["error"]
