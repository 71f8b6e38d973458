"""Secrets out of every text modelward prints or stores: URL userinfo, signed-URL parameters, tokens.

Cheap to import (no HTTP client): every command redacts, few make requests.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials or signatures (S3/CloudFront/Azure/GCS presigning, ad-hoc tokens).
# Exact names, plus any name that contains a credential word (private_token, hf_token, client_secret,
# X-Amz-Security-Token, session_token, access-key ...): hiding a harmless value costs less than showing a key.
SECRET_PARAMS = re.compile(
    r"^(?:x-amz-(signature|credential|security-token)|x-goog-(signature|credential)|signature|sig|token|"
    r"access_token|api[_-]?key|key|password|passwd|secret|auth|authorization|policy|key-pair-id|se|sp|skoid|"
    r"sktid|jwt|code|"
    r".*(?:token|secret|passw|signature|credential|api[_-]?key|access[_-]?key|private[_-]?key).*)$",
    re.IGNORECASE,
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
# After "token" a credential has a digit or is long; plain words ("token service requires …") are prose.
_BEARER = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(token)\s+(?:(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{6,}|[A-Za-z0-9._~+/=-]{20,})"
)
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a credential so that ``redact`` scrubs it from any text (messages, reports, logs)."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def redact_url(url: str) -> str:
    """The URL without userinfo and with secret-bearing query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if SECRET_PARAMS.match(k) else v) for k, v in pairs], safe="*/:")
    fragment = parts.fragment
    if "=" in fragment:  # OAuth-style fragments (#access_token=…) carry credentials like a query does
        fields = [p.partition("=") for p in fragment.split("&")]
        fragment = "&".join(
            f"{k}={'***' if SECRET_PARAMS.match(k) else v}" if eq else k for k, eq, v in fields
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact(text: object) -> str:
    """``text`` with every known secret, URL credential, bearer token and URL signature removed."""
    s = str(text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for sec in secrets:
        s = s.replace(sec, "***")
    s = _URL.sub(lambda m: redact_url(m.group(0)), s)
    s = _USERINFO.sub(r"\g<scheme>***@", s)
    s = _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} ***", s)
    return _HF_TOKEN.sub("***", s)
