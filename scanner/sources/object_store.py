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

import inspect
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from ..io.aio_bounded import (
    BodyRefused,
    bounded_resolver,
    capped_response_class,
    no_redirect_session_cls,
    within,
)
from ..io.deadline import NetLimits, NetworkDeadline
from ..io.http_reader import FaultLog
from ..io.http_session import DEFAULT_TIMEOUT, redact
from ..io.reader import IntegrityProblem, Reader, ReaderError
from ..io.retry import RetryPolicy
from .base import Artifact, Snapshot, Source, SourceError

SCHEMES = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure")}
MAX_OBJECTS = 1_000_000
# S3, GCS and Azure listings are streamed page by page and slimmed to the fields a read needs; past this many
# entries the target is refused before memory grows (each listed object costs ~2 KB between botocore, fsspec and the
# snapshot: 60k objects peaked at 220 MB when fsspec collected the whole listing first).
MAX_STREAMED_OBJECTS = 20_000
# A body a client reads whole without a Range (a listing page, an object's metadata): gcsfs asks for pages of
# 1000 objects (~1 MB of JSON; custom metadata can reach 8 KB an object).
MAX_BODY_BYTES = 16 << 20
# An S3 answer without a Range (a ListObjectsV2 page: 1000 keys, ~1.3 MB at most with 1 KB keys), parsed whole
# by botocore into XML elements and dicts (~10x its size).
MAX_S3_BODY_BYTES = 4 << 20


class _TooManyObjects(Exception):
    pass


async def _bounded_listing(infos: AsyncIterator[dict[str, Any]], limit: int) -> dict[str, dict[str, Any]]:
    """The files of a streamed listing, slimmed to what a read needs; ``_TooManyObjects`` past ``limit`` entries.

    Every entry counts, repeated names and directory markers included: a store that sends the same page
    again and again is stopped at the same bound as one that lists too many objects.
    """
    out: dict[str, dict[str, Any]] = {}
    seen = 0
    async for info in infos:
        seen += 1
        if seen > limit:
            raise _TooManyObjects
        if info.get("type") != "file":
            continue
        out[info["name"]] = {k: v for k, v in info.items() if k in _KEEP}
    return out


def _prefix(key: str) -> str:
    return key.rstrip("/") + "/" if key else ""


def _s3_infos(fs: Any, root: str) -> AsyncIterator[dict[str, Any]]:
    """Every object under ``root/`` as s3fs lists it (``_iterdir``, no delimiter), page by page."""
    bucket, key, _ = fs.split_path(root)
    return fs._iterdir(bucket, delimiter="", prefix=_prefix(key))  # type: ignore[no-any-return]


async def _gcs_infos(fs: Any, root: str) -> AsyncIterator[dict[str, Any]]:
    """Every object under ``root/`` from the GCS JSON API, one page (at most 1000 objects) at a time.

    gcsfs's own ``_find`` gathers every page before returning; this walks the same ``objects.list`` pages
    (``_call_list_objects``) and hands each object on as gcsfs describes it (``_process_object``).
    """
    bucket, key, _ = fs.split_path(root)
    token: str | None = None
    while True:
        kw: dict[str, Any] = {"prefix": _prefix(key), "maxResults": 1000}
        if token:
            kw["pageToken"] = token
        page = await fs._call_list_objects(bucket, **kw)
        for item in page.get("items") or ():
            yield fs._process_object(bucket, item)
        token = page.get("nextPageToken")
        if not token:
            return


async def _azure_infos(fs: Any, root: str) -> AsyncIterator[dict[str, Any]]:
    """Every blob under ``root/`` from ``list_blobs`` (paged by the Azure SDK), described by adlfs ``_details``.

    adlfs's ``_find`` gathers every blob before returning; this hands each one on as its page arrives.
    """
    container, key, _ = fs.split_path(root.rstrip("/") + "/")
    async with fs.service_client.get_container_client(container=container) as client:
        async for blob in client.list_blobs(include=["metadata"], name_starts_with=_prefix(key)):
            for info in await fs._details([blob]):
                yield info


_STREAMED = {"s3": _s3_infos, "gs": _gcs_infos, "az": _azure_infos, "abfs": _azure_infos}
# the back-end methods each streamed listing uses; a back end without them is listed whole by ``find``
_NEEDS = {
    "s3": ("_iterdir",),
    "gs": ("_call_list_objects", "_process_object"),
    "az": ("service_client", "_details"),
    "abfs": ("service_client", "_details"),
}


def streamed_listing(scheme: str, fs: Any) -> Callable[[Any, str], AsyncIterator[dict[str, Any]]] | None:
    """The page-by-page listing for ``fs``, or None when this back end (or its version) offers none."""
    if not getattr(fs, "async_impl", False) or not all(hasattr(fs, a) for a in _NEEDS.get(scheme, ("-",))):
        return None
    return _STREAMED.get(scheme)


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


_KEEP = frozenset({"name", "type", "size", "ETag", "etag", "md5Hash", *_IDENTITY_FIELDS})  # what a read uses


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


class _Refused(Exception):
    """The store answered a read with bytes that must not be judged (encoded, or more than asked for)."""


def backend_options(scheme: str, cls: Any = None) -> dict[str, Any]:
    """Connect/read timeouts, a bounded retry count and our resolver for the SDK behind ``scheme``.

    The SDKs' read timeouts are per socket read (a trickling server never trips them): ``ObjectReader`` and
    the listing add an overall deadline per call on top (``aio_bounded.within``). Only options the back end's
    constructor accepts are passed.
    """
    net, retry = NetLimits.from_env(), RetryPolicy()
    connect = min(DEFAULT_TIMEOUT[0], net.seconds)
    read = min(DEFAULT_TIMEOUT[1], net.stall_seconds, net.seconds)
    opts: dict[str, Any] = {}
    if scheme == "s3":
        config: dict[str, Any] = {
            "connect_timeout": connect,
            "read_timeout": read,
            "retries": {"max_attempts": retry.attempts, "mode": "standard"},
        }
        session_cls = no_redirect_session_cls(MAX_S3_BODY_BYTES)
        if session_cls is not None:
            config["http_session_cls"] = session_cls
            config["connector_args"] = {"resolver": bounded_resolver(connect), "keepalive_timeout": 12}
        opts = {"retries": retry.attempts, "config_kwargs": config}
    elif scheme == "gs":
        try:
            import aiohttp

            opts = {
                "retries": retry.attempts,
                "session_kwargs": {
                    "timeout": aiohttp.ClientTimeout(sock_connect=connect, sock_read=read),
                    # gcsfs reads every body whole: never more than the Range asked for, listings capped
                    "response_class": capped_response_class(MAX_BODY_BYTES),
                },
            }
        except ImportError:
            opts = {}
    elif scheme in ("az", "abfs"):
        opts = {"connection_timeout": int(max(1, connect)), "read_timeout": int(max(1, read))}
    if cls is not None:
        accepted = _init_parameters(cls)
        if accepted is not None:
            opts = {k: v for k, v in opts.items() if k in accepted}
    return opts


def _init_parameters(cls: Any) -> set[str] | None:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the MRO.

    gcsfs 2026's ``ExtendedGcsFileSystem.__init__(*args, **kwargs)`` hands everything to ``GCSFileSystem``:
    reading only the subclass's signature dropped every option (timeouts and retries included).
    None: not knowable (pass every option).
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names


def _cap_azure_bodies(fs: Any) -> None:
    """The Azure SDK reads each answer whole (a download's first range included, whatever its length): its
    aiohttp session gets ``capped_response_class``, so a server ignoring ``x-ms-range`` or lying in
    ``Content-Range`` cannot fill memory (a 300 MB body for a 1000-byte read peaked at 750 MB).

    adlfs offers no transport option: the service client's transport (shared by every blob client it makes)
    has its ``open`` wrapped, on this instance only, to set the session's response class once it exists.
    """
    transport = getattr(getattr(getattr(fs, "service_client", None), "_config", None), "transport", None)
    opener = getattr(transport, "open", None)
    if transport is None or opener is None or getattr(transport, "_modelward_capped", False):
        return
    capped = capped_response_class(MAX_BODY_BYTES)

    async def open_capped() -> None:
        await opener()
        session = getattr(transport, "session", None)
        if session is not None and hasattr(session, "_response_class"):
            session._response_class = capped

    transport.open = open_capped
    transport._modelward_capped = True


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
        faults: FaultLog | None = None,
    ) -> None:
        super().__init__()
        self.fs, self.key, self.size, self.name, self.version_id = fs, key, size, name, version_id
        self.etag = etag
        self.identity = identity or {}
        # transport faults (out of time, refused bodies): the run could not complete, so it ends with exit 2
        self.faults = faults if faults is not None else FaultLog()
        if name in self.faults.failed:
            raise ReaderError(f"{self.faults.failed[name]} (not fetched again)")
        self.net = NetLimits.from_env()

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
        want = max(0, min(offset + length, self.size) - offset)
        seconds = self.net.seconds + want / self.net.budget_rate
        try:
            data = self._get(offset, length, want, seconds)
        except FileNotFoundError:
            raise ReaderError(f"{self.name}: object disappeared while scanned") from None
        except ReaderError:
            raise
        except NetworkDeadline as exc:
            raise self._fault(f"{self.name}: read at offset {offset} from {exc}") from None
        except (_Refused, BodyRefused) as exc:
            raise self._fault(f"{self.name}: {exc}") from None
        except Exception as exc:  # botocore/aiohttp/azure errors: a transport fault, never a verdict
            text = str(exc).lower()
            if "pre-condition" in text or "precondition" in text:
                raise self._changed() from None
            raise self._fault(
                f"{self.name}: read failed at offset {offset}: {type(exc).__name__}: {exc}"
            ) from None
        if len(data) != want:
            raise self._fault(
                f"{self.name}: the store answered {len(data)} bytes to a request for {want} at offset {offset}"
            )
        return bytes(data)

    def _fault(self, message: str) -> ReaderError:
        message = redact(message)[:500]
        self.faults.add(self.name, message)
        return ReaderError(message)

    def _get(self, offset: int, length: int, want: int, seconds: float) -> bytes:
        what = f"{self._proto()}://{self.key}"
        if self._is_s3() and _s3_fetch_range() is not None:
            bucket, key, vers = self.fs.split_path(self.key)
            return within(  # type: ignore[no-any-return]
                self.fs,
                lambda: _s3_get(self.fs, bucket, key, self.version_id or vers, offset, want, self.etag),
                lambda: self._get_sync(offset, length),
                seconds,
                what,
            )
        kwargs: dict[str, Any] = {"start": offset, "end": offset + length}
        if self.version_id:
            kwargs["version_id"] = self.version_id
        return within(  # type: ignore[no-any-return]
            self.fs,
            lambda: self.fs._cat_file(self.key, **kwargs),
            lambda: self.fs.cat_file(self.key, **kwargs),
            seconds,
            what,
        )

    def _proto(self) -> str:
        proto = getattr(self.fs, "protocol", "")
        return str(proto[0] if isinstance(proto, (tuple, list)) else proto)

    def _get_sync(self, offset: int, length: int) -> bytes:
        fetch = _s3_fetch_range() if self.etag and self._is_s3() else None
        if fetch is not None:
            bucket, key, vers = self.fs.split_path(self.key)
            return fetch(  # type: ignore[no-any-return]
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
        return self.fs.cat_file(self.key, **kwargs)  # type: ignore[no-any-return]

    def _changed(self) -> ReaderError:
        self.integrity_problems.append(
            IntegrityProblem("REGISTRY-CONTENT-CHANGED", _CHANGED, {"listed_etag": (self.etag or "")[:80]})
        )
        return ReaderError(f"{self.name}: {_CHANGED}")


async def _s3_get(
    fs: Any, bucket: str, key: str, version_id: str | None, offset: int, want: int, etag: str | None
) -> bytes:
    """One ranged GetObject (pinned by version id or If-Match), never more than ``want`` bytes read.

    A body stored or sent with a Content-Encoding is refused, not decoded nor judged: a client that decodes
    would load other bytes than the ones judged. A body longer than the range asked for is refused as soon as
    one byte too many arrives (a server ignoring Range must not fill memory).
    """
    if want == 0:
        return b""
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={offset}-{offset + want - 1}"}
    if version_id:
        kw["VersionId"] = version_id
    if etag:
        kw["IfMatch"] = etag
    resp = await fs._call_s3("get_object", **kw)
    body = resp["Body"]
    try:
        encoding = [c.strip().lower() for c in str(resp.get("ContentEncoding") or "").split(",") if c.strip()]
        bad = [c for c in encoding if c not in ("identity", "aws-chunked")]
        if bad:
            raise _Refused(
                f"the store sent the object with Content-Encoding: {', '.join(bad)[:60]}; refused, not "
                f"decoded (a client that decodes would load other bytes than the ones judged)"
            )
        chunks: list[bytes] = []
        got = 0
        while True:
            piece = await body.read(min(1 << 20, want + 1 - got))
            if not piece:
                break
            got += len(piece)
            chunks.append(piece)
            if got > want:
                raise _Refused(
                    f"the store sent more than the {want} bytes asked for at offset {offset}; refused"
                )
        return b"".join(chunks)
    finally:
        body.close()


class ObjectStoreSource(Source):
    def __init__(self, **storage_options: Any) -> None:
        self.storage_options = {k: v for k, v in storage_options.items() if k in ("anon", "profile")}

    def _filesystem(self, scheme: str, target: str) -> Any:
        module, extra = SCHEMES[scheme]
        try:
            import fsspec

            proto = scheme if scheme != "az" else "abfs"
            cls = fsspec.get_filesystem_class(proto)
            # a fresh instance per target: endpoints and credentials are read from the environment now
            fs = fsspec.filesystem(
                proto, skip_instance_cache=True, **backend_options(scheme, cls), **self.storage_options
            )
            if scheme in ("az", "abfs"):
                _cap_azure_bodies(fs)
            return fs
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
        seconds = NetLimits.from_env().seconds
        try:
            info = within(fs, lambda: fs._info(root), lambda: fs.info(root), seconds, f"{target}: info")
            if info.get("type") == "file":
                listing = {root: info}
            elif (stream := streamed_listing(scheme, fs)) is not None:
                listing = within(
                    fs,
                    lambda: _bounded_listing(stream(fs, root), MAX_STREAMED_OBJECTS),
                    lambda: fs.find(root, detail=True),
                    seconds,
                    f"{target}: listing",
                )
            else:
                listing = within(
                    fs,
                    lambda: fs._find(root, detail=True),
                    lambda: fs.find(root, detail=True),
                    seconds,
                    f"{target}: listing",
                )
        except NetworkDeadline as exc:
            raise SourceError(redact(str(exc))) from None
        except _TooManyObjects:
            raise SourceError(
                f"{target}: more than {MAX_STREAMED_OBJECTS} objects; listing stopped (memory bound), "
                f"scan narrower prefixes"
            ) from None
        except FileNotFoundError:
            raise SourceError(f"{target}: no such bucket, object or prefix") from None
        except PermissionError as exc:
            raise SourceError(redact(f"{target}: access denied ({exc})")) from None
        except Exception as exc:
            raise SourceError(redact(f"{target}: cannot list: {type(exc).__name__}: {exc}")) from None
        if len(listing) > MAX_OBJECTS:
            raise SourceError(f"{target}: more than {MAX_OBJECTS} objects; audit narrower prefixes")
        faults = FaultLog()
        snap = Snapshot(target=target, kind="objectstore", resolved=target, root=target, errors=faults.errors)
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
                        ObjectReader,
                        fs,
                        key,
                        size,
                        rel,
                        version,
                        _quoted(raw_etag),
                        listed_identity(meta),
                        faults,
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
