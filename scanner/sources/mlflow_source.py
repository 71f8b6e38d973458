"""MLflow targets: ``models:/NAME/VERSION|STAGE|@ALIAS`` and ``runs:/RUN_ID/PATH`` against MLFLOW_TRACKING_URI.

The MLflow client resolves the URI and lists the artifacts (it knows every artifact store MLflow
supports and reads the tracking server's credentials from its own environment variables). A version,
stage or alias is resolved once to the immutable version number, so what is judged is what that number
names. Each file is downloaded when an inspector opens it, into a private temporary folder that is
removed when the file is closed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from functools import partial
from typing import Any

from ..io.reader import FileReader, ReaderError
from .base import Artifact, Snapshot, Source, SourceError

MAX_ARTIFACTS = 100_000
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/]+)|@(?P<alias>[^/]+))?/?(?P<path>.*)$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z_-]+)/?(?P<path>.*)$")


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


def _mlflow() -> Any:
    try:
        import mlflow.artifacts
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SourceError(
            "models:/ and runs:/ targets need the MLflow client: pip install 'modelward[mlflow]'"
        ) from None
    return mlflow.artifacts, MlflowClient


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


class MLflowSource(Source):
    def resolve(self, target: str) -> Snapshot:
        artifacts_api, client_cls = _mlflow()
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            raise SourceError(f"{target}: set MLFLOW_TRACKING_URI to the tracking server")
        root_uri, resolved = self._root(target, client_cls())
        snap = Snapshot(target=target, kind="mlflow", resolved=resolved, root=target)
        try:
            self._walk(artifacts_api, root_uri, "", snap)
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

    def _walk(self, api: Any, root_uri: str, rel: str, snap: Snapshot) -> None:
        uri = root_uri + ("/" + rel if rel else "")
        for info in api.list_artifacts(artifact_uri=uri):
            child = info.path.rsplit("/", 1)[-1] if "/" in info.path else info.path
            child_rel = f"{rel}/{child}" if rel else child
            if info.is_dir:
                self._walk(api, root_uri, child_rel, snap)
                continue
            if len(snap.artifacts) >= MAX_ARTIFACTS:
                raise SourceError(f"{snap.target}: more than {MAX_ARTIFACTS} artifacts")
            size = int(info.file_size or 0)
            snap.artifacts.append(
                Artifact(
                    path=child_rel,
                    size=size,
                    opener=partial(_download, api, f"{root_uri}/{child_rel}", child_rel),
                    info={"mlflow_uri": f"{snap.resolved}/{child_rel}"},
                )
            )


def _download(api: Any, uri: str, name: str) -> DownloadedReader:
    folder = tempfile.mkdtemp(prefix="modelward-mlflow-")
    try:
        local = api.download_artifacts(artifact_uri=uri, dst_path=folder)
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ReaderError(f"{name}: download failed: {_one_line(exc)}") from None
    return DownloadedReader(folder, local, name)
