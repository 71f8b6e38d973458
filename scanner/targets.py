"""Target URIs and the source that resolves each. Parsing a target never touches the network."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from .sources.base import Snapshot, Source, SourceError

REMOTE_SCHEMES = ("hf://", "oci://", "https://", "http://", "s3://", "gs://", "az://", "abfs://")
OBJECT_STORE_SCHEMES = ("s3://", "gs://", "az://", "abfs://")


@dataclass(frozen=True)
class Target:
    raw: str
    kind: str  # local | hf | oci | url | objectstore | mlflow


def parse_target(raw: str) -> Target:
    if not raw:
        raise SourceError("empty target")
    if raw.startswith("hf://"):
        return Target(raw, "hf")
    if raw.startswith("oci://"):
        return Target(raw, "oci")
    if raw.startswith(("https://", "http://")):
        return Target(raw, "url")
    if raw.startswith(OBJECT_STORE_SCHEMES):
        return Target(raw, "objectstore")
    if raw.startswith(("models:/", "runs:/")):
        return Target(raw, "mlflow")
    if "://" in raw and not raw.startswith("file://"):
        scheme = raw.split("://", 1)[0]
        raise SourceError(
            f"{raw}: unsupported scheme {scheme!r} (use a path, file://, hf://, oci://, https://, "
            "s3://, gs://, az://, models:/, runs:/)"
        )
    return Target(raw, "local")


def _construct(cls: type[Source], options: dict[str, object]) -> Source:
    """Pass each source only the options it understands (--insecure means nothing to the Hub)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(**options)
    return cls(**{k: v for k, v in options.items() if k in params})


def source_for(target: Target, **options: object) -> Source:
    """The Source for a target kind; remote sources are imported lazily (they pull in HTTP clients)."""
    if target.kind == "local":
        from .sources.local import LocalSource

        return LocalSource()
    try:
        if target.kind == "hf":
            from .sources.hf import HFSource

            return _construct(HFSource, options)
        if target.kind == "oci":
            from .sources.oci import OCISource

            return _construct(OCISource, options)
        if target.kind == "url":
            from .sources.url import URLSource

            return _construct(URLSource, options)
        if target.kind == "objectstore":
            from .sources.object_store import ObjectStoreSource

            return ObjectStoreSource()
        if target.kind == "mlflow":
            from .sources.mlflow_source import MLflowSource

            return MLflowSource()
    except ImportError as exc:
        if exc.name and exc.name.startswith("scanner.sources"):
            raise SourceError(
                f"{target.raw}: {target.kind} targets are not supported by this build"
            ) from None
        raise
    raise SourceError(f"{target.raw}: unknown target kind {target.kind}")


def resolve(raw: str, **options: object) -> Snapshot:
    t = parse_target(raw)
    return source_for(t, **options).resolve(raw)
