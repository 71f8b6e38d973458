"""A real OCI registry (Debian's docker-registry) on 127.0.0.1 and a minimal distribution-spec pusher.

Fixtures are pushed with plain ``requests`` (POST/PUT blob uploads, PUT
manifest) so that hand-built manifests (artifactType, hostile titles, indexes)
reach the registry byte for byte.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
TITLE = "org.opencontainers.image.title"
CANARY_CMD = "touch /tmp/modelward-canary"
USER, PASSWORD = "mw-user", "s3cret-Pa55word-never-shown"


class _Canary:
    def __reduce__(self):  # pickled, never loaded
        return (os.system, (CANARY_CMD,))


def evil_pickle() -> bytes:
    return pickle.dumps(_Canary(), protocol=4)


def safetensors_bytes(n_floats: int = 4) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * (4 * n_floats)


def big_safetensors(total: int) -> bytes:
    n = (total - 200) // 4
    return safetensors_bytes(n)


def gguf_bytes() -> bytes:
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    kv = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kv += s("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    tensor = (
        s("w") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 0) + struct.pack("<Q", 0)
    )
    head = b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", 1) + struct.pack("<Q", 2) + kv + tensor
    head += b"\0" * (-len(head) % 32)
    return head + b"\0" * 16


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    proc: subprocess.Popen
    auth: tuple[str, str] | None = None
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def __post_init__(self) -> None:
        if self.auth:
            self.session.auth = self.auth

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha(data)
        r = self.session.post(f"{self.base}/v2/{repo}/blobs/uploads/", timeout=30)
        assert r.status_code == 202, r.text
        loc = r.headers["Location"]
        url = loc if loc.startswith("http") else self.base + loc
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        r = self.session.put(
            url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=120
        )
        assert r.status_code == 201, r.text
        return digest

    def descriptor(
        self, repo: str, data: bytes, media_type: str, title: str | None = None, **annotations: str
    ) -> dict:
        d = {"mediaType": media_type, "digest": self.push_blob(repo, data), "size": len(data)}
        ann = dict(annotations)
        if title is not None:
            ann[TITLE] = title
        if ann:
            d["annotations"] = ann
        return d

    def push_manifest(
        self, repo: str, ref: str, manifest: dict | bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=1).encode()
        r = self.session.put(
            f"{self.base}/v2/{repo}/manifests/{ref}",
            data=body,
            headers={"Content-Type": media_type},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha(body)
        return r.headers["Docker-Content-Digest"]

    def artifact(
        self,
        repo: str,
        tag: str,
        layers: list[dict],
        config: tuple[bytes, str] | None = None,
        artifact_type: str | None = None,
        annotations: dict | None = None,
    ) -> str:
        cfg_bytes, cfg_type = config or (b"{}", "application/vnd.oci.empty.v1+json")
        m: dict = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        if artifact_type:
            m["artifactType"] = artifact_type
        m["config"] = {
            "mediaType": cfg_type,
            "digest": self.push_blob(repo, cfg_bytes),
            "size": len(cfg_bytes),
        }
        m["layers"] = layers
        if annotations:
            m["annotations"] = annotations
        return self.push_manifest(repo, tag, m)


def _start(tmp: Path, extra_config: str = "", auth: tuple[str, str] | None = None) -> Registry:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry; .ci/run does it)")
    port = free_port()
    cfg = tmp / "registry.yml"
    cfg.write_text(
        "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
        "storage: {filesystem: {rootdirectory: /nonexistent}, delete: {enabled: true}}\n"
        "http: {addr: 127.0.0.1:1}\n" + extra_config
    )
    env = dict(
        os.environ,
        REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}",
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=str(tmp / "store"),
        REGISTRY_LOG_LEVEL="warn",
        REGISTRY_HTTP_SECRET="x",
    )
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [binary, "serve", str(cfg)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {(tmp / 'registry.log').read_text()[-2000:]}")
        try:
            r = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            if r.status_code in (200, 401):
                return Registry(f"127.0.0.1:{port}", proc, auth)
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    _stop(proc)
    pytest.fail("docker-registry did not become ready in 15 s")


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    reg = _start(tmp_path_factory.mktemp("oci-registry"))
    yield reg
    _stop(reg.proc)


def _htpasswd_line(user: str, password: str) -> str | None:
    tool = shutil.which("htpasswd")
    if tool:
        out = subprocess.run([tool, "-Bbn", user, password], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    try:
        import bcrypt  # type: ignore[import-not-found]

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"
    except ImportError:
        return None


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oci-auth-registry")
    line = _htpasswd_line(USER, PASSWORD)
    if line is None:
        pytest.skip(
            "neither apache2-utils' htpasswd nor the bcrypt package is available to make an htpasswd file"
        )
    (tmp / "htpasswd").write_text(line + "\n")
    reg = _start(
        tmp, f"auth: {{htpasswd: {{realm: test, path: {tmp / 'htpasswd'}}}}}\n", auth=(USER, PASSWORD)
    )
    yield reg
    _stop(reg.proc)


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """A temp DOCKER_CONFIG; returns a function writing an auths entry for a registry."""
    d = tmp_path / "docker"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))

    def write(host: str, user: str = USER, password: str = PASSWORD) -> Path:
        tok = base64.b64encode(f"{user}:{password}".encode()).decode()
        (d / "config.json").write_text(json.dumps({"auths": {host: {"auth": tok}}}))
        return d

    return write
