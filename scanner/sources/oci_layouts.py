"""Mapping an OCI manifest's blobs to the files a model client would write.

Pure functions over parsed JSON, no network: the layout (ORAS files, KitOps
ModelKit, CNCF ModelPack, Docker Model Runner, container image, generic) only
decides names and the information shown; every blob is scanned by content
whatever its media type says, because a media type is a claim by whoever pushed
it. A layer's file name comes from its title annotation when that name is safe;
otherwise from its media type and digest, and an unsafe title is a finding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

TITLE_ANNOTATIONS = ("org.opencontainers.image.title", "org.cncf.model.filepath", "org.cnai.model.filepath")
EMPTY_CONFIG_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
MAX_LAYERS = 4096
MAX_BLOB_SIZE = 1 << 44  # 16 TiB: anything larger is a lie, not a model
MAX_TITLE = 1024
MAX_CONFIG_PARSE = 256 << 10
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_SHA256_HEX = re.compile(r"^[a-f0-9]{64}$")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]")

# Manifest media types.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))

KITOPS_CONFIG = "application/vnd.kitops.modelkit.config.v1+json"
MODELPACK_ARTIFACT = (
    "application/vnd.cncf.model.manifest.v1+json",
    "application/vnd.cnai.model.manifest.v1+json",
)
MODELPACK_CONFIG = ("application/vnd.cncf.model.config.v1+json", "application/vnd.cnai.model.config.v1+json")
CONTAINER_CONFIGS = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)

# Layer media type prefix -> role shown in reports (information only; content decides the format).
_ROLES: tuple[tuple[str, str], ...] = (
    ("application/vnd.kitops.modelkit.modelpart.", "model part"),
    ("application/vnd.kitops.modelkit.model.", "model"),
    ("application/vnd.kitops.modelkit.dataset.", "dataset"),
    ("application/vnd.kitops.modelkit.code.", "code"),
    ("application/vnd.kitops.modelkit.docs.", "docs"),
    ("application/vnd.kitops.modelkit.prompts.", "prompts"),
    ("application/vnd.cncf.model.weight.config.", "weight config"),
    ("application/vnd.cncf.model.weight.", "weight"),
    ("application/vnd.cncf.model.doc.", "doc"),
    ("application/vnd.cncf.model.code.", "code"),
    ("application/vnd.cncf.model.dataset.", "dataset"),
    ("application/vnd.cnai.model.", "model layer"),
    ("application/vnd.docker.ai.gguf.", "gguf weights"),
    ("application/vnd.docker.ai.safetensors", "safetensors weights"),
    ("application/vnd.docker.ai.license", "license"),
    ("application/vnd.docker.ai.", "model file"),
    ("application/vnd.oci.image.layer.", "image layer"),
    ("application/vnd.docker.image.rootfs.", "image layer"),
    ("application/vnd.oci.image.config.", "image config"),
    ("application/vnd.docker.container.image.", "image config"),
    ("application/vnd.oci.empty.", "empty"),
)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def algorithm(self) -> str:
        return self.digest.split(":", 1)[0]

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    @property
    def sha256(self) -> str | None:
        return self.hex if self.algorithm == "sha256" else None


@dataclass
class Issue:
    """A problem tied to one descriptor or name; becomes a snapshot Problem (and thus a finding)."""

    path: str
    rule_id: str
    message: str
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass
class LayerFile:
    path: str
    descriptor: Descriptor
    role: str
    is_config: bool = False


@dataclass
class Layout:
    name: str  # oras | kitops | modelpack | docker-model-runner | container-image | generic
    files: list[LayerFile] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def parse_descriptor(obj: Any) -> tuple[Descriptor | None, str]:
    """A descriptor, or None and why it cannot be used (the bytes it names would be unverifiable)."""
    if not isinstance(obj, dict):
        return None, "descriptor is not a JSON object"
    mt, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(mt, str) or not mt or len(mt) > 255:
        return None, "missing or invalid mediaType"
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        return None, "missing or malformed digest"
    if digest.startswith("sha256:") and not _SHA256_HEX.match(digest[7:]):
        return None, "malformed sha256 digest"
    if not digest.startswith("sha256:"):
        return (
            None,
            f"digest algorithm {digest.split(':', 1)[0][:20]!r} is not supported (only sha256 is verified)",
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_BLOB_SIZE:
        return None, "missing or out-of-range size"
    ann = obj.get("annotations")
    annotations = (
        {str(k)[:200]: str(v)[: MAX_TITLE * 4] for k, v in ann.items()} if isinstance(ann, dict) else {}
    )
    at = obj.get("artifactType")
    plat = obj.get("platform")
    platform = (
        {k: str(plat[k])[:64] for k in ("os", "architecture", "variant") if k in plat}
        if isinstance(plat, dict)
        else {}
    )
    return Descriptor(mt, digest, size, annotations, at if isinstance(at, str) else None, platform), ""


def media_short(media_type: str) -> str:
    """``application/vnd.docker.ai.gguf.v3`` -> ``docker.ai.gguf.v3``: a readable, filesystem-safe stem."""
    s = media_type.split("/", 1)[-1]
    if s.startswith("vnd."):
        s = s[4:]
    s = _UNSAFE_NAME_CHARS.sub("_", s)[:80].strip("._") or "blob"
    return s


def fallback_name(d: Descriptor) -> str:
    return f"{media_short(d.media_type)}-{d.hex[:12]}"


def unsafe_title_reason(title: str) -> str | None:
    """Why a title cannot be used as a relative path, or None when it can."""
    if "\0" in title:
        return "contains a NUL byte"
    if "\\" in title:
        return "contains a backslash"
    if title.startswith("/") or re.match(r"^[A-Za-z]:", title):
        return "is an absolute path"
    if ".." in title.split("/"):
        return "contains a '..' component"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in title):
        return "contains control characters"
    if len(title) > MAX_TITLE:
        return f"is longer than {MAX_TITLE} characters"
    return None


def _normalise(title: str) -> str:
    parts = [p for p in title.split("/") if p not in ("", ".")]
    return "/".join(parts)


def shown(title: str) -> str:
    """A title as it may appear in a report: printable, bounded."""
    return title.encode("unicode_escape").decode("ascii")[:300]


def layer_role(media_type: str) -> str:
    for prefix, role in _ROLES:
        if media_type.startswith(prefix):
            return role
    return "unknown media type"


def detect_layout(doc: dict[str, Any], config: Descriptor | None, layers: list[Descriptor]) -> str:
    cfg = config.media_type if config else ""
    if cfg == KITOPS_CONFIG:
        return "kitops"
    if doc.get("artifactType") in MODELPACK_ARTIFACT or cfg in MODELPACK_CONFIG:
        return "modelpack"
    if cfg.startswith("application/vnd.docker.ai.") or any(
        d.media_type.startswith("application/vnd.docker.ai.") for d in layers
    ):
        return "docker-model-runner"
    if any(TITLE_ANNOTATIONS[0] in d.annotations for d in layers):
        return "oras"
    if cfg in CONTAINER_CONFIGS:
        return "container-image"
    return "generic"


def _title(d: Descriptor) -> str | None:
    for key in TITLE_ANNOTATIONS:
        if key in d.annotations:
            return d.annotations[key]
    return None


def map_manifest(doc: dict[str, Any], prefix: str = "", max_layers: int = MAX_LAYERS) -> Layout:
    """Files (layers and a non-empty config) of one image manifest, with naming problems as issues."""
    issues: list[Issue] = []
    config, why = parse_descriptor(doc.get("config")) if "config" in doc else (None, "")
    if "config" in doc and config is None:
        issues.append(
            Issue(f"{prefix}<config>", "OCI-DESCRIPTOR-INVALID", f"config descriptor not read: {why}")
        )
    raw_layers = doc.get("layers")
    if raw_layers is None:
        raw_layers = doc.get("blobs", [])  # the short-lived OCI artifact manifest lists "blobs"
    if not isinstance(raw_layers, list):
        issues.append(
            Issue(f"{prefix}<layers>", "OCI-DESCRIPTOR-INVALID", "'layers' is not a list; nothing read")
        )
        raw_layers = []
    if len(raw_layers) > max_layers:
        issues.append(
            Issue(
                f"{prefix}<layers>",
                "OCI-MANIFEST-LIMIT",
                f"manifest lists {len(raw_layers)} layers; only the first {max_layers} were scanned",
                {"layers": str(len(raw_layers)), "limit": str(max_layers)},
            )
        )
        raw_layers = raw_layers[:max_layers]
    layers: list[Descriptor] = []
    for i, obj in enumerate(raw_layers):
        d, why = parse_descriptor(obj)
        if d is None:
            issues.append(
                Issue(f"{prefix}<layer {i}>", "OCI-DESCRIPTOR-INVALID", f"layer {i} not read: {why}")
            )
            continue
        layers.append(d)
    layout = Layout(detect_layout(doc, config, layers), issues=issues)
    taken: set[str] = set()

    def add(d: Descriptor, role: str, is_config: bool) -> None:
        title = _title(d)
        name = fallback_name(d)
        if title is not None:
            reason = unsafe_title_reason(title)
            if reason is None and _normalise(title):
                name = _normalise(title)
            else:
                reason = reason or "is empty"
                layout.issues.append(
                    Issue(
                        prefix + shown(title),
                        "OCI-LAYER-PATH-TRAVERSAL",
                        f"layer title {reason}; a client writing it could escape its destination "
                        f"folder. Its bytes are scanned as {prefix}{name}",
                        {"title": shown(title), "digest": d.digest, "scanned_as": prefix + name},
                    )
                )
        path = prefix + name
        if path in taken or any(t.startswith(path + "/") or path.startswith(t + "/") for t in taken):
            alt = f"{prefix}dup-{d.hex[:12]}/{name}"
            layout.issues.append(
                Issue(
                    path,
                    "OCI-LAYER-DUPLICATE-PATH",
                    f"another blob already claims {path}; this one ({d.digest}) is scanned as {alt}",
                    {"digest": d.digest, "scanned_as": alt},
                )
            )
            path = alt
        taken.add(path)
        layout.files.append(LayerFile(path, d, role, is_config))

    if config is not None and not (config.digest == EMPTY_CONFIG_DIGEST and config.size == 2):
        add(config, "config", True)
    for d in layers:
        add(d, layer_role(d.media_type), False)
    return layout


def _sub_dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` when it is a JSON object, else an empty dict."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def config_info(media_type: str, data: bytes) -> dict[str, str]:
    """A few facts from a (small) config blob, for display only: never trusted, never required."""
    if len(data) > MAX_CONFIG_PARSE:
        return {}
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            out[key] = str(value)[:200]

    if media_type == KITOPS_CONFIG:
        pkg = _sub_dict(doc, "package")
        model = _sub_dict(doc, "model")
        put("kitops_package", pkg.get("name"))
        put("kitops_version", pkg.get("version"))
        put("kitops_model", model.get("name"))
        put("kitops_model_path", model.get("path"))
        put("kitops_framework", model.get("framework"))
    elif media_type in MODELPACK_CONFIG:
        desc = _sub_dict(doc, "descriptor")
        cfg = _sub_dict(doc, "config")
        put("model_name", desc.get("name"))
        put("model_version", desc.get("version"))
        put("model_format", cfg.get("format"))
    elif media_type.startswith("application/vnd.docker.ai."):
        cfg = _sub_dict(doc, "config")
        put("model_format", cfg.get("format"))
        put("model_quantization", cfg.get("quantization"))
        put("model_size", cfg.get("size"))
    return out


__all__ = [
    "ACCEPT",
    "Descriptor",
    "INDEX_TYPES",
    "Issue",
    "LayerFile",
    "Layout",
    "MANIFEST_TYPES",
    "config_info",
    "map_manifest",
    "media_short",
    "parse_descriptor",
    "unsafe_title_reason",
]
