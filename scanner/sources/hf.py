"""Hugging Face Hub repositories: ``hf://[datasets/]org/name[@revision]``.

Resolution uses the real ``huggingface_hub`` client, so the user's conventions
hold: ``HF_ENDPOINT``, ``HF_TOKEN`` / the saved token, ``HF_HOME`` /
``HF_HUB_CACHE`` and offline mode (``HF_HUB_OFFLINE=1`` resolves from the local
cache only). A branch or tag is pinned to the commit it points at, and every
file is then read at that commit, never at the moving branch. The sizes and
digests the Hub reports (LFS sha256, git blob sha1 of small files) are claims
checked when bytes are read. The Hub's own per-file scan status is carried as
information only.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

from ..io.deadline import NetworkDeadline, run_bounded
from ..io.http_reader import ContentWitness, FaultLog, HTTPRangeReader
from ..io.http_session import NO_COOKIES, HTTPClient, Stats, redact, redact_url, register_secret
from ..io.json_budget import JsonCost
from ..io.retry import RETRY_STATUS, RetriesExhausted, call_with_retries, env_number
from .base import Artifact, Problem, Snapshot, Source, SourceError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# One Hub API answer (repository info with every file's metadata: ~200 bytes a file, so ~20k files). Parsed
# into objects it costs ~20x its size; a larger repository is refused with a clear error, never half-listed.
HUB_MAX_ANSWER_BYTES = 4 << 20
SECURITY_EXPAND_MAX_FILES = 300  # per-file Hub scan status costs one request per 50 files on the real Hub
_TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass(frozen=True)
class HFRef:
    repo_type: str  # model | dataset | space
    repo_id: str
    revision: str | None

    @property
    def display(self) -> str:
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[self.repo_type]
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{prefix}{self.repo_id}{rev}"

    @property
    def cache_folder(self) -> str:
        return f"{self.repo_type}s--" + self.repo_id.replace("/", "--")


@dataclass
class HFResolved:
    """Everything pull needs besides the snapshot: where the files live and what to record in the cache."""

    ref: HFRef
    commit: str
    endpoint: str
    snapshot: Snapshot
    offline: bool = False


def parse_hf(raw: str) -> HFRef:
    """Parse without touching the network; invalid names are a SourceError naming the problem."""
    if not raw.startswith("hf://"):
        raise SourceError(f"{raw}: not an hf:// target")
    rest = raw[len("hf://") :]
    rev: str | None = None
    if "@" in rest:
        rest, rev = rest.split("@", 1)
        if not rev:
            raise SourceError(f"{raw}: empty revision after '@'")
    repo_type = "model"
    for prefix, kind in (("models/", "model"), ("datasets/", "dataset"), ("spaces/", "space")):
        if rest.startswith(prefix):
            repo_type, rest = kind, rest[len(prefix) :]
            break
    rest = rest.strip("/")
    if not _REPO_ID.match(rest) or ".." in rest or "--" in rest:
        raise SourceError(f"{raw}: not a valid repository id (expected hf://org/name[@revision])")
    if rev is not None and (len(rev) > 256 or any(c in rev for c in "\0\n\r")):
        raise SourceError(f"{raw}: invalid revision")
    return HFRef(repo_type, rest, rev)


def _org_hint(ref: HFRef) -> str:
    """hf://acme is most likely an organization, not a model: say the expected form."""
    if "/" in ref.repo_id:
        return ""
    return f"; a model is named hf://ORG/NAME, and `modelward audit hf://{ref.repo_id}` audits a whole organization"


def _truthy(v: str | None) -> bool:
    return (v or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface"


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps repos, read from the environment now (not at import time)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    return hf_home() / "hub"


def offline_mode() -> bool:
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def discover_token() -> str | None:
    """HF_TOKEN, then the token file huggingface_hub saves; read at call time."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        v = (os.environ.get(var) or "").strip()
        if v:
            return v
    path = (
        Path(os.environ["HF_TOKEN_PATH"]).expanduser()
        if os.environ.get("HF_TOKEN_PATH")
        else hf_home() / "token"
    )
    try:
        v = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return v or None


def _single_try_pagination() -> None:
    """Listings (tree, models) page through ``http_backoff``, the Hub client's own retry loop: make it one try.

    Otherwise its policy (1-8 s pauses, 5 retries) would nest inside ours (``call_hub``), multiplying the
    attempts and ignoring our caps and deadlines.
    """
    try:
        from huggingface_hub.utils import _pagination
    except ImportError:  # pragma: no cover - layout of another huggingface_hub version
        return
    backoff = getattr(_pagination, "http_backoff", None)
    if backoff is None or getattr(backoff, "_modelward_single_try", False):
        return

    def single_try(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["max_retries"] = 0
        return backoff(*args, **kwargs)

    single_try._modelward_single_try = True  # type: ignore[attr-defined]
    _pagination.http_backoff = single_try


def _configure_hub_client(connect: float, read: float) -> None:
    """Give huggingface_hub's shared client timeouts (its default has none: a silent Hub would hang us)."""
    _single_try_pagination()
    try:
        from huggingface_hub.utils import _http as hub_http
    except ImportError:  # pragma: no cover - every supported version has it
        return
    factory = getattr(hub_http, "default_client_factory", None)
    setter = getattr(hub_http, "set_client_factory", None)
    if factory is None or setter is None or getattr(hub_http, "_modelward_timeouts", None) == (connect, read):
        return
    import httpx2

    def with_timeouts():  # type: ignore[no-untyped-def]
        client = factory()
        client.timeout = httpx2.Timeout(read, connect=connect)
        # Bounded answers: every Hub API body is read whole and parsed into objects (a 28 MB repository
        # listing cost 600 MB), so each is capped, and never inflated from gzip/deflate past the cap.
        client.headers["Accept-Encoding"] = "identity"
        client.event_hooks = {
            **client.event_hooks,
            "response": [*client.event_hooks["response"], _cap_answer],
        }
        client.cookies.jar.set_policy(NO_COOKIES)  # a cookie jar ignores ports: see http_session._NoCookies
        return client

    setter(with_timeouts)
    _no_agent_registry()
    # our marker on the module, set through its namespace: huggingface_hub declares no such attribute
    vars(hub_http)["_modelward_timeouts"] = (connect, read)


class HubAnswerTooLarge(Exception):
    """A Hub API answer exceeded ``hub_answer_limit()`` bytes (as sent, or once decoded): refused, not parsed."""


def hub_answer_limit() -> int:
    return int(max(64 << 10, env_number("MODELWARD_HUB_MAX_ANSWER_BYTES", HUB_MAX_ANSWER_BYTES)))


def _cap_answer(response) -> None:  # type: ignore[no-untyped-def]  # an httpx2 response hook
    """Read the body through a byte cap (decoding gzip/deflate here, boundedly): past it, raise."""
    import httpx2

    limit = hub_answer_limit()
    where = redact_url(str(response.request.url))
    declared = response.headers.get("Content-Length", "")
    codings = [
        c.strip().lower() for c in response.headers.get("Content-Encoding", "").split(",") if c.strip()
    ]
    codings = [c for c in codings if c != "identity"]
    if declared.isdigit() and int(declared) > limit and not codings:
        response.close()
        raise HubAnswerTooLarge(f"the Hub's answer to {where} declares {declared} bytes (limit {limit})")
    if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
        response.close()
        raise HubAnswerTooLarge(
            f"the Hub's answer to {where} is encoded ({', '.join(codings)[:40]}); refused"
        )
    inner = response.stream

    class Capped(httpx2.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            inflate = None
            if codings:
                wbits = 16 + zlib.MAX_WBITS if codings[0] != "deflate" else zlib.MAX_WBITS
                inflate = zlib.decompressobj(wbits)
            n = 0
            # huggingface_hub parses every answer whole: what that costs is bounded too (4 MB of [[]] is 140 MB)
            cost = JsonCost()
            for raw in inner:
                piece = raw
                if inflate is not None:
                    piece = inflate.decompress(raw, limit + 1 - n)
                    if inflate.unconsumed_tail:  # more output pending than the cap allows
                        n = limit + 1
                n += len(piece)
                if n > limit:
                    raise HubAnswerTooLarge(
                        f"the Hub's answer to {where} is larger than {limit} bytes"
                        f"{' once decoded' if codings else ''} (limit MODELWARD_HUB_MAX_ANSWER_BYTES); "
                        f"refused, not parsed"
                    )
                if not cost.add(piece):
                    raise HubAnswerTooLarge(
                        f"the Hub's answer to {where} would cost over {cost.budget >> 20} MB once parsed "
                        f"({n} bytes read); refused, not parsed"
                    )
                yield piece

        def close(self) -> None:
            inner.close()

    response.stream = Capped()
    if codings:  # decoded above: httpx must not decode again
        del response.headers["Content-Encoding"]


def _no_agent_registry() -> None:
    """Skip huggingface_hub's agent-harness lookup (it only tags the User-Agent).

    On first use it fetches ``{endpoint}/api/agent-harnesses`` and caches it in ``HF_HOME`` and then parses that
    cache, whatever its size, in every later run: an extra request to the endpoint and an unbounded parse (a
    28 MB registry cost 600 MB) that the scan does not need.
    """
    try:
        from huggingface_hub.utils import _detect_agent
    except ImportError:  # pragma: no cover - other huggingface_hub versions
        return
    empty = getattr(_detect_agent, "_EMPTY_REGISTRY", None)
    if empty is not None and getattr(_detect_agent, "_registry", empty) is None:
        _detect_agent._registry = empty


def _hub_transient(exc: Exception) -> tuple[bool, int | None, dict[str, str] | None]:
    """Whether a huggingface_hub failure is worth retrying (connection trouble, 429, 5xx), and what it saw."""
    resp = getattr(exc, "response", None)
    status = getattr(resp, "status_code", None)
    if isinstance(status, int):
        return status in RETRY_STATUS, status, dict(getattr(resp, "headers", {}) or {})
    try:
        import httpx2

        if isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
            return True, None, None
    except ImportError:  # pragma: no cover - older huggingface_hub on requests
        pass
    import requests

    return isinstance(exc, (requests.ConnectionError, requests.Timeout)), None, None


def _hub_url(exc: Exception) -> str:
    req = getattr(getattr(exc, "response", None), "request", None) or getattr(exc, "request", None)
    try:
        return redact_url(str(req.url)) if req is not None else ""
    except Exception:  # httpx raises when a request was never attached
        return ""


def call_hub(
    display: str, what: str, endpoint: str, fn: Callable[[], T], *, client: HTTPClient | None = None
) -> T:
    """Run a huggingface_hub API call under the program's retry policy and network budget.

    Transient failures (connection errors, 429, 5xx) are retried as every other request is, honouring
    Retry-After / RateLimit; the whole call, retries included, is bounded by ``network_seconds`` (the Hub
    client's own sockets are out of our reach, so the call runs in a daemon thread). Raises
    ``RetriesExhausted`` (names the redacted URL, last status and attempts), ``NetworkDeadline``, or the
    client's own non-transient error.
    """
    client = client or HTTPClient()
    _configure_hub_client(*client.timeout)

    def describe(exc: Exception, attempts: int) -> str:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        url = _hub_url(exc) or redact_url(endpoint)
        last = f"HTTP {status}" if status else f"{type(exc).__name__} (connection failed)"
        return redact(f"{display}: {what} failed: {last} from {url} after {attempts} attempt(s)")

    deadline = time.monotonic() + client.net.seconds
    shown = f"{display}: {what} ({redact_url(endpoint)})"
    return call_with_retries(
        lambda: run_bounded(fn, max(0.1, deadline - time.monotonic()), shown),  # type: ignore[arg-type,return-value]
        policy=client.retry,
        transient=_hub_transient,
        describe=describe,
        deadline=deadline,
        sleep=client.sleep,
    )


def _safe_relpath(p: str) -> bool:
    pp = PurePosixPath(p)
    return bool(p) and not pp.is_absolute() and ".." not in pp.parts and "\\" not in p and "\0" not in p


def checked_endpoint(endpoint: str) -> str:
    """The endpoint's scheme; SourceError unless it is an http(s) URL with a host and a valid port. Call it
    before huggingface_hub is imported: the library parses HF_ENDPOINT at import time and would crash."""
    try:
        parts = urlsplit(endpoint)
        _ = parts.port
    except ValueError:
        raise SourceError(f"HF_ENDPOINT {redact(endpoint)!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"HF_ENDPOINT {redact(endpoint)!r} is not an http(s) URL")
    return scheme


class HFSource(Source):
    """Options: endpoint, token (str, False for none, None to discover), revision, allow_http, client."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        allow_http: bool = False,
        client: HTTPClient | None = None,
        hub_security_status: bool = True,
        **_other: object,  # options meant for other sources (insecure, ...) are ignored
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        if token is None:
            token = discover_token()
        self.token: str | None = token if isinstance(token, str) and token else None
        register_secret(self.token)
        self.revision = revision
        scheme = checked_endpoint(self.endpoint)
        # An http endpoint the user configured explicitly (a local mirror) is an explicit allowance.
        self.client = client or HTTPClient(allow_http=allow_http or scheme == "http")
        self.stats = Stats()
        self.hub_security_status = hub_security_status
        _configure_hub_client(*self.client.timeout)

    def _hub_call(self, ref: HFRef, what: str, fn):  # type: ignore[no-untyped-def]
        """A Hub API call under the program's retry policy and network budget; failures stay exceptions."""
        return call_hub(ref.display, what, self.endpoint, fn, client=self.client)

    # ---- Source ---------------------------------------------------------------------------------------

    def resolve(self, target: str) -> Snapshot:
        return self.resolve_repo(target).snapshot

    def resolve_repo(self, target: str) -> HFResolved:
        ref = parse_hf(target)
        if self.revision and not ref.revision:
            ref = HFRef(ref.repo_type, ref.repo_id, self.revision)
        if offline_mode():
            return self._resolve_offline(ref)
        return self._resolve_online(ref)

    # ---- online -----------------------------------------------------------------------------------

    def _api_errors(self, ref: HFRef, exc: Exception) -> SourceError:
        from huggingface_hub import errors as e

        where = ref.display
        rev = ref.revision or "main"
        if isinstance(exc, e.GatedRepoError):
            return SourceError(
                f"{where}: gated repository; accept its conditions at "
                f"{self.endpoint}/{_TYPE_PREFIX[ref.repo_type]}{ref.repo_id} with the account "
                f"of your token, then retry"
            )
        if isinstance(exc, e.RepositoryNotFoundError):
            hint = (
                "your token has no access to it"
                if self.token
                else "if it is private, set HF_TOKEN or run `hf auth login`"
            )
            return SourceError(f"{where}: repository not found on {self.endpoint} ({hint}){_org_hint(ref)}")
        if isinstance(exc, e.RevisionNotFoundError):
            return SourceError(f"{where}: revision {rev!r} not found")
        if isinstance(exc, e.DisabledRepoError):
            return SourceError(f"{where}: repository disabled on the Hub")
        if isinstance(exc, e.HfHubHTTPError):
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (401, 403):
                return SourceError(
                    f"{where}: access denied by {self.endpoint} (HTTP {status}); check your token"
                )
            return SourceError(
                f"{where}: the Hub answered HTTP {status or '?'}{_org_hint(ref) if status == 404 else ''}"
            )
        if isinstance(exc, HubAnswerTooLarge):
            return SourceError(f"{where}: {exc}")
        if isinstance(exc, e.OfflineModeIsEnabled):
            return SourceError(f"{where}: offline mode is enabled (HF_HUB_OFFLINE)")
        return SourceError(f"{where}: cannot query {self.endpoint}: {type(exc).__name__}")

    def _resolve_online(self, ref: HFRef) -> HFResolved:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint, token=self.token or False)
        try:
            if ref.repo_type == "model":
                info = self._hub_call(
                    ref,
                    "repository info",
                    lambda: api.model_info(ref.repo_id, revision=ref.revision, files_metadata=True),
                )
            else:
                info = self._hub_call(
                    ref,
                    "repository info",
                    lambda: api.repo_info(
                        ref.repo_id, revision=ref.revision, repo_type=ref.repo_type, files_metadata=True
                    ),
                )
        except (RetriesExhausted, NetworkDeadline) as exc:
            raise SourceError(redact(str(exc))) from None
        except Exception as exc:  # every client error becomes one clear, redacted line
            raise SourceError(redact(self._api_errors(ref, exc))) from None
        commit = getattr(info, "sha", None)
        if not commit or not _COMMIT.match(commit):
            raise SourceError(f"{ref.display}: the Hub did not report the commit sha of this revision")
        snap = Snapshot(
            target=ref.display,
            kind="hf",
            resolved=commit,
            root=f"{self.endpoint}/{_TYPE_PREFIX[ref.repo_type]}{ref.repo_id}@{commit}",
        )
        siblings = list(getattr(info, "siblings", None) or [])
        security = self._security(api, ref, commit) if self.hub_security_status and siblings else {}
        faults = FaultLog(snap.errors)
        for s in siblings:
            path = s.rfilename
            if not _safe_relpath(path):
                snap.problems.append(
                    Problem(
                        path,
                        "REGISTRY-PATH-UNSAFE",
                        "file name escapes the repository (absolute or '..'); not read",
                    )
                )
                continue
            if s.size is None:
                snap.problems.append(
                    Problem(
                        path, "REGISTRY-METADATA-MISSING", "the Hub reported no size for this file; not read"
                    )
                )
                continue
            lfs_sha = s.lfs.sha256.lower() if s.lfs is not None and s.lfs.sha256 else None
            git_sha1 = None if s.lfs is not None else (s.blob_id or None)
            art = Artifact(
                path=path,
                size=int(s.size),
                opener=self._opener(ref, commit, path, int(s.size), lfs_sha, git_sha1, faults),
                claimed_sha256=lfs_sha,
                claimed_git_sha1=git_sha1,
            )
            art.info = {"etag": lfs_sha or git_sha1 or "", **security.get(path, {})}
            snap.artifacts.append(art)
        snap.artifacts.sort(key=lambda a: a.path)
        return HFResolved(ref=ref, commit=commit, endpoint=self.endpoint, snapshot=snap)

    def _security(self, api: HfApi, ref: HFRef, commit: str) -> dict[str, dict[str, str]]:
        """The Hub's per-file scan status (information only); best effort, never fails the scan."""
        out: dict[str, dict[str, str]] = {}

        def listing() -> list[object]:
            out: list[object] = []
            for item in api.list_repo_tree(
                ref.repo_id,
                revision=commit,
                repo_type=ref.repo_type,
                recursive=True,
                expand=True,
            ):
                out.append(item)
                if len(out) >= SECURITY_EXPAND_MAX_FILES:
                    break
            return out

        try:
            for item in self._hub_call(ref, "tree listing", listing):
                sec = getattr(item, "security", None)
                if sec:
                    d = {"hub_security_status": str(sec.get("status", ""))}
                    for key, name in (
                        ("av_scan", "hub_av_scan"),
                        ("pickle_import_scan", "hub_pickle_import_scan"),
                    ):
                        val = sec.get(key)
                        if val:
                            d[name] = redact(str(val))[:500]
                    out[item.path] = d
        except Exception:  # noqa: S110 - information only; absence is not an error
            pass
        return out

    def resolve_url(self, ref: HFRef, commit: str, path: str) -> str:
        return f"{self.endpoint}/{_TYPE_PREFIX[ref.repo_type]}{ref.repo_id}/resolve/{quote(commit, safe='')}/{quote(path)}"

    def _opener(
        self,
        ref: HFRef,
        commit: str,
        path: str,
        size: int,
        sha256: str | None,
        git_sha1: str | None,
        faults: FaultLog | None = None,
    ):
        url = self.resolve_url(ref, commit, path)
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else None
        witness: list[ContentWitness] = []  # made at the first open: a listing of many files costs nothing

        def open_reader() -> HTTPRangeReader:
            if not witness:  # every reader of this file (inspectors, repository checks) must see one content
                witness.append(ContentWitness())
            return HTTPRangeReader(
                url,
                witness=witness[0],
                name=path,
                client=self.client,
                size=size,
                auth_headers=auth,
                stats=self.stats,
                expected_sha256=sha256,
                expected_git_sha1=git_sha1,
                faults=faults,
            )

        return open_reader

    # ---- offline ----------------------------------------------------------------------------------

    def _resolve_offline(self, ref: HFRef) -> HFResolved:
        cache = hf_hub_cache()
        repo_dir = cache / ref.cache_folder
        rev = ref.revision or "main"
        hint = f"offline mode (HF_HUB_OFFLINE=1) and {ref.display} is not in the local cache {cache}"
        if not repo_dir.is_dir():
            raise SourceError(f"{ref.display}: {hint}")
        if _COMMIT.match(rev):
            commit = rev
        else:
            ref_file = repo_dir / "refs" / rev
            try:
                commit = ref_file.read_text(encoding="utf-8").strip()
            except OSError:
                raise SourceError(f"{ref.display}: {hint} (no cached ref {rev!r})") from None
            if not _COMMIT.match(commit):
                raise SourceError(f"{ref.display}: cached ref {rev!r} is malformed")
        snap_dir = repo_dir / "snapshots" / commit
        if not snap_dir.is_dir():
            raise SourceError(f"{ref.display}: {hint} (commit {commit} not cached)")
        from .local import LocalSource

        local = LocalSource().resolve(str(snap_dir))
        snap = Snapshot(
            target=ref.display, kind="hf", resolved=commit, root=str(snap_dir), problems=local.problems
        )
        for art in local.artifacts:
            blob = os.path.basename(art.local_path or "")
            if re.fullmatch(r"[0-9a-f]{64}", blob):
                art.claimed_sha256 = blob
            elif re.fullmatch(r"[0-9a-f]{40}", blob):
                art.claimed_git_sha1 = blob
            art.info = {**art.info, "source": "local cache (offline mode)"}
            snap.artifacts.append(art)
        return HFResolved(ref=ref, commit=commit, endpoint=self.endpoint, snapshot=snap, offline=True)


__all__ = ["HFSource", "HFRef", "HFResolved", "call_hub", "parse_hf", "hf_hub_cache", "discover_token"]
