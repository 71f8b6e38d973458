"""Registry credentials the way the Docker CLI keeps them, and the registry token dance.

Credentials come from the Docker config file (``$DOCKER_CONFIG/config.json``
or ``~/.docker/config.json``): ``auths`` entries, else the credential helper it
names (``credHelpers`` per registry, ``credsStore`` for all), run with Docker's
``docker-credential-<name> get`` protocol. They are read lazily, at the first
401, so anonymous registries never touch the file or a helper.

Every secret read or received (password, identity token, bearer token) is
registered with ``http_session.register_secret`` so that no message, log or
report can carry it. Credentials go only to the registry's own origin or to a
token realm over https (a realm on the same origin is fine over plain http
when the user chose ``--insecure``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

from ..io.deadline import NetworkDeadline
from ..io.http_session import (
    HTTPClient,
    HTTPFetchError,
    Stats,
    body_chunks,
    origin,
    redact,
    redact_url,
    register_secret,
)
from .base import SourceError

MAX_CONFIG_BYTES = 1 << 20
MAX_TOKEN_BYTES = 1 << 20
DEFAULT_TOKEN_SECONDS = 60  # the token spec's default when expires_in is absent
HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HELPER_SECONDS = 10
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


@dataclass(frozen=True)
class Credentials:
    """What the config holds for one registry; repr never shows the secrets."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = ""  # the config file path, for messages

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r})"

    @property
    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic" | other
    params: dict[str, str]


def docker_config_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The config file the Docker CLI would read: an explicit dir, $DOCKER_CONFIG, then ~/.docker."""
    base = override or os.environ.get("DOCKER_CONFIG")
    if base:
        return Path(base).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    """Normalise an ``auths`` key (``https://host:port/v1/``, ``host:port``) to ``host:port`` lowercased."""
    k = key.strip()
    if "://" in k:
        k = urlsplit(k).netloc or k.split("://", 1)[1]
    return k.split("/", 1)[0].lower()


def _registry_keys(registry: str) -> set[str]:
    reg = registry.lower()
    keys = {reg}
    if reg in {_key_host(k) for k in DOCKER_HUB_KEYS}:
        keys |= {_key_host(k) for k in DOCKER_HUB_KEYS}
    return keys


def load_credentials(
    registry: str, config_dir: str | os.PathLike[str] | None = None
) -> tuple[Credentials | None, str]:
    """(credentials for ``registry`` or None, a hint for messages when none are usable)."""
    path = docker_config_path(config_dir)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None, f"no Docker config at {path}"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"
    if len(raw) > MAX_CONFIG_BYTES:
        raise SourceError(f"{path}: Docker config larger than {MAX_CONFIG_BYTES} bytes; refusing to read it")
    try:
        cfg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SourceError(f"{path}: Docker config is not valid JSON") from None
    if not isinstance(cfg, dict):
        raise SourceError(f"{path}: Docker config is not a JSON object")
    wanted = _registry_keys(registry)
    auths = _json_object(cfg.get("auths"))
    for key, entry in auths.items():
        if not isinstance(key, str) or _key_host(key) not in wanted or not isinstance(entry, dict):
            continue
        creds = _parse_entry(entry, str(path), registry)
        if creds is not None:
            return creds, ""
    helpers = _json_object(cfg.get("credHelpers"))
    helper = next((v for k, v in helpers.items() if isinstance(k, str) and _key_host(k) in wanted), None)
    helper = helper or cfg.get("credsStore")
    if isinstance(helper, str) and helper:
        return run_credential_helper(helper, registry, str(path))
    return None, f"no credentials for {registry} in {path}"


def run_credential_helper(helper: str, registry: str, source: str) -> tuple[Credentials | None, str]:
    """Ask ``docker-credential-<helper> get`` (the Docker credential-helper protocol) for ``registry``.

    The helper gets the server URL on stdin and answers ``{"ServerURL", "Username", "Secret"}``; a
    ``<token>`` username means the secret is an identity token. Bounded in time and output; any failure
    is a hint for the 401 message, never a crash.
    """
    if not HELPER_NAME.match(helper):
        return None, f"{source}: credential helper name {helper[:40]!r} is not a plain program name"
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return (
            None,
            f"credentials for {registry} are kept by docker-credential-{helper}, which is not on PATH",
        )
    server = (
        "https://index.docker.io/v1/"
        if _key_host(registry) in {_key_host(k) for k in DOCKER_HUB_KEYS}
        else registry
    )
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"docker-credential-{helper} failed: {type(exc).__name__}"
    if done.returncode != 0:
        return None, f"docker-credential-{helper} has no credentials for {registry}"
    try:
        doc = json.loads(done.stdout[:MAX_CONFIG_BYTES])
        user, secret = doc.get("Username"), doc.get("Secret")
    except (ValueError, AttributeError):
        return None, f"docker-credential-{helper} answered something that is not its JSON protocol"
    if not isinstance(secret, str) or not secret:
        return None, f"docker-credential-{helper} returned no secret for {registry}"
    register_secret(secret)
    if user == "<token>":
        return Credentials(
            username=None, password=None, identity_token=secret, source=f"docker-credential-{helper}"
        ), ""
    return Credentials(
        username=str(user or ""), password=secret, identity_token=None, source=f"docker-credential-{helper}"
    ), ""


def _json_object(value: object) -> dict[object, object]:
    """``value`` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_entry(entry: dict[str, object], source: str, registry: str) -> Credentials | None:
    user = _opt_str(entry.get("username"))
    password = _opt_str(entry.get("password"))
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise SourceError(
                f"{source}: the 'auth' entry for {registry} is not base64 of user:password"
            ) from None
        if ":" not in decoded:
            raise SourceError(f"{source}: the 'auth' entry for {registry} is not base64 of user:password")
        user, password = decoded.split(":", 1)
    token = _opt_str(entry.get("identitytoken"))
    for secret in (password, token, _opt_str(auth)):
        register_secret(secret)
    if not (user and password is not None) and not token:
        return None
    return Credentials(username=user, password=password, identity_token=token or None, source=source)


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header (registries send one)."""
    header = (header or "").strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {}
    for m in _PARAM.finditer(rest):
        val = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", val or "")
    return Challenge(scheme.lower(), params)


class RegistryAuth:
    """Authorization for one registry and repository: anonymous until challenged, then Basic or a bearer token."""

    def __init__(
        self,
        registry: str,
        base_url: str,
        repository: str,
        client: HTTPClient,
        *,
        config_dir: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        stats: Stats | None = None,
        given: Credentials | None = None,
    ) -> None:
        self.registry = registry
        self.base_url = base_url
        self.repository = repository
        self.client = client
        self.config_dir = config_dir
        self.insecure = insecure
        self.stats = stats
        self._creds: Credentials | None = given  # --username/--password-stdin win over the Docker config
        self._loaded = given is not None
        self.hint = ""
        self._header: str | None = None
        self._expires: float | None = None
        self._challenge: Challenge | None = None

    @property
    def has_credentials(self) -> bool:
        return self._creds is not None

    def headers(self) -> dict[str, str]:
        """The Authorization header to send now (refreshing an expired bearer token)."""
        if (
            self._header
            and self._expires is not None
            and time.monotonic() > self._expires
            and self._challenge
        ):
            self.authenticate(self._challenge)
        return {"Authorization": self._header} if self._header else {}

    def credentials(self) -> Credentials | None:
        if not self._loaded:
            self._loaded = True
            self._creds, self.hint = load_credentials(self.registry, self.config_dir)
        return self._creds

    def authenticate(self, challenge: Challenge) -> bool:
        """Answer a 401 challenge; False when there is nothing new to try."""
        self._challenge = challenge
        creds = self.credentials()
        if challenge.scheme == "basic":
            if creds is None or creds.basic is None:
                return False
            header = f"Basic {creds.basic}"
            register_secret(creds.basic)
            if header == self._header:
                return False
            self._header, self._expires = header, None
            return True
        if challenge.scheme == "bearer":
            old = self._header
            self._header = f"Bearer {self._token(challenge, creds)}"
            return self._header != old
        raise SourceError(f"{self.registry}: unsupported authentication scheme {challenge.scheme[:20]!r}")

    def _token(self, ch: Challenge, creds: Credentials | None) -> str:
        realm = ch.params.get("realm", "")
        try:  # the registry wrote this URL: a bad port or IPv6 literal must be an error, not a traceback
            parts = urlsplit(realm)
            realm_origin = origin(realm)
        except ValueError:
            raise SourceError(
                f"{self.registry}: token realm {redact_url(realm)[:200]!r} is not a valid URL"
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(
                f"{self.registry}: token realm {redact_url(realm)[:200]!r} is not an http(s) URL"
            )
        same_origin = realm_origin == origin(self.base_url)
        if parts.scheme == "http" and not (self.insecure and same_origin):
            raise SourceError(
                f"{self.registry}: token service {redact_url(realm)[:200]} is plain http; refused "
                f"(credentials and tokens travel only over https, or to the registry itself "
                f"with --insecure)"
            )
        scope = ch.params.get("scope") or f"repository:{self.repository}:pull"
        query = {"scope": scope}
        if ch.params.get("service"):
            query["service"] = ch.params["service"]
        headers: dict[str, str] = {}
        method = "GET"
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        if creds is not None and creds.identity_token:
            method = "POST"
            body = urlencode(
                {
                    **query,
                    "grant_type": "refresh_token",
                    "client_id": "modelward",
                    "refresh_token": creds.identity_token,
                }
            )
            resp = self._post_form(realm, body)
        else:
            if creds is not None and creds.basic:
                headers["Authorization"] = f"Basic {creds.basic}"
                register_secret(creds.basic)
            try:
                resp = self.client.request("GET", url, auth_headers=headers, stream=True, stats=self.stats)
            except HTTPFetchError as exc:
                raise SourceError(f"{self.registry}: token service unreachable: {exc}") from None
        with resp:
            if resp.status_code in (401, 403):
                what = "rejected the credentials" if creds else "requires credentials"
                hint = "" if creds else f" ({self.hint})" if self.hint else ""
                raise SourceError(f"{self.registry}: token service {what} (HTTP {resp.status_code}){hint}")
            if resp.status_code != 200:
                raise SourceError(
                    f"{self.registry}: token service answered HTTP {resp.status_code} to {method}"
                )
            data = read_bounded(resp, MAX_TOKEN_BYTES, f"token response from {redact_url(resp.url or '')}")
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise SourceError(f"{self.registry}: token service returned no JSON") from None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(f"{self.registry}: token service returned no token")
        register_secret(token)
        expires = doc.get("expires_in")
        seconds = expires if isinstance(expires, int) and 0 < expires < 86400 else DEFAULT_TOKEN_SECONDS
        self._expires = time.monotonic() + max(5, seconds - 5)
        return token

    def _post_form(self, url: str, body: str):  # type: ignore[no-untyped-def]
        """POST the OAuth2 refresh-token form (identity tokens) under the retry policy; never follows redirects."""
        try:
            return self.client.request(
                "POST",
                url,
                data=body,
                follow=False,
                stream=True,
                stats=self.stats,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except HTTPFetchError as exc:  # messages carry the redacted URL and status only, never the form
            raise SourceError(f"{self.registry}: token service unreachable: {exc}") from None
        except Exception as exc:  # requests errors may echo the form; never show them
            raise SourceError(f"{self.registry}: token service unreachable ({type(exc).__name__})") from None


def read_bounded(resp: requests.Response, limit: int, what: str) -> bytes:
    """A registry response body, refused past ``limit`` bytes; a dropped connection is one SourceError."""
    buf = bytearray()
    try:
        for piece in body_chunks(resp):
            buf += piece
            if len(buf) > limit:
                raise SourceError(f"{what}: larger than {limit} bytes; refused")
    except SourceError:
        raise
    except NetworkDeadline as exc:
        raise SourceError(redact(f"{what}: {exc}")) from None
    except Exception as exc:
        raise SourceError(
            redact(f"{what}: connection dropped while reading ({type(exc).__name__})")
        ) from None
    return bytes(buf)


__all__ = ["Credentials", "RegistryAuth", "docker_config_path", "load_credentials", "parse_challenge"]
