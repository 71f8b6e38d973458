"""Object stores (s3://, gs://, az://) through fsspec: ranged reads, credentials from each SDK's own config.

A multi-GB checkpoint in a bucket is judged like one on the Hub: the inspectors ask for the ranges they
need (zip directory, pickle members) and only those are fetched. Credentials and endpoints come from the
SDKs' standard configuration (AWS_ENDPOINT_URL, profiles, environment, instance roles; the GCS and Azure
equivalents) and never pass through modelward. Each object's ETag and version id identify its bytes: a
read pins the version it listed, so an object overwritten during the scan is not mixed into the verdict.
Where fsspec gives no way to pin a read (gcsfs, adlfs without versioning), the object's identity as listed
(generation, ETag, checksums, size, modification time) is compared with a fresh ``info`` after inspection:
an overwrite during the scan changes it and blocks.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..io.reader import IntegrityProblem, Reader, ReaderError
from .base import Artifact, Snapshot, Source, SourceError

SCHEMES = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure")}
MAX_OBJECTS = 1_000_000


_CHANGED = "the object changed in the bucket during the scan (its ETag no longer matches the listing)"
# fields fsspec back ends report that change when an object is rewritten (s3fs, gcsfs, adlfs, memory/local)
_IDENTITY_FIELDS = (
    "ETag",
    "etag",
    "generation",
    "metageneration",
    "md5Hash",
    "crc32c",
    "VersionId",
    "version_id",
    "size",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "created",
)


def listed_identity(meta: dict[str, Any]) -> dict[str, str]:
    """What identifies an object's content in a listing entry (only the fields its back end reports)."""
    return {k: str(meta[k]) for k in _IDENTITY_FIELDS if meta.get(k) is not None}


def _s3_fetch_range() -> Any:
    """s3fs's ranged GET that takes extra request arguments (If-Match), when this s3fs has it."""
    try:
        from s3fs.core import _fetch_range
    except Exception:
        return None
    return _fetch_range


class ObjectReader(Reader):
    """Random access to one object by ranged GETs, pinned to the version that was listed.

    A versioned object is read by its version id. An S3 object in a bucket without versioning is read
    with ``If-Match: <listed ETag>``, so an overwrite between the listing and any later range is an
    integrity finding (REGISTRY-CONTENT-CHANGED), never bytes of two objects mixed into one verdict.
    """

    remote = True

    def __init__(
        self,
        fs: Any,
        key: str,
        size: int,
        name: str,
        version_id: str | None = None,
        etag: str | None = None,
        identity: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.fs, self.key, self.size, self.name, self.version_id = fs, key, size, name, version_id
        self.etag = etag
        self.identity = identity or {}

    def _pinned(self) -> bool:
        """Every read names the listed content: a version id, or S3's If-Match on the listed ETag."""
        return bool(self.version_id) or (self._is_s3() and bool(self.etag) and _s3_fetch_range() is not None)

    def _is_s3(self) -> bool:
        proto = getattr(self.fs, "protocol", None)
        return "s3" in (proto if isinstance(proto, (tuple, list)) else (proto,))

    def changed(self) -> str | None:
        if self._pinned() or not self.identity:
            return None
        try:
            now = listed_identity(self.fs.info(self.key))
        except FileNotFoundError:
            return "the object was deleted during the scan"
        except Exception as exc:  # fail closed: an unconfirmed identity is not a verdict on these bytes
            return f"could not confirm the object is unchanged: {type(exc).__name__}: {exc}"[:300]
        moved = sorted(k for k, v in self.identity.items() if now.get(k) != v)
        if not moved:
            return None
        return (
            f"the object changed in the bucket during the scan ({', '.join(moved)} differ from the listing)"
        )

    def _read(self, offset: int, length: int) -> bytes:
        try:
            data = self._get(offset, length)
        except FileNotFoundError:
            raise ReaderError(f"{self.name}: object disappeared while scanned") from None
        except ReaderError:
            raise
        except Exception as exc:  # botocore/aiohttp/azure errors: a transport fault, never a verdict
            text = str(exc).lower()
            if "pre-condition" in text or "precondition" in text:
                raise self._changed() from None
            raise ReaderError(
                f"{self.name}: read failed at offset {offset}: {type(exc).__name__}: {exc}"
            ) from None
        return bytes(data)

    def _get(self, offset: int, length: int) -> bytes:
        fetch = _s3_fetch_range() if self.etag and self._is_s3() else None
        if fetch is not None:
            bucket, key, vers = self.fs.split_path(self.key)
            return fetch(
                self.fs,
                bucket,
                key,
                self.version_id or vers,
                offset,
                offset + length,
                req_kw={"IfMatch": self.etag},
            )
        kwargs: dict[str, Any] = {"start": offset, "end": offset + length}
        if self.version_id:
            kwargs["version_id"] = self.version_id
        return self.fs.cat_file(self.key, **kwargs)

    def _changed(self) -> ReaderError:
        self.integrity_problems.append(
            IntegrityProblem("REGISTRY-CONTENT-CHANGED", _CHANGED, {"listed_etag": (self.etag or "")[:80]})
        )
        return ReaderError(f"{self.name}: {_CHANGED}")


class ObjectStoreSource(Source):
    def __init__(self, **storage_options: Any) -> None:
        self.storage_options = {k: v for k, v in storage_options.items() if k in ("anon", "profile")}

    def _filesystem(self, scheme: str, target: str) -> Any:
        module, extra = SCHEMES[scheme]
        try:
            import fsspec

            # a fresh instance per target: endpoints and credentials are read from the environment now
            return fsspec.filesystem(
                scheme if scheme != "az" else "abfs", skip_instance_cache=True, **self.storage_options
            )
        except ImportError:
            raise SourceError(
                f"{target}: {scheme}:// needs {module}: pip install 'modelward[{extra}]'"
            ) from None
        except Exception as exc:
            raise SourceError(
                f"{target}: cannot set up {scheme}:// access: {type(exc).__name__}: {exc}"
            ) from None

    def resolve(self, target: str) -> Snapshot:
        scheme, _, rest = target.partition("://")
        if scheme not in SCHEMES or not rest.strip("/"):
            raise SourceError(f"{target}: expected {scheme}://BUCKET[/PREFIX]")
        fs = self._filesystem(scheme, target)
        root = rest.strip("/")
        try:
            info = fs.info(root)
            listing = {root: info} if info.get("type") == "file" else fs.find(root, detail=True)
        except FileNotFoundError:
            raise SourceError(f"{target}: no such bucket, object or prefix") from None
        except PermissionError as exc:
            raise SourceError(f"{target}: access denied ({exc})") from None
        except Exception as exc:
            raise SourceError(f"{target}: cannot list: {type(exc).__name__}: {exc}") from None
        if len(listing) > MAX_OBJECTS:
            raise SourceError(f"{target}: more than {MAX_OBJECTS} objects; audit narrower prefixes")
        snap = Snapshot(target=target, kind="objectstore", resolved=target, root=target)
        single = info.get("type") == "file"
        for key, meta in sorted(listing.items()):
            if meta.get("type") != "file":
                continue
            rel = key.rsplit("/", 1)[-1] if single else key[len(root) :].lstrip("/")
            size = int(meta.get("size") or 0)
            version = meta.get("VersionId") or meta.get("version_id")
            raw_etag = str(meta.get("ETag") or meta.get("etag") or meta.get("md5Hash") or "")
            etag = raw_etag.strip('"')
            snap.artifacts.append(
                Artifact(
                    path=rel,
                    size=size,
                    opener=partial(
                        ObjectReader, fs, key, size, rel, version, _quoted(raw_etag), listed_identity(meta)
                    ),
                    info={k: v for k, v in (("etag", etag), ("version_id", version or "")) if v},
                )
            )
        return snap


def _quoted(etag: str) -> str | None:
    """An ETag as If-Match wants it (quoted); None when the listing had none."""
    etag = etag.strip()
    if not etag:
        return None
    return etag if etag.startswith(('"', "W/")) else f'"{etag}"'
