"""OCI registries: ``oci://host[:port]/repo[:tag|@sha256:…]`` resolved to a manifest digest and its blobs.

The manifest is fetched once, its sha256 computed from the exact bytes and
compared with the digest asked for and with the registry's
``Docker-Content-Digest``; a disagreement is a critical finding, and the
snapshot pins what was actually received. An image index is resolved to the
entries selected by ``platform`` / ``artifact_type`` (all entries, each in its
own folder, when nothing is selected) and the choice is reported. Blobs are
read through the shared HTTP Range reader with their digests as claims, so a
scan reads only what the inspectors ask for and a full read verifies the bytes.

Signatures are discovered, never verified: a cosign ``sha256-<hex>.sig`` tag,
a referrers-tag index or the OCI 1.1 referrers API is reported as information.

Source options (``ScanOptions.source_options``): ``insecure`` (plain http),
``platform`` ("os/arch[/variant]"), ``artifact_type``, ``docker_config`` (a
directory holding config.json), ``discover_signatures`` (default True),
``client`` (an ``HTTPClient``, for tests). Unknown keys are ignored.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import requests

from ..io.http_reader import FaultLog, HTTPRangeReader
from ..io.http_session import HTTPClient, HTTPFetchError, Stats, redact, register_secret
from ..io.json_budget import JsonTooCostly, loads_bounded
from ..io.resolve import getaddrinfo_within
from .base import Artifact, AttachedSignature, Problem, Snapshot, Source, SourceError
from .docker_auth import Credentials, RegistryAuth, parse_challenge, read_bounded
from .oci_layouts import (
    ACCEPT,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_CONFIG_PARSE,
    Descriptor,
    Issue,
    config_info,
    map_manifest,
    media_short,
    parse_descriptor,
)

MAX_MANIFEST_BYTES = 4 << 20  # distribution's own limit for a manifest
MAX_ERROR_BYTES = 64 << 10
MAX_INDEX_ENTRIES = 16
MAX_INDEX_DEPTH = 2
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 30.0
_REPO = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*)"
    r"(?::(\d{1,5}))?$"
)
_SHA256_REF = re.compile(r"^sha256:[a-f0-9]{64}$")
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
MAX_COSIGN_PAYLOAD = 64 << 10
_SIG_TYPES = ("signature", "cosign", "notary", "notation", "sigstore", ".sig")
USAGE = "expected oci://host[:port]/repository[:tag|@sha256:<64 hex>]"


@dataclass(frozen=True)
class OCIRef:
    registry: str  # host[:port], what credentials are keyed by
    host: str
    port: int | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    @property
    def display(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        dig = f"@{self.digest}" if self.digest else ""
        return f"oci://{self.registry}/{self.repository}{tag}{dig}"


def parse_oci(raw: str) -> OCIRef:
    """Parse a target without touching the network; every malformed part gets its own message."""
    if not raw.startswith("oci://"):
        raise SourceError(f"{redact(raw)}: not an oci:// target")
    rest = raw[len("oci://") :]
    shown = redact(raw)[:300]
    host_part, sep, path = rest.partition("/")
    if "@" in host_part:
        raise SourceError(
            f"{shown}: credentials in the target are not accepted; put them in the Docker config "
            f"file ($DOCKER_CONFIG/config.json)"
        )
    if any(c in rest for c in "?#\\ \t\r\n\0"):
        raise SourceError(f"{shown}: invalid characters in the reference ({USAGE})")
    m = _HOST.match(host_part)
    if not host_part or not m:
        raise SourceError(f"{shown}: invalid registry host {host_part[:100]!r} ({USAGE})")
    port = int(m.group(1)) if m.group(1) else None
    if port is not None and not 0 < port < 65536:
        raise SourceError(f"{shown}: port {port} out of range")
    host = host_part.rsplit(":", 1)[0] if port is not None else host_part
    host = host.lower()
    if not sep or not path:
        raise SourceError(f"{shown}: missing repository ({USAGE})")
    digest = None
    if "@" in path:
        path, digest = path.split("@", 1)
        if digest.startswith("sha256:") and not _SHA256_REF.match(digest):
            raise SourceError(f"{shown}: malformed digest (expected sha256: and 64 lowercase hex digits)")
        if not digest.startswith("sha256:"):
            raise SourceError(f"{shown}: only sha256 digests are supported")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        if not _TAG.match(tag):
            raise SourceError(f"{shown}: invalid tag {tag[:130]!r}")
    if not _REPO.match(path) or len(path) > 255:
        raise SourceError(
            f"{shown}: invalid repository name {path[:100]!r} (lowercase letters, digits, "
            f"'.', '_', '-' and '/' separated components)"
        )
    registry = host + (f":{port}" if port is not None else "")
    if host in _DOCKER_HUB and port is None:
        registry, host = "registry-1.docker.io", "registry-1.docker.io"
        if "/" not in path:
            path = f"library/{path}"
    return OCIRef(registry, host, port, path, tag, digest)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    ct = content_type.split(";", 1)[0].strip()
    if ct in MANIFEST_TYPES or ct in INDEX_TYPES:
        return ct
    if isinstance(doc.get("manifests"), list):
        return INDEX_TYPES[0]
    return MANIFEST_TYPES[0] if "layers" in doc or "blobs" in doc or "config" in doc else ct


def _platform_label(p: dict[str, str]) -> str:
    return "/".join(p[k] for k in ("os", "architecture", "variant") if p.get(k))


class _Registry:
    """One repository on one registry: authenticated requests, errors mapped to one redacted line each."""

    def __init__(
        self,
        ref: OCIRef,
        client: HTTPClient,
        insecure: bool,
        docker_config: str | None,
        stats: Stats,
        given: Credentials | None = None,
    ) -> None:
        self.ref = ref
        self.client = client
        self.stats = stats
        self.scheme = "http" if insecure else "https"
        self.base = f"{self.scheme}://{ref.registry}"
        self.auth = RegistryAuth(
            ref.registry,
            self.base,
            ref.repository,
            client,
            config_dir=docker_config,
            insecure=insecure,
            stats=stats,
            given=given,
        )

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{path}"

    def check_host(self) -> None:
        """An unknown host is its own error, not 'connection failed after N attempts'."""
        if requests.utils.get_environ_proxies(self.base):
            return  # the proxy resolves names
        wait = min(self.client.timeout[0], self.client.net.seconds)
        try:
            getaddrinfo_within(
                self.ref.host.strip("[]"),
                self.ref.port or (443 if self.scheme == "https" else 80),
                socket.AF_UNSPEC,
                socket.SOCK_STREAM,
                wait,
            )
        except (socket.gaierror, UnicodeError):
            raise SourceError(f"{self.ref.display}: unknown registry host {self.ref.host!r}") from None
        except TimeoutError:
            raise SourceError(
                f"{self.ref.display}: name resolution of {self.ref.host!r} gave no answer within {wait:g} s"
            ) from None

    def call(self, method: str, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        """Send with the current credentials; answer up to two 401 challenges (token, then a fresh one)."""
        url = self.url(path)
        for attempt in range(3):
            try:
                resp = self.client.request(
                    method,
                    url,
                    headers=headers,
                    auth_headers=self.auth.headers(),
                    stream=True,
                    stats=self.stats,
                )
            except HTTPFetchError as exc:
                if exc.status is not None:  # transient statuses until the retries ran out
                    raise SourceError(redact(f"{self.ref.display}: {exc}")) from None
                raise SourceError(self._connection_message(exc)) from None
            if resp.status_code != 401:
                return resp
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            resp.close()
            if challenge is not None and attempt < 2 and self.auth.authenticate(challenge):
                continue
            raise SourceError(self._unauthorized_message())
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection_message(self, exc: HTTPFetchError) -> str:
        text = str(exc)
        if "plain http is not allowed" in text:
            return f"{self.ref.display}: plain http is not allowed; pass --insecure for a plain-HTTP registry"
        if "budget" in text or "stalled" in text or "response headers within" in text:
            return redact(f"{self.ref.display}: {text}")
        why = "timed out" if "timed out" in text else "connection failed"
        if "TLS handshake failed" in text:
            why = "TLS handshake failed"
        m = re.search(r"after \d+ attempt\(?s?\)?", text)
        tail = f" {m.group(0)}" if m else ""
        hint = " (if it serves plain HTTP, pass --insecure)" if self.scheme == "https" else ""
        return redact(
            f"{self.ref.display}: cannot reach registry {self.ref.registry} over {self.scheme}: "
            f"{why}{tail}{hint}"
        )

    def _unauthorized_message(self) -> str:
        if self.auth.has_credentials:
            return redact(
                f"{self.ref.display}: registry {self.ref.registry} rejected the credentials from "
                f"the Docker config (HTTP 401)"
            )
        hint = self.auth.hint or "no credentials configured"
        return redact(
            f"{self.ref.display}: registry {self.ref.registry} requires authentication (HTTP 401; {hint})"
        )

    def error_message(self, resp: requests.Response, what: str) -> str:
        codes, detail = _registry_errors(resp)
        status = resp.status_code
        d = self.ref.display
        if status == 404:
            if "NAME_UNKNOWN" in codes:
                return (
                    f"{d}: repository {self.ref.repository!r} not found on {self.ref.registry} (NAME_UNKNOWN)"
                )
            if "MANIFEST_UNKNOWN" in codes:
                if not self.repository_exists():
                    return f"{d}: repository {self.ref.repository!r} not found on {self.ref.registry} (NAME_UNKNOWN)"
                return f"{d}: {what} not found in {self.ref.repository!r} (MANIFEST_UNKNOWN)"
            return f"{d}: {what} not found (HTTP 404{', ' + ', '.join(codes) if codes else ''})"
        if status == 403:
            return f"{d}: access to {self.ref.repository!r} denied by {self.ref.registry} (HTTP 403{detail})"
        return redact(f"{d}: registry answered HTTP {status} for {what}{detail}")

    def repository_exists(self) -> bool:
        """Distribution answers MANIFEST_UNKNOWN for a tag in a missing repository too; the tag list tells them apart."""
        try:
            resp = self.call("GET", "tags/list?n=1")
        except SourceError:
            return True
        with resp:
            if resp.status_code != 404:
                return True
            codes, _ = _registry_errors(resp)
            return "NAME_UNKNOWN" not in codes

    def fetch_manifest(self, reference: str, what: str) -> tuple[bytes, str, str | None]:
        """(bytes exactly as served, Content-Type, Docker-Content-Digest or None)."""
        resp = self.call("GET", f"manifests/{reference}", {"Accept": ACCEPT})
        with resp:
            if resp.status_code != 200:
                raise SourceError(redact(self.error_message(resp, what)))
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                raise SourceError(
                    f"{self.ref.display}: {what} is {declared} bytes, over the "
                    f"{MAX_MANIFEST_BYTES}-byte manifest limit"
                )
            data = read_bounded(resp, MAX_MANIFEST_BYTES, f"{self.ref.display}: {what}")
            return data, resp.headers.get("Content-Type", ""), resp.headers.get("Docker-Content-Digest")

    def exists(self, reference: str) -> str | None:
        """The digest of a manifest that exists under ``reference`` (discovery only: every failure is 'no')."""
        try:
            resp = self.call("HEAD", f"manifests/{reference}", {"Accept": ACCEPT})
        except SourceError:
            return None
        with resp:
            return (
                (resp.headers.get("Docker-Content-Digest") or "present")[:80]
                if resp.status_code == 200
                else None
            )

    def blob_reader_factory(self, d: Descriptor, name: str, faults: FaultLog | None = None):  # type: ignore[no-untyped-def]
        url = self.url(f"blobs/{d.digest}")

        def open_reader() -> HTTPRangeReader:
            return HTTPRangeReader(
                url,
                name=name,
                client=self.client,
                size=d.size,
                auth_headers=self.auth.headers(),
                stats=self.stats,
                expected_sha256=d.sha256,
                faults=faults,
            )

        return open_reader


def _registry_errors(resp: requests.Response) -> tuple[list[str], str]:
    """Error codes of a distribution error body, and a short redacted detail for messages."""
    try:
        body = read_bounded(resp, MAX_ERROR_BYTES, "error body")
        doc = json.loads(body)
    except (SourceError, ValueError, UnicodeDecodeError):
        return [], ""
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return [], ""
    codes = [str(e.get("code"))[:40] for e in errs[:5] if isinstance(e, dict) and e.get("code")]
    msgs = [str(e.get("message"))[:120] for e in errs[:2] if isinstance(e, dict) and e.get("message")]
    return codes, redact(f": {'; '.join(msgs)}") if msgs else ""


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (Docker treats these registries as insecure by default)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class OCISource(Source):
    def __init__(
        self,
        insecure: bool = False,
        platform: str | None = None,
        artifact_type: str | None = None,
        docker_config: str | None = None,
        discover_signatures: bool = True,
        client: HTTPClient | None = None,
        username: str | None = None,
        password: str | None = None,
        **_other: object,  # options meant for other sources (endpoint, token, allow_http ...) are ignored
    ) -> None:
        self.insecure = bool(insecure)
        self.platform = platform
        self.artifact_type = artifact_type
        self.docker_config = docker_config
        self.discover_signatures = discover_signatures
        self.given: Credentials | None = None
        if username is not None and password is not None:
            register_secret(password)
            self.given = Credentials(
                username=username, password=password, identity_token=None, source="--username"
            )
        # The program's one retry policy; shorter timeouts: a registry that is down says so in seconds.
        self.client = client or HTTPClient(timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_http=self.insecure)
        self.stats = Stats()

    def resolve(self, target: str) -> Snapshot:
        ref = parse_oci(target)
        insecure = self.insecure or is_loopback(
            ref.host
        )  # like Docker: 127.0.0.0/8 and localhost speak plain HTTP
        client = self.client
        if insecure and not client.allow_http:
            client = HTTPClient(timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_http=True)
        reg = _Registry(ref, client, insecure, self.docker_config, self.stats, self.given)
        reg.check_host()
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.reference!r}"
        data, content_type, header_digest = reg.fetch_manifest(ref.reference, what)
        actual = _sha256(data)
        problems: list[Problem] = []
        problems += _digest_problems(data, actual, ref.digest, header_digest, "<manifest>")
        snap = Snapshot(
            target=target,
            kind="oci",
            resolved=f"{ref.registry}/{ref.repository}@{actual}",
            root=f"oci://{ref.registry}/{ref.repository}@{actual}",
            problems=problems,
        )
        self._walk(reg, snap, data, content_type, actual, prefix="", depth=0, note="")
        if self.discover_signatures:
            self._signatures(reg, snap, actual)
        return snap

    # ---- manifests and indexes ----------------------------------------------------------------

    def _walk(
        self,
        reg: _Registry,
        snap: Snapshot,
        data: bytes,
        content_type: str,
        digest: str,
        *,
        prefix: str,
        depth: int,
        note: str,
    ) -> None:
        try:
            doc = loads_bounded(data, f"{reg.ref.display}: manifest {digest}")
        except JsonTooCostly as exc:
            raise SourceError(str(exc)) from None
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SourceError(f"{reg.ref.display}: manifest {digest} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise SourceError(f"{reg.ref.display}: manifest {digest} is not a JSON object")
        mt = _media_type(doc, content_type)
        if (
            doc.get("schemaVersion") == 1
            or "signedManifest" in mt
            or mt.endswith("manifest.v1+json")
            and mt.startswith("application/vnd.docker")
        ):
            raise SourceError(f"{reg.ref.display}: Docker schema 1 manifests are not supported")
        if mt in INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                snap.problems.append(
                    _problem(
                        Issue(
                            f"{prefix}<index>",
                            "OCI-MANIFEST-LIMIT",
                            f"index nested deeper than {MAX_INDEX_DEPTH} levels; not followed",
                            {"digest": digest},
                        )
                    )
                )
                return
            self._index(reg, snap, doc, digest, prefix=prefix, depth=depth)
            return
        layout = map_manifest(doc, prefix=prefix)
        faults = FaultLog(snap.errors)
        snap.problems.extend(_problem(i) for i in layout.issues)
        cfg_info: dict[str, str] = {}
        for lf in layout.files:
            if (
                lf.is_config
                and lf.descriptor.size <= MAX_CONFIG_PARSE
                and layout.name in ("kitops", "modelpack", "docker-model-runner")
            ):
                cfg_info = self._config_info(reg, lf.descriptor, lf.path)
        for lf in layout.files:
            d = lf.descriptor
            info = {
                "oci_layout": layout.name,
                "oci_media_type": d.media_type[:255],
                "oci_digest": d.digest,
                "oci_role": lf.role,
                "oci_manifest": digest,
            }
            if note:
                info["oci_index_entry"] = note
            info.update(cfg_info)
            snap.artifacts.append(
                Artifact(
                    path=lf.path,
                    size=d.size,
                    opener=reg.blob_reader_factory(d, lf.path, faults),
                    claimed_sha256=d.sha256,
                    info=info,
                )
            )

    def _index(
        self, reg: _Registry, snap: Snapshot, doc: dict[str, Any], digest: str, *, prefix: str, depth: int
    ) -> None:
        raw = doc.get("manifests")
        if not isinstance(raw, list):
            raise SourceError(f"{reg.ref.display}: image index {digest} has no 'manifests' list")
        entries: list[Descriptor] = []
        for i, obj in enumerate(raw[: MAX_INDEX_ENTRIES * 16]):
            d, why = parse_descriptor(obj)
            if d is None:
                snap.problems.append(
                    _problem(
                        Issue(
                            f"{prefix}<index entry {i}>",
                            "OCI-DESCRIPTOR-INVALID",
                            f"index entry {i} not read: {why}",
                        )
                    )
                )
            else:
                entries.append(d)
        chosen, how = self._select(reg, entries, digest)
        chosen = list({d.digest: d for d in chosen}.values())
        if len(chosen) > MAX_INDEX_ENTRIES or len(raw) > MAX_INDEX_ENTRIES * 16:
            snap.problems.append(
                _problem(
                    Issue(
                        f"{prefix}<index>",
                        "OCI-MANIFEST-LIMIT",
                        f"index lists {len(raw)} manifests; only {MAX_INDEX_ENTRIES} were scanned",
                        {"digest": digest},
                    )
                )
            )
            chosen = chosen[:MAX_INDEX_ENTRIES]
        labels = _labels(chosen)
        listing = "; ".join(f"{labels[d.digest] or '(root)'} = {_describe(d, full=True)}" for d in chosen)
        snap.problems.append(
            _problem(
                Issue(
                    f"{prefix}<index>",
                    "OCI-INDEX-SELECTION",
                    f"image index {digest} with {len(entries)} entries: scanned {len(chosen)} ({how}): {listing}"[
                        :1500
                    ],
                    {"index": digest, "selected": ",".join(d.digest for d in chosen)[:1000]},
                )
            )
        )
        for d in chosen:
            what = f"index entry {d.digest}"
            data, ctype, header = reg.fetch_manifest(d.digest, what)
            actual = _sha256(data)
            sub = prefix + (labels[d.digest] + "/" if labels[d.digest] else "")
            snap.problems.extend(_digest_problems(data, actual, d.digest, header, f"{sub}<manifest>"))
            if len(data) != d.size:
                snap.problems.append(
                    _problem(
                        Issue(
                            f"{sub}<manifest>",
                            "OCI-MANIFEST-DIGEST-MISMATCH",
                            f"index entry claims {d.size} bytes, registry served {len(data)}",
                            {"claimed": str(d.size), "served": str(len(data))},
                        )
                    )
                )
            self._walk(
                reg,
                snap,
                data,
                d.media_type if not ctype else ctype,
                actual,
                prefix=sub,
                depth=depth + 1,
                note=f"{digest} -> {_describe(d)}",
            )

    def _select(self, reg: _Registry, entries: list[Descriptor], digest: str) -> tuple[list[Descriptor], str]:
        available = ", ".join(_describe(d) for d in entries[:20]) or "none"
        if self.platform:
            want = self.platform.strip().lower().split("/")
            chosen = [
                d
                for d in entries
                if [v.lower() for v in _platform_label(d.platform).split("/")][: len(want)] == want
            ]
            if not chosen:
                raise SourceError(
                    f"{reg.ref.display}: no entry for platform {self.platform!r} in image index "
                    f"{digest} (available: {available})"
                )
            return chosen, f"platform {self.platform}"
        if self.artifact_type:
            chosen = [d for d in entries if self.artifact_type in (d.artifact_type, d.media_type)]
            if not chosen:
                raise SourceError(
                    f"{reg.ref.display}: no entry with artifactType {self.artifact_type!r} in image "
                    f"index {digest} (available: {available})"
                )
            return chosen, f"artifactType {self.artifact_type}"
        return entries, "all entries; choose one with the platform or artifact_type option"

    def _config_info(self, reg: _Registry, d: Descriptor, name: str) -> dict[str, str]:
        """Facts from a small config blob (KitOps Kitfile, ModelPack, Docker AI); best effort, display only."""
        try:
            with reg.blob_reader_factory(d, name)() as r:
                data = r.read(0, d.size)
                if r.integrity_problems:
                    return {}
        except Exception:  # information only: the config is scanned as an artifact anyway
            return {}
        return config_info(d.media_type, data)

    # ---- signatures -------------------------------------------------------------------------------

    def _signatures(self, reg: _Registry, snap: Snapshot, digest: str) -> None:
        hexd = digest.split(":", 1)[1]
        found: list[str] = []
        for suffix, kind in ((".sig", "cosign signature"), (".att", "cosign attestation")):
            tag = f"sha256-{hexd}{suffix}"
            d = reg.exists(tag)
            if d:
                found.append(f"{kind} (tag {tag} -> {d})")
                if suffix == ".sig":
                    snap.attached_signatures.extend(self._cosign_material(reg, tag, f"tag {tag}"))
        found += self._referrers(reg, f"referrers/{digest}", "referrers API", snap)
        found += self._referrers(reg, f"manifests/sha256-{hexd}", "referrers tag", snap)
        if found:
            snap.problems.append(
                _problem(
                    Issue(
                        "<signatures>",
                        "OCI-SIGNATURE-PRESENT",
                        f"signature material exists for {digest}: {'; '.join(found)[:1000]}. Cosign key signatures "
                        f"are verified with --key or a policy's signatures.trust; notation signatures are not verified",
                        {"manifest": digest},
                    )
                )
            )

    def _cosign_material(self, reg: _Registry, reference: str, where: str) -> list[AttachedSignature]:
        """The simple-signing payloads and signatures of a cosign signature manifest (discovery: failures are none)."""
        try:
            data, _ctype, _hdr = reg.fetch_manifest(reference, "signature manifest")
            doc = loads_bounded(data, "signature manifest")
        except (SourceError, ValueError, UnicodeDecodeError, RecursionError):
            return []
        out: list[AttachedSignature] = []
        for obj in (
            (doc.get("layers") or [])[:20]
            if isinstance(doc, dict) and isinstance(doc.get("layers"), list)
            else []
        ):
            d, _ = parse_descriptor(obj)
            if d is None or d.media_type != COSIGN_PAYLOAD or d.size > MAX_COSIGN_PAYLOAD:
                continue
            sig_b64 = d.annotations.get("dev.cosignproject.cosign/signature", "")
            try:
                sig = base64.b64decode(sig_b64, validate=True)
                with reg.blob_reader_factory(d, f"{where} payload")() as r:
                    payload = r.read(0, d.size)
                    if r.integrity_problems:
                        continue
            except Exception:  # a malformed or unreachable signature is no signature
                continue
            out.append(
                AttachedSignature(
                    "cosign", payload, sig, where, d.annotations.get("dev.sigstore.cosign/certificate")
                )
            )
        return out

    def _referrers(self, reg: _Registry, path: str, how: str, snap: Snapshot | None = None) -> list[str]:
        try:
            resp = reg.call("GET", path, {"Accept": ACCEPT})
        except SourceError:
            return []
        with resp:
            if resp.status_code != 200:
                return []
            try:
                doc = loads_bounded(read_bounded(resp, MAX_MANIFEST_BYTES, "referrers"), "referrers")
            except (SourceError, ValueError, UnicodeDecodeError, RecursionError):
                return []
        out = []
        for obj in (
            (doc.get("manifests") or [])[:100]
            if isinstance(doc, dict) and isinstance(doc.get("manifests"), list)
            else []
        ):
            d, _ = parse_descriptor(obj)
            if d is not None and any(s in (d.artifact_type or "").lower() for s in _SIG_TYPES):
                out.append(f"{d.artifact_type} via {how} -> {d.digest}")
                if (
                    snap is not None
                    and "cosign" in (d.artifact_type or "")
                    and len(snap.attached_signatures) < 20
                ):
                    snap.attached_signatures.extend(self._cosign_material(reg, d.digest, f"{how} {d.digest}"))
        return out


def _digest_problems(
    data: bytes, actual: str, asked: str | None, header: str | None, path: str
) -> list[Problem]:
    out = []
    if asked and asked != actual:
        out.append(
            _problem(
                Issue(
                    path,
                    "OCI-MANIFEST-DIGEST-MISMATCH",
                    f"asked for manifest {asked} but the bytes served hash to {actual}; "
                    f"the scan describes what was served, not what was pinned",
                    {"requested": asked, "actual": actual},
                )
            )
        )
    if header and header.startswith("sha256:") and header != actual:
        out.append(
            _problem(
                Issue(
                    path,
                    "OCI-MANIFEST-DIGEST-MISMATCH",
                    f"registry announced Docker-Content-Digest {header[:80]} but the bytes served "
                    f"hash to {actual}",
                    {"announced": header[:80], "actual": actual},
                )
            )
        )
    return out


def _problem(i: Issue) -> Problem:
    return Problem(i.path, i.rule_id, i.message, dict(i.evidence))


def _describe(d: Descriptor, full: bool = False) -> str:
    what = _platform_label(d.platform) or d.artifact_type or d.media_type
    return f"{what} {d.digest if full else d.digest[:19]}"


def _labels(chosen: list[Descriptor]) -> dict[str, str]:
    """Folder per selected index entry (none when only one is scanned): platform, artifact type or digest."""
    if len(chosen) <= 1:
        return {d.digest: "" for d in chosen}
    out: dict[str, str] = {}
    used: set[str] = set()
    for d in chosen:
        base = _platform_label(d.platform).replace("/", "-") or (
            media_short(d.artifact_type) if d.artifact_type else d.hex[:12]
        )
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", base).strip("._") or d.hex[:12]
        label = base if base not in used else f"{base}-{d.hex[:12]}"
        used.add(label)
        out[d.digest] = label
    return out


__all__ = ["OCIRef", "OCISource", "parse_oci"]
