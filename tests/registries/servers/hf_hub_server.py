"""A Hugging Face Hub-compatible test server (stdlib only) with a second "CDN" port and fault injection.

It implements what ``huggingface_hub`` 2.x needs (see docs REGISTRIES.md §2): repo info with
LFS metadata, tree, paths-info, refs, resolve HEAD/GET with the ETag / X-Repo-Commit /
X-Linked-* headers, Range, a cross-origin 302 from resolve to the CDN for LFS files, and the
X-Error-Code headers the client maps to specific errors. Faults are switched per test on
``server.faults``. Every request is logged (``server.log``) so tests can count requests, bytes,
connections and see which port received an Authorization header.

Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (
    ".bin",
    ".safetensors",
    ".pt",
    ".pth",
    ".pkl",
    ".pickle",
    ".gguf",
    ".onnx",
    ".h5",
    ".ckpt",
    ".msgpack",
    ".npy",
    ".npz",
    ".joblib",
    ".zip",
    ".tar",
    ".gz",
    ".model",
)
CDN_SECRET_QUERY = "X-Amz-Signature=cdnsignature0123456789&X-Amz-Credential=AKIAEXAMPLE"
CHUNK = 64 << 10


@dataclass
class HubFile:
    path: str
    size: int
    sha1: str  # git blob sha1
    sha256: str
    lfs: bool
    data: bytes | None = None
    disk: Path | None = None

    def read(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        assert self.disk is not None
        with open(self.disk, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


@dataclass
class HubRepo:
    repo_id: str
    repo_type: str  # model | dataset
    commits: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> commit
    gated: bool = False
    token: str | None = None  # private: only this bearer token sees it
    security: dict[str, dict] = field(default_factory=dict)  # path -> securityFileStatus


@dataclass
class Faults:
    """Switch per test. Keys are repo file paths (or "*" for every file)."""

    drop_after: dict[str, int] = field(default_factory=dict)  # close the connection after N body bytes
    drop_times: int = 1  # ...this many times per path, then behave
    tamper: set[str] = field(default_factory=set)  # same size, one byte flipped in the middle
    wrong_size: set[str] = field(default_factory=set)  # serve one extra byte
    error500: dict[str, int] = field(default_factory=dict)  # "api" | "resolve" | "cdn" -> count (-1: forever)
    slow: float = 0.0  # seconds before each response
    ignore_range: bool = False  # answer 200 with the whole body
    bad_content_range: bool = False  # 206 with a Content-Range that does not match the request
    # "api" | "resolve" | "cdn" -> statuses answered to the next requests of that kind, one each (then behave)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    status_headers: dict[str, str] = field(default_factory=dict)  # sent with those statuses (Retry-After ...)
    trickle: dict[str, float] = field(default_factory=dict)  # kind -> body bytes per second (file bodies)
    stall_after: dict[str, int] = field(default_factory=dict)  # kind -> send N body bytes, then go silent
    trickle_headers: set[str] = field(default_factory=set)  # kinds whose status line + headers come 1 byte/s
    # "resolve" | "cdn" -> "gzip" | "deflate" | "br": file bodies sent encoded whatever the client accepts
    content_encoding: dict[str, str] = field(default_factory=dict)


def encode_body(data: bytes, coding: str) -> bytes:
    """``data`` in an HTTP content coding (gzip, deflate, br)."""
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "br":
        import brotli

        return brotli.compress(data)  # type: ignore[no-any-return]
    raise ValueError(coding)


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _digests_of_file(path: Path) -> tuple[str, str, int]:
    size = path.stat().st_size
    s256 = hashlib.sha256()
    s1 = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            s256.update(chunk)
            s1.update(chunk)
    return s256.hexdigest(), s1.hexdigest(), size


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a closed range read, a cut stall) are normal here, not errors to print."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver signature
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class HubServer:
    def __init__(self, lfs_threshold: int = 10 << 20) -> None:
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], HubRepo] = {}
        self.faults = Faults()
        self.log: list[dict] = []
        self._lock = threading.Lock()
        self._drops_done: dict[str, int] = {}
        self._hub: ThreadingHTTPServer | None = None
        self._cdn: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()  # wakes handlers that trickle or stall

    # ---- content ------------------------------------------------------------------------------------

    def is_lfs(self, path: str, size: int) -> bool:
        return size >= self.lfs_threshold or path.lower().endswith(LFS_SUFFIXES)

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        *,
        revision: str = "main",
        repo_type: str = "model",
        gated: bool = False,
        token: str | None = None,
        security: dict[str, dict] | None = None,
        tags: tuple[str, ...] = (),
    ) -> str:
        """Publish ``files`` as a new commit of ``repo_id`` at branch ``revision``; returns the commit sha."""
        built: dict[str, HubFile] = {}
        for path, src in sorted(files.items()):
            if isinstance(src, Path):
                sha256, sha1, size = _digests_of_file(src)
                built[path] = HubFile(path, size, sha1, sha256, self.is_lfs(path, size), disk=src)
            else:
                built[path] = HubFile(
                    path,
                    len(src),
                    git_blob_sha1(src),
                    hashlib.sha256(src).hexdigest(),
                    self.is_lfs(path, len(src)),
                    data=bytes(src),
                )
        commit = hashlib.sha1(
            json.dumps([repo_id, revision, [(p, f.sha1) for p, f in built.items()]]).encode(),
            usedforsecurity=False,
        ).hexdigest()
        key = (repo_type, repo_id)
        repo = self.repos.get(key) or HubRepo(repo_id, repo_type)
        repo.gated, repo.token = gated, token
        repo.commits[commit] = built
        repo.refs[revision] = commit
        for t in tags:
            repo.refs[t] = commit
        repo.security.update(security or {})
        self.repos[key] = repo
        return commit

    def file_by_sha256(self, sha256: str) -> tuple[HubFile, HubRepo] | None:
        for repo in self.repos.values():
            for files in repo.commits.values():
                for f in files.values():
                    if f.sha256 == sha256 and f.lfs:
                        return f, repo
        return None

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> HubServer:
        self._hub = _QuietServer(("127.0.0.1", 0), _make_handler(self, "hub"))
        self._cdn = _QuietServer(("127.0.0.1", 0), _make_handler(self, "cdn"))
        for srv in (self._hub, self._cdn):
            srv.daemon_threads = True
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for srv in (self._hub, self._cdn):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._hub is not None
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn(self) -> str:
        assert self._cdn is not None
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    # ---- helpers for tests --------------------------------------------------------------------------

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def requests_to(self, server: str | None = None, path_contains: str = "") -> list[dict]:
        with self._lock:
            return [
                e
                for e in self.log
                if (server is None or e["server"] == server) and path_contains in e["path"]
            ]

    def bytes_sent(self, server: str | None = None) -> int:
        return sum(e["sent"] for e in self.requests_to(server))

    def take_fault(self, kind: str) -> bool:
        with self._lock:
            n = self.faults.error500.get(kind, 0)
            if n == 0:
                return False
            if n > 0:
                self.faults.error500[kind] = n - 1
            return True

    def take_status(self, kind: str) -> int | None:
        with self._lock:
            queue = self.faults.statuses.get(kind)
            return queue.pop(0) if queue else None

    def take_drop(self, path: str) -> int | None:
        with self._lock:
            after = self.faults.drop_after.get(path, self.faults.drop_after.get("*"))
            if after is None or self._drops_done.get(path, 0) >= self.faults.drop_times:
                return None
            self._drops_done[path] = self._drops_done.get(path, 0) + 1
            return after


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _make_handler(server: HubServer, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = (
            True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
        )
        server_version = "FakeHub/1.0"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        # ---- plumbing --------------------------------------------------------------------------
        def _record(self, status: int, sent: int) -> None:
            with server._lock:
                server.log.append(
                    {
                        "server": role,
                        "method": self.command,
                        "path": self.path,
                        "status": status,
                        "sent": sent,
                        "range": self.headers.get("Range"),
                        "auth": self.headers.get("Authorization"),
                        "conn": self.client_address[1],
                        "t": time.monotonic(),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            hdrs = {"Content-Length": str(len(body))}
            hdrs.update(headers or {})
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.end_headers()
            sent = len(body) if self.command != "HEAD" and body else 0
            # logged before the body goes out: a client that got the response always finds it in the log
            self._record(status, sent)
            if sent:
                self.wfile.write(body)

        def _json(self, obj: object, headers: dict[str, str] | None = None) -> None:
            self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

        def _error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
            h = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
            if commit:
                h["X-Repo-Commit"] = commit
            self._send(status, json.dumps({"error": message}).encode(), h)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        # ---- dispatch --------------------------------------------------------------------------
        def do_HEAD(self) -> None:  # noqa: N802
            self._dispatch()

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch()

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch()

        def _kind(self) -> str:
            if role == "cdn":
                return "cdn"
            return "api" if self.path.startswith("/api/") else "resolve"

        def _fault_status(self) -> bool:
            """Answer an injected status (429/5xx/401/404 ...) for this kind of request; True when done."""
            status = server.take_status(self._kind())
            if status is None:
                return False
            self._send(
                status,
                b'{"error": "injected"}',
                {"Content-Type": "application/json", **server.faults.status_headers},
            )
            return True

        def _slow_headers(self) -> bool:
            """Send the status line and headers one byte a second (a server no per-read timeout catches)."""
            if self._kind() not in server.faults.trickle_headers:
                return False
            head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * 100_000 + b"\r\n\r\n"
            for i in range(len(head)):
                if server.stopping.wait(1.0):
                    break
                self.wfile.write(head[i : i + 1])
                self.wfile.flush()
            self.close_connection = True
            self._record(200, 0)
            return True

        def _dispatch(self) -> None:
            if server.faults.slow:
                time.sleep(server.faults.slow)
            try:
                if self._fault_status() or self._slow_headers():
                    return
                if role == "cdn":
                    self._cdn()
                else:
                    self._hub()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        # ---- CDN ---------------------------------------------------------------------------------
        def _cdn(self) -> None:
            if server.take_fault("cdn"):
                return self._send(500, b"cdn error")
            m = re.match(r"^/blobs/([0-9a-f]{64})$", urlsplit(self.path).path)
            found = server.file_by_sha256(m.group(1)) if m else None
            if not found:
                return self._send(404, b"no such blob")
            f, _repo = found
            self._serve_file(f, {"ETag": f'"{f.sha256}"'})

        # ---- Hub ---------------------------------------------------------------------------------
        def _hub(self) -> None:
            parts = urlsplit(self.path)
            segs = parts.path.split("/")[1:]
            query = parse_qs(parts.query)
            if segs[:1] == ["api"]:
                if server.take_fault("api"):
                    return self._send(500, b"api error")
                return self._api(segs[1:], query)
            if "resolve" in segs:
                if server.take_fault("resolve"):
                    return self._send(500, b"resolve error")
                return self._resolve(segs)
            return self._send(404, b"not found")

        def _repo(self, repo_type: str, org: str, name: str) -> HubRepo | None:
            repo = server.repos.get((repo_type, f"{unquote(org)}/{unquote(name)}"))
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return None
            if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            if repo.gated and not (
                repo.token and self.headers.get("Authorization") == f"Bearer {repo.token}"
            ):
                self._error(
                    401, "GatedRepo", "Access to this model is restricted. You must have access to it."
                )
                return None
            return repo

        def _commit(self, repo: HubRepo, rev: str) -> str | None:
            rev = unquote(rev)
            if rev in repo.commits:
                return rev
            if rev in repo.refs:
                return repo.refs[rev]
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None

        def _list_models(self, query: dict[str, list[str]]) -> None:
            """GET /api/models?author=ORG: the Hub's paginated listing (``Link: <…>; rel="next"``)."""
            author = query.get("author", [""])[0]
            limit = max(1, int(query.get("limit", ["3"])[0]))  # small pages: clients must follow Link
            start = int(query.get("cursor", ["0"])[0])
            auth = self.headers.get("Authorization")
            names = sorted(
                name
                for (kind, name), repo in server.repos.items()
                if kind == "model"
                and (not author or name.split("/", 1)[0] == author)
                and (not repo.token or auth == f"Bearer {repo.token}")
            )
            page = names[start : start + limit]
            items = [
                {"id": n, "modelId": n, "sha": server.repos[("model", n)].refs.get("main"), "private": False}
                for n in page
            ]
            headers = {}
            if start + limit < len(names):
                nxt = f"{server.endpoint}/api/models?author={author}&limit={limit}&cursor={start + limit}"
                headers["Link"] = f'<{nxt}>; rel="next"'
            self._json(items, headers)

        def _api(self, segs: list[str], query: dict[str, list[str]]) -> None:
            if segs[:1] == ["agent-harnesses"]:
                return self._send(404, b"")
            if segs == ["models"]:
                return self._list_models(query)
            if len(segs) < 3 or segs[0] not in ("models", "datasets"):
                return self._send(404, b"unknown api route")
            repo_type = "model" if segs[0] == "models" else "dataset"
            repo = self._repo(repo_type, segs[1], segs[2])
            if repo is None:
                return None
            rest = segs[3:]
            if not rest or rest[0] == "revision":
                commit = self._commit(repo, rest[1] if len(rest) > 1 else "main")
                if commit:
                    self._json(self._info(repo, commit, "blobs" in query, "securityStatus" in query))
                return None
            if rest[0] == "tree" and len(rest) >= 2:
                commit = self._commit(repo, rest[1])
                if commit:
                    sub = unquote("/".join(rest[2:])) if len(rest) > 2 else ""
                    recursive = query.get("recursive", ["false"])[0].lower() == "true"
                    expand = query.get("expand", ["false"])[0].lower() == "true"
                    self._json(self._tree(repo, commit, sub, recursive, expand))
                return None
            if rest[0] == "paths-info" and len(rest) >= 2 and self.command == "POST":
                commit = self._commit(repo, rest[1])
                if commit:
                    form = parse_qs(self._body().decode())
                    expand = form.get("expand", ["false"])[0].lower() == "true"
                    wanted = set(form.get("paths", []))
                    items = [i for i in self._tree(repo, commit, "", True, expand) if i["path"] in wanted]
                    self._json(items)
                return None
            if rest[0] == "refs":
                self._json(
                    {
                        "branches": [
                            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                            for n, c in repo.refs.items()
                        ],
                        "tags": [],
                        "converts": [],
                    }
                )
                return None
            return self._send(404, b"unknown api route")

        def _info(self, repo: HubRepo, commit: str, blobs: bool, security: bool) -> dict:
            siblings = []
            for f in repo.commits[commit].values():
                s: dict = {"rfilename": f.path}
                if blobs:
                    s.update({"size": f.size, "blobId": f.sha1})
                    if f.lfs:
                        s["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 134}
                siblings.append(s)
            info = {
                "id": repo.repo_id,
                "sha": commit,
                "private": bool(repo.token),
                "gated": repo.gated,
                "siblings": siblings,
                "tags": [],
                "lastModified": "2025-01-01T00:00:00.000Z",
            }
            if security:
                info["securityRepoStatus"] = {
                    "scansDone": True,
                    "filesWithIssues": [
                        {"path": p, "level": s.get("status")}
                        for p, s in repo.security.items()
                        if s.get("status") != "safe"
                    ],
                }
            return info

        def _tree(self, repo: HubRepo, commit: str, sub: str, recursive: bool, expand: bool) -> list[dict]:
            files = repo.commits[commit]
            prefix = sub.rstrip("/") + "/" if sub else ""
            out: list[dict] = []
            dirs: set[str] = set()
            for f in files.values():
                if not f.path.startswith(prefix):
                    continue
                rel = f.path[len(prefix) :]
                if "/" in rel and not recursive:
                    dirs.add(prefix + rel.split("/", 1)[0])
                    continue
                if recursive:
                    d = f.path.rsplit("/", 1)[0] if "/" in f.path else ""
                    while d and d.startswith(prefix.rstrip("/")) and d != prefix.rstrip("/"):
                        dirs.add(d)
                        d = d.rsplit("/", 1)[0] if "/" in d else ""
                item: dict = {"type": "file", "oid": f.sha1, "size": f.size, "path": f.path}
                if f.lfs:
                    item["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                if expand:
                    item["lastCommit"] = {"id": commit, "title": "upload", "date": "2025-01-01T00:00:00.000Z"}
                    if f.path in repo.security:
                        item["securityFileStatus"] = repo.security[f.path]
                out.append(item)
            for d in sorted(dirs):
                out.append(
                    {
                        "type": "directory",
                        "oid": hashlib.sha1(d.encode(), usedforsecurity=False).hexdigest(),
                        "size": 0,
                        "path": d,
                    }
                )
            return out

        def _resolve(self, segs: list[str]) -> None:
            i = segs.index("resolve")
            head = segs[:i]
            repo_type = "model"
            if head[:1] == ["datasets"]:
                repo_type, head = "dataset", head[1:]
            if len(head) != 2 or len(segs) < i + 3:
                return self._send(404, b"bad resolve path")
            repo = self._repo(repo_type, head[0], head[1])
            if repo is None:
                return None
            commit = self._commit(repo, segs[i + 1])
            if commit is None:
                return None
            path = unquote("/".join(segs[i + 2 :]))
            f = repo.commits[commit].get(path)
            if f is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist on {commit}", commit)
            if f.lfs:
                loc = f"{server.cdn}/blobs/{f.sha256}?{CDN_SECRET_QUERY}"
                return self._send(
                    302,
                    b"",
                    {
                        "Location": loc,
                        "X-Repo-Commit": commit,
                        "X-Linked-Etag": f'"{f.sha256}"',
                        "X-Linked-Size": str(f.size),
                        "ETag": f'"{f.sha1}"',
                    },
                )
            self._serve_file(f, {"ETag": f'"{f.sha1}"', "X-Repo-Commit": commit})

        # ---- bodies, ranges, faults ----------------------------------------------------------------
        def _serve_file(self, f: HubFile, headers: dict[str, str]) -> None:
            faults = server.faults
            size = f.size + (1 if f.path in faults.wrong_size or "*" in faults.wrong_size else 0)
            tamper = f.path in faults.tamper or "*" in faults.tamper
            start, end, status = 0, size, 200
            rng = self.headers.get("Range")
            if rng and not faults.ignore_range:
                m = _RANGE.match(rng.strip())
                if not m or (not m.group(1) and not m.group(2)):
                    return self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                if m.group(1):
                    start = int(m.group(1))
                    end = min(size, int(m.group(2)) + 1) if m.group(2) else size
                else:
                    start = max(0, size - int(m.group(2)))
                if start >= size:
                    return self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                status = 206
            hdrs = dict(headers)
            hdrs.update(
                {
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(end - start),
                }
            )
            if status == 206:
                shown_start = start + 1 if faults.bad_content_range else start
                hdrs["Content-Range"] = f"bytes {shown_start}-{end - 1}/{size}"
            coding = faults.content_encoding.get(self._kind())
            if coding is not None:
                body = encode_body(self._content(f, start, end, tamper), coding)
                hdrs.update({"Content-Encoding": coding, "Content-Length": str(len(body))})
                return self._send(status, body, hdrs)
            self.send_response(status)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return self._record(status, 0)
            drop = server.take_drop(f.path) if end - start > 0 else None
            if self._slow_body(f, start, end, tamper):
                return
            sent = 0
            pos = start
            fh = open(f.disk, "rb") if f.disk is not None else None  # noqa: SIM115 - closed below
            try:
                while pos < end:
                    n = min(CHUNK if fh is None else 1 << 20, end - pos)
                    if drop is not None and sent + n > drop:
                        n = max(0, drop - sent)
                    chunk = self._content(f, pos, pos + n, tamper, fh)
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    pos += len(chunk)
                    if drop is not None and sent >= drop:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        break
            finally:
                if fh is not None:
                    fh.close()
                self._record(status, sent)

        def _slow_body(self, f: HubFile, start: int, end: int, tamper: bool) -> bool:
            """Trickle (N bytes/s) or stall (N bytes, then silence) the body; True when that was done."""
            kind = self._kind()
            rate = server.faults.trickle.get(kind)
            stall = server.faults.stall_after.get(kind)
            if rate is None and stall is None:
                return False
            self._record(206, 0)  # logged when it starts: a trickle may outlive the test's look at the log
            pos, sent = start, 0
            try:
                while pos < end and not server.stopping.is_set():
                    if stall is not None and sent >= stall:
                        server.stopping.wait(3600)
                        break
                    n = 1 if rate is not None else min(CHUNK, end - pos, stall - sent)  # type: ignore[operator]
                    self.wfile.write(self._content(f, pos, pos + n, tamper))
                    self.wfile.flush()
                    pos, sent = pos + n, sent + n
                    if rate is not None and server.stopping.wait(1.0 / rate):
                        break
            except OSError:
                pass
            self.close_connection = True
            return True

        def _content(self, f: HubFile, start: int, end: int, tamper: bool, fh=None) -> bytes:  # noqa: ANN001
            real_end = min(end, f.size)
            if fh is not None and start < real_end:
                data = os.pread(fh.fileno(), real_end - start, start)
            else:
                data = f.read(start, real_end) if start < real_end else b""
            if end > f.size:  # wrong_size: one extra byte past the real end
                data += b"\0" * (end - max(start, f.size))
            mid = f.size // 2
            if tamper and start <= mid < end:
                b = bytearray(data)
                b[mid - start] ^= 0x01
                data = bytes(b)
            return data

    return Handler


def serve_directory(root: Path, repo_id: str, server: HubServer) -> str:
    """Publish every file under ``root`` as ``repo_id`` (convenience for benchmarks and manual runs)."""
    files: dict[str, bytes | Path] = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            files[p.relative_to(root).as_posix()] = p
    return server.add_repo(repo_id, files)


def resolve_url(endpoint: str, repo_id: str, rev: str, path: str) -> str:
    return f"{endpoint}/{repo_id}/resolve/{quote(rev, safe='')}/{quote(path)}"
