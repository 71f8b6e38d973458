"""Parsed YAML (the rule database's ~70 files, policies) kept as MACed JSON, so a command does not re-parse it
at every start.

Importing PyYAML and parsing the rule database and the policy was ~90 ms of a ~0.6 s local `scan` (issue #13);
JSON of the same data loads in ~1 ms. An entry is addressed by the SHA-256 of the YAML bytes it was parsed from, so an
edited or updated rule file is a miss, never a stale hit. Whoever can write the cache folder must not be able
to change a rule or allow a pickle global, so each entry carries an HMAC over its address and body made with
the result cache's key (which never lives in the cache folder); an entry that does not verify is a miss and
is rewritten. Integer-keyed mappings are tagged; data JSON cannot carry exactly (dates, mixed keys) is
never stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache_key import CacheKeyError, load_key, modelward_cache_home

ENTRY_VERSION = 2
_MAC_CONTEXT = b"modelward-yaml-cache-v1\0"
_INT_KEYS = "\x00int-keys"  # a mapping with integer keys (gadgets.yaml argument positions), as [[k, v], ...]


class _Unrepresentable(Exception):
    pass


def _encode(v: Any) -> Any:
    """JSON-able form of parsed YAML; integer-keyed mappings are tagged so they come back with int keys."""
    if isinstance(v, dict):
        if all(type(k) is str for k in v):
            if _INT_KEYS in v:
                raise _Unrepresentable
            return {k: _encode(x) for k, x in v.items()}
        if all(type(k) is int for k in v):
            return {_INT_KEYS: [[k, _encode(x)] for k, x in v.items()]}
        raise _Unrepresentable
    if isinstance(v, list):
        return [_encode(x) for x in v]
    if v is None or type(v) in (str, int, float, bool):
        return v
    raise _Unrepresentable  # dates, sets, bytes, tuples


def _restore_int_keys(d: dict[str, Any]) -> Any:
    """``json.loads`` object hook: a tagged mapping comes back with its integer keys (values already decoded)."""
    if len(d) == 1 and _INT_KEYS in d:
        return {int(k): x for k, x in d[_INT_KEYS]}
    return d


def _decode(body: str) -> Any:
    # the hook runs inside the C decoder, once per mapping: a Python walk over every value cost ~5 ms a start
    return json.loads(body, object_hook=_restore_int_keys)


def compiled_dir() -> Path:
    return modelward_cache_home() / "yaml"


@functools.lru_cache(maxsize=1)
def _mac_key(folder: Path) -> bytes | None:
    try:
        return load_key(folder)
    except CacheKeyError:
        return None  # no trustworthy key: parse every time


def _mac(key: bytes, address: str, body: str) -> str:
    return hmac.new(key, _MAC_CONTEXT + address.encode() + b"\0" + body.encode(), hashlib.sha256).hexdigest()


def _read(path: Path, key: bytes, address: str) -> tuple[bool, Any]:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        body, mac = entry["data"], entry["mac"]
        if entry.get("v") != ENTRY_VERSION or not isinstance(body, str) or not isinstance(mac, str):
            return False, None
        if not hmac.compare_digest(mac, _mac(key, address, body)):
            return False, None
        return True, _decode(body)
    except (OSError, ValueError, KeyError, TypeError):
        return False, None


def _write(path: Path, key: bytes, address: str, data: Any) -> None:
    try:
        body = json.dumps(_encode(data), ensure_ascii=False, allow_nan=False)
    except (_Unrepresentable, ValueError, RecursionError):
        return  # dates, sets, non-finite floats, mixed keys: keep parsing the YAML
    if _decode(body) != data:
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_text(json.dumps({"v": ENTRY_VERSION, "mac": _mac(key, address, body), "data": body}))
        tmp.replace(path)
    except OSError:  # a read-only or planted cache folder: parse again next time
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def parse_cached(raw: bytes, parse: Callable[[bytes], Any], folder: Path | None = None) -> Any:
    """``parse(raw)``, or the verified compiled copy of its result for exactly these bytes."""
    folder = folder or compiled_dir()
    key = _mac_key(folder)
    if key is None:
        return parse(raw)
    address = hashlib.sha256(raw).hexdigest()
    path = folder / f"{address}.json"
    hit, data = _read(path, key, address)
    if hit:
        return data
    data = parse(raw)
    _write(path, key, address, data)
    return data
