"""MLflow targets: ``models:/NAME/VERSION|STAGE|@ALIAS`` and ``runs:/RUN_ID/PATH`` against MLFLOW_TRACKING_URI.

Against an http(s) tracking server everything goes through modelward's own HTTP stack (``scanner.io``), never
the MLflow client's: the REST calls that resolve a version, stage or alias to the immutable version number,
the artifact listing, and, when the server proxies the artifact store (``mlflow-artifacts:``, the default of
``mlflow server``), every artifact read, as HTTP Range requests of only the bytes the inspectors need. So the
program's guarantees hold: a wall-clock budget and stall detection on every request (a server trickling one
byte a second cannot hang the scan), name resolution under the same deadline, the one bounded retry policy,
``Accept-Encoding: identity`` with any encoded body refused (never decoded), a body that disagrees with the
listed size is a REGISTRY-SIZE-MISMATCH finding, credentials (MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME /
PASSWORD, userinfo in the URI) go only to the tracking server's origin and never into messages.

Artifacts kept elsewhere (a run logged straight to ``s3://``, ``file:``, ``dbfs:`` ...) or a tracking URI that
is not http(s) are still read with the MLflow client, which knows those stores, but bounded: a wall-clock
deadline per call, MLflow's retry count and per-request timeout lowered for the duration of the call, and a
downloaded file larger than its listing (or than the cap) fails closed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ..io.deadline import NetLimits, NetworkDeadline, run_bounded
from ..io.http_reader import FaultLog, HTTPRangeReader
from ..io.http_session import HTTPClient, HTTPFetchError, Stats, redact, redact_url, register_secret
from ..io.json_budget import JsonTooCostly, loads_bounded
from ..io.reader import FileReader, ReaderError
from ..io.retry import RetryPolicy
from .base import Artifact, Snapshot, Source, SourceError
from .docker_auth import read_bounded

MAX_ARTIFACTS = 100_000
MAX_LISTINGS = 20_000  # directory listings per target (each one request)
# one REST answer (a listing of 100k files is ~7 MB); what parsing it may cost is bounded too (json_budget):
# 16 MB of ``[[]],`` peaked at 600 MB once parsed, a listing costs ~800 bytes a file, 40 MB ~ 50k files
MAX_JSON_BYTES = 8 << 20
MAX_SEARCH_PAGES = 100
MAX_DOWNLOAD_BYTES = 64 << 30  # a file the MLflow client downloads with no listed size
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/]+)|@(?P<alias>[^/]+))?/?(?P<path>.*)$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z_-]+)/?(?P<path>.*)$")
_LOGGED_MODEL = re.compile(r"^models:/(?P<id>m-[0-9a-zA-Z_-]+)/?(?P<path>.*)$")
_PROXY_ROOT = "/api/2.0/mlflow-artifacts/artifacts"


def _one_line(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split())[:300] or type(exc).__name__)


def _safe_rel(path: str, what: str) -> str:
    """A relative artifact path as listed, refused when it could name something outside the listed folder."""
    parts = path.replace("\\", "/").split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in path:
        raise SourceError(f"{what}: the server listed an unsafe artifact path {path[:120]!r}; refused")
    return path


# ---- the tracking server's REST API through our HTTP stack ---------------------------------------------


class TrackingServer:
    """MLflow's REST API at an http(s) MLFLOW_TRACKING_URI, with the credentials MLflow itself reads."""

    def __init__(self, uri: str, client: HTTPClient | None = None) -> None:
        try:
            p = urlsplit(uri)
            _ = p.port
        except ValueError:
            raise SourceError(f"{redact_url(uri)}: malformed MLFLOW_TRACKING_URI") from None
        if not p.hostname:
            raise SourceError(f"{redact_url(uri)}: MLFLOW_TRACKING_URI has no host")
        self.auth: dict[str, str] = {}
        netloc = p.netloc
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if "@" in netloc:
            userinfo, netloc = netloc.rsplit("@", 1)
            register_secret(userinfo)
            if not user:
                user, _, password = userinfo.partition(":")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            cred = base64.b64encode(f"{user}:{password}".encode()).decode()
            for s in (password, cred):
                register_secret(s)
            self.auth["Authorization"] = f"Basic {cred}"
        elif token:
            register_secret(token)
            self.auth["Authorization"] = f"Bearer {token}"
        self.base = f"{p.scheme}://{netloc}{p.path.rstrip('/')}"
        self.display = redact_url(self.base)
        # The user named this server; plain http is theirs to choose (mlflow server listens on http by default).
        self.client = client or HTTPClient(allow_http=p.scheme.lower() == "http")
        if os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self.client.session.verify = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        elif os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
            self.client.session.verify = False
        if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            self.client.session.cert = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
        self.stats = Stats()

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """One REST call; the decoded JSON answer. Not found raises ``LookupError`` (with MLflow's message)."""
        url = self.base + path + ("?" + urlencode(params) if params else "")
        what = f"{method} {redact_url(url)}"
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = self.client.request(
                method,
                url,
                headers=headers,
                auth_headers=self.auth,
                stream=True,
                stats=self.stats,
                data=json.dumps(body) if body is not None else None,
            )
        except HTTPFetchError as exc:
            raise SourceError(redact(f"MLflow tracking server {self.display}: {exc}")) from None
        with resp:
            data = read_bounded(resp, MAX_JSON_BYTES, what)
        try:
            doc = loads_bounded(data, what) if data.strip() else {}
        except JsonTooCostly as exc:
            raise SourceError(redact(f"MLflow tracking server {self.display}: {exc}")) from None
        except ValueError:
            doc = None
        if resp.status_code == 200 and isinstance(doc, dict):
            return doc
        detail = ""
        if isinstance(doc, dict):
            detail = " ".join(f"{doc.get('error_code', '')}: {doc.get('message', '')}".split())[:300]
        if resp.status_code == 404 or (
            isinstance(doc, dict) and doc.get("error_code") == "RESOURCE_DOES_NOT_EXIST"
        ):
            raise LookupError(redact(detail or f"HTTP 404 for {redact_url(url)}"))
        if resp.status_code in (401, 403):
            raise SourceError(
                f"MLflow tracking server {self.display} refused access (HTTP {resp.status_code}); "
                f"set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
            )
        if resp.status_code == 200:
            raise SourceError(f"{what}: the answer is not a JSON object")
        raise SourceError(redact(f"{what}: HTTP {resp.status_code} {detail}".strip()))

    def proxy_path(self, artifact_uri: str) -> str | None:
        """The path under the artifact proxy when ``artifact_uri`` is served by this server, else None."""
        p = urlsplit(artifact_uri)
        if p.scheme == "mlflow-artifacts":
            if p.netloc and (p.hostname or "").lower() != (urlsplit(self.base).hostname or "").lower():
                return None  # another server's proxy: our credentials are not for it
            return p.path.strip("/")
        if p.scheme in ("http", "https") and artifact_uri.startswith(self.base + _PROXY_ROOT):
            return artifact_uri[len(self.base + _PROXY_ROOT) :].strip("/")
        return None

    def artifact_url(self, path: str) -> str:
        return f"{self.base}{_PROXY_ROOT}/{quote(path, safe='/')}"


class MLflowSource(Source):
    def __init__(self, client: HTTPClient | None = None, **_other: object) -> None:
        self._client = client

    def resolve(self, target: str) -> Snapshot:
        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri:
            raise SourceError(f"{target}: set MLFLOW_TRACKING_URI to the tracking server")
        if uri.split("://", 1)[0].lower() in ("http", "https"):
            return self._resolve_rest(target, TrackingServer(uri, self._client))
        return self._resolve_client(target)

    # ---- http(s) tracking server: our own stack -------------------------------------------------------

    def _resolve_rest(self, target: str, server: TrackingServer) -> Snapshot:
        try:
            artifact_uri, resolved = self._artifact_root(target, server)
        except LookupError as exc:
            raise SourceError(f"{target}: cannot resolve: {exc}") from None
        proxied = server.proxy_path(artifact_uri)
        if proxied is None:  # artifacts in a store the server does not proxy: the MLflow client reads them
            return self._resolve_client(target, artifact_uri, resolved)
        faults = FaultLog()
        snap = Snapshot(target=target, kind="mlflow", resolved=resolved, root=target, errors=faults.errors)
        listings = [0]

        def walk(rel: str) -> None:
            listings[0] += 1
            if listings[0] > MAX_LISTINGS:
                raise SourceError(f"{target}: more than {MAX_LISTINGS} artifact folders")
            path = f"{proxied}/{rel}".strip("/") if rel else proxied
            try:
                doc = server.call("GET", _PROXY_ROOT, {"path": path})
            except LookupError as exc:
                raise SourceError(f"{target}: cannot list artifacts: {exc}") from None
            files = doc.get("files") or []
            if not isinstance(files, list):
                raise SourceError(f"{target}: malformed artifact listing")
            for f in sorted(files, key=lambda f: str(f.get("path", "")) if isinstance(f, dict) else ""):
                if not isinstance(f, dict):
                    raise SourceError(f"{target}: malformed artifact listing")
                child = _safe_rel(str(f.get("path", "")).rsplit("/", 1)[-1], target)
                child_rel = f"{rel}/{child}" if rel else child
                if f.get("is_dir"):
                    walk(child_rel)
                    continue
                if len(snap.artifacts) >= MAX_ARTIFACTS:
                    raise SourceError(f"{target}: more than {MAX_ARTIFACTS} artifacts")
                try:
                    size = int(f.get("file_size"))  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    size = -1
                url = server.artifact_url(f"{path}/{child}")
                opener = partial(self._open_proxied, server, url, child_rel, size, faults)
                snap.artifacts.append(
                    Artifact(
                        path=child_rel,
                        size=max(size, 0),
                        opener=opener,
                        info={"mlflow_uri": f"{resolved}/{child_rel}"},
                    )
                )

        walk("")
        if not snap.artifacts:
            raise SourceError(f"{target}: no artifacts")
        return snap

    @staticmethod
    def _open_proxied(
        server: TrackingServer, url: str, name: str, size: int, faults: FaultLog
    ) -> HTTPRangeReader:
        return HTTPRangeReader(
            url,
            name=name,
            client=server.client,
            size=size if size >= 0 else None,
            auth_headers=server.auth,
            stats=server.stats,
            faults=faults,
        )

    def _artifact_root(self, target: str, server: TrackingServer) -> tuple[str, str]:
        """(artifact URI of the target's root, the immutable name shown as resolved)."""
        m = _RUNS.match(target)
        if m:
            run = server.call("GET", "/api/2.0/mlflow/runs/get", {"run_id": m["run"]})
            root = str(((run.get("run") or {}).get("info") or {}).get("artifact_uri") or "")
            if not root:
                raise SourceError(f"{target}: the tracking server reports no artifact location for the run")
            path = m["path"].strip("/")
            return (f"{root.rstrip('/')}/{path}" if path else root), target.rstrip("/")
        m = _LOGGED_MODEL.match(target)
        if m:
            doc = server.call("GET", f"/api/2.0/mlflow/logged-models/{quote(m['id'], safe='')}")
            root = str(((doc.get("model") or {}).get("info") or {}).get("artifact_uri") or "")
            if not root:
                raise SourceError(f"{target}: the tracking server reports no artifact location for the model")
            path = m["path"].strip("/")
            return (f"{root.rstrip('/')}/{path}" if path else root), target.rstrip("/")
        m = _MODELS.match(target)
        if not m:
            raise SourceError(
                f"{target}: expected models:/NAME/VERSION|STAGE, models:/NAME@ALIAS or runs:/RUN_ID/PATH"
            )
        name, ref, alias, path = m["name"], m["ref"], m["alias"], m["path"].strip("/")
        version = self._version(target, server, name, ref, alias)
        doc = server.call(
            "GET", "/api/2.0/mlflow/model-versions/get-download-uri", {"name": name, "version": version}
        )
        source = str(doc.get("artifact_uri") or "")
        if not source:
            raise SourceError(
                f"{target}: the tracking server reports no artifact location for version {version}"
            )
        if source.startswith(("runs:/", "models:/")):
            if source.startswith("models:/") and not _LOGGED_MODEL.match(source):
                raise SourceError(
                    f"{target}: version {version} points to another registered model ({source})"
                )
            source, _ = self._artifact_root(source, server)
        base = f"models:/{name}/{version}"
        return (f"{source.rstrip('/')}/{path}" if path else source), base

    @staticmethod
    def _version(target: str, server: TrackingServer, name: str, ref: str | None, alias: str | None) -> str:
        if alias:
            doc = server.call(
                "GET", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias}
            )
            version = (doc.get("model_version") or {}).get("version")
        elif ref and ref.isdigit():
            doc = server.call("GET", "/api/2.0/mlflow/model-versions/get", {"name": name, "version": ref})
            version = (doc.get("model_version") or {}).get("version")
        elif ref and ref.lower() != "latest":
            doc = server.call(
                "POST",
                "/api/2.0/mlflow/registered-models/get-latest-versions",
                body={"name": name, "stages": [ref]},
            )
            found = doc.get("model_versions") or []
            if not found:
                raise SourceError(f"{target}: model {name!r} has no version in stage {ref!r}")
            version = found[0].get("version")
        else:
            versions: list[int] = []
            token = ""
            for _ in range(MAX_SEARCH_PAGES):
                params = {"filter": f"name='{name}'", "max_results": "200"}
                if token:
                    params["page_token"] = token
                doc = server.call("GET", "/api/2.0/mlflow/model-versions/search", params)
                versions += [
                    int(v["version"])
                    for v in doc.get("model_versions") or []
                    if str(v.get("version", "")).isdigit()
                ]
                token = str(doc.get("next_page_token") or "")
                if not token:
                    break
            else:
                raise SourceError(f"{target}: more than {MAX_SEARCH_PAGES} pages of versions")
            if not versions:
                raise SourceError(f"{target}: model {name!r} has no versions")
            version = max(versions)
        if not str(version or "").isdigit():
            raise SourceError(f"{target}: the tracking server answered no version number")
        return str(version)

    # ---- other stores and non-http tracking URIs: the MLflow client, bounded --------------------------

    def _resolve_client(
        self, target: str, artifact_uri: str | None = None, resolved: str | None = None
    ) -> Snapshot:
        artifacts_api, client_cls = _mlflow()
        net = NetLimits.from_env()
        if artifact_uri is None:
            root_uri, resolved = _bounded(
                lambda: self._root(target, client_cls()), net.seconds, f"{target}: resolve"
            )
        else:
            root_uri = artifact_uri
        assert resolved is not None
        snap = Snapshot(target=target, kind="mlflow", resolved=resolved, root=target)
        try:
            self._walk(artifacts_api, root_uri, "", snap, net)
        except SourceError:
            raise
        except Exception as exc:  # MlflowException, requests errors: the registry could not be read
            raise SourceError(f"{target}: cannot list artifacts: {_one_line(exc)}") from None
        if not snap.artifacts:
            raise SourceError(f"{target}: no artifacts")
        return snap

    def _root(self, target: str, client: Any) -> tuple[str, str]:
        m = _MODELS.match(target)
        if m:
            name, ref, alias, path = m["name"], m["ref"], m["alias"], m["path"]
            try:
                if alias:
                    version = client.get_model_version_by_alias(name, alias).version
                elif ref and ref.isdigit():
                    version = client.get_model_version(name, ref).version
                elif ref:
                    found = client.get_latest_versions(name, stages=[ref])
                    if not found:
                        raise SourceError(f"{target}: model {name!r} has no version in stage {ref!r}")
                    version = found[0].version
                else:
                    versions = client.search_model_versions(f"name='{name}'")
                    if not versions:
                        raise SourceError(f"{target}: model {name!r} has no versions")
                    version = max(int(v.version) for v in versions)
            except SourceError:
                raise
            except Exception as exc:
                raise SourceError(f"{target}: cannot resolve: {_one_line(exc)}") from None
            base = f"models:/{name}/{version}"
            return (base + ("/" + path.strip("/") if path.strip("/") else "")), base
        m = _RUNS.match(target)
        if m:
            return target.rstrip("/"), target.rstrip("/")
        raise SourceError(
            f"{target}: expected models:/NAME/VERSION|STAGE, models:/NAME@ALIAS or runs:/RUN_ID/PATH"
        )

    def _walk(self, api: Any, root_uri: str, rel: str, snap: Snapshot, net: NetLimits) -> None:
        uri = root_uri + ("/" + rel if rel else "")
        infos = _bounded(
            partial(api.list_artifacts, artifact_uri=uri), net.seconds, f"{snap.target}: list {rel or '/'}"
        )
        for info in infos:  # type: ignore[attr-defined]
            child = _safe_rel(info.path.rsplit("/", 1)[-1] if "/" in info.path else info.path, snap.target)
            child_rel = f"{rel}/{child}" if rel else child
            if info.is_dir:
                self._walk(api, root_uri, child_rel, snap, net)
                continue
            if len(snap.artifacts) >= MAX_ARTIFACTS:
                raise SourceError(f"{snap.target}: more than {MAX_ARTIFACTS} artifacts")
            size = int(info.file_size) if info.file_size is not None else None
            snap.artifacts.append(
                Artifact(
                    path=child_rel,
                    size=size or 0,
                    opener=partial(_download, api, f"{root_uri}/{child_rel}", child_rel, size),
                    info={"mlflow_uri": f"{snap.resolved}/{child_rel}"},
                )
            )


def _mlflow() -> Any:
    # the MLflow client reports usage to a public endpoint from a background thread: a scanner sends nothing
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow.artifacts
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SourceError(
            "models:/ and runs:/ targets need the MLflow client: pip install 'modelward[mlflow]'"
        ) from None
    return mlflow.artifacts, MlflowClient


# MLflow reads these at every request: lowered while our calls run (the user's own values when smaller).
_env_lock = threading.Lock()
_env_users = 0
_env_saved: dict[str, str | None] = {}


@contextlib.contextmanager
def _mlflow_client_limits() -> Iterator[None]:
    """MLflow's retries and per-request timeout bounded by ours for as long as any of our calls runs."""
    global _env_users
    net, retry = NetLimits.from_env(), RetryPolicy()
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": max(0, retry.attempts - 1),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": 1,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": max(1, int(min(net.stall_seconds, net.seconds))),
    }
    with _env_lock:
        if _env_users == 0:
            for key, value in wanted.items():
                old = os.environ.get(key)
                _env_saved[key] = old
                try:
                    mine = min(value, int(old)) if old is not None else value
                except ValueError:
                    mine = value
                os.environ[key] = str(mine)
        _env_users += 1
    try:
        yield
    finally:
        with _env_lock:
            _env_users -= 1
            if _env_users == 0:
                for key, old in _env_saved.items():
                    if old is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = old
                _env_saved.clear()


def _bounded(fn: Callable[[], Any], seconds: float, what: str) -> Any:
    """``fn`` (an MLflow client call) under our retry/timeout settings and a wall-clock deadline."""
    with _mlflow_client_limits():
        try:
            return run_bounded(fn, seconds, redact(what))
        except NetworkDeadline as exc:
            raise SourceError(redact(str(exc))) from None


class DownloadedReader(FileReader):
    """A downloaded artifact, deleted with its private folder when closed."""

    def __init__(self, folder: str, path: str, name: str) -> None:
        self._folder = folder
        try:
            super().__init__(path, name=name)
        except ReaderError:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


def _folder_bytes(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def _download(api: Any, uri: str, name: str, size: int | None) -> DownloadedReader:
    """The MLflow client downloads the file; we watch the clock and the bytes landing in its private folder.

    More bytes than the listing names (or than ``MAX_DOWNLOAD_BYTES``) or a download past its budget ends the
    wait at once and fails closed; the folder is removed.
    """
    net = NetLimits.from_env()
    limit = size if size is not None else MAX_DOWNLOAD_BYTES
    seconds = net.seconds + limit / net.budget_rate
    folder = tempfile.mkdtemp(prefix="modelward-mlflow-")
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["path"] = api.download_artifacts(artifact_uri=uri, dst_path=folder)
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            box["error"] = exc

    with _mlflow_client_limits():
        worker = threading.Thread(target=run, name="modelward-mlflow-download", daemon=True)
        worker.start()
        end = time.monotonic() + seconds
        try:
            while worker.is_alive():
                worker.join(0.05)
                landed = _folder_bytes(folder)
                if landed > limit:
                    listed = "the registry lists" if size is not None else "allowed"
                    raise ReaderError(
                        f"{name}: the server sent more than the {limit} bytes {listed} "
                        f"(size mismatch); download stopped, not judged"
                    )
                if time.monotonic() > end:
                    raise ReaderError(
                        f"{name}: download not complete within {seconds:.0f} s (limit network_seconds)"
                    )
        except ReaderError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    if "error" in box:
        shutil.rmtree(folder, ignore_errors=True)
        raise ReaderError(f"{name}: download failed: {_one_line(box['error'])}") from None
    local = str(box.get("path") or "")
    landed = os.path.getsize(local) if os.path.isfile(local) else -1
    if size is not None and landed != size:
        shutil.rmtree(folder, ignore_errors=True)
        raise ReaderError(f"{name}: downloaded {landed} bytes but the registry lists {size}")
    return DownloadedReader(folder, local, name)
