"""The pickle analyzer's built tables, kept between runs as one MACed JSON file each (issue #13).

``gadgets.yaml`` (argument rules) and ``audit/*.yaml`` (use constraints) were parsed, checked and turned into
frozen objects at every start: ~48 M instructions of a one-file scan. Like the compiled rule database
(``scanner/rules.py``), the checked, BUILT table is kept in the cache folder, addressed by what it depends on:
the format of this file, the scanner version, the source of the code that builds it (this module, the builder,
the YAML loader), and every input file's name and bytes. An edited, added or removed file, another modelward or
an edited builder is another address, never a stale hit.

Whoever can write the cache folder must not be able to drop an argument rule or a constraint: the file carries an
HMAC over its address and body made with the cache key (which never lives in the cache folder). A file that does
not verify, does not decode into exactly the known classes, or is missing is ignored and the table is built from
the YAML (and written again). A table is written only when the files still hold the bytes it was built from.
Nothing here reads model bytes; the JSON holds only rule data.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_FORMAT = b"modelward-pickle-table-v1\0"
_MAC_CONTEXT = b"modelward-pickle-table-mac-v1\0"


@functools.lru_cache(maxsize=16)
def _source_digest(path: str) -> bytes:
    """SHA-256 of one module's source, once per process (the tables share the loader's and this module's)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).digest()
    except OSError:
        return b"?"


def _sources(code_files: tuple[str, ...]) -> bytes:
    return b"".join(_source_digest(f) for f in (__file__, *code_files))


def _read_all(files: list[Path]) -> list[bytes] | None:
    try:
        return [f.read_bytes() for f in files]
    except OSError:
        return None  # the builder reports it (it reads the files itself)


def _address(kind: str, code_files: tuple[str, ...], files: list[Path], raws: list[bytes]) -> str:
    from ... import __version__

    h = hashlib.sha256(_FORMAT + kind.encode() + b"\0" + __version__.encode() + b"\0")
    h.update(_sources(code_files))
    for f, raw in zip(files, raws, strict=True):
        h.update(f"{f.parent.name}/{f.name}\0{len(raw)}\0".encode())
        h.update(raw)
    return h.hexdigest()


def _mac(key: bytes, address: str, body: bytes) -> bytes:
    return hmac.new(key, _MAC_CONTEXT + address.encode() + b"\0" + body, hashlib.sha256).hexdigest().encode()


def _path(folder: Path, kind: str, address: str) -> Path:
    return folder / f"pickletable-{kind}-{address}.json"


def _load(path: Path, key: bytes, address: str, decode: Callable[[Any], T]) -> T | None:
    try:
        mac, _, body = path.read_bytes().partition(b"\n")
    except OSError:
        return None
    if not hmac.compare_digest(mac, _mac(key, address, body)):
        return None
    try:
        doc = json.loads(body)
        if not (type(doc) is list and len(doc) == 2 and doc[0] == address):
            return None
        return decode(doc[1])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError, RecursionError):
        return None  # not a shape this code writes: build from the YAML


def _save(
    path: Path, key: bytes, address: str, table: T, encode: Callable[[T], Any], decode: Callable[[Any], T]
) -> None:
    try:
        text = json.dumps(
            [address, encode(table)], ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        if decode(json.loads(text)[1]) != table:
            return  # not carried exactly: build it every time
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return
    body = text.encode()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_bytes(_mac(key, address, body) + b"\n" + body)
        tmp.replace(path)
    except OSError:  # a read-only or planted cache folder: build again next time
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def cached_table(
    kind: str,
    files: list[Path],
    build: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
    code_files: tuple[str, ...] = (),
) -> T:
    """``build()``, or its verified kept copy for exactly these ``files``' bytes and this code.

    ``build`` reads ``files`` itself (through the rule database's loader, which names a bad file in its error);
    ``encode`` turns the table into JSON data and ``decode`` back (a table that does not come back equal is not
    kept); ``code_files`` are the sources of the code that builds, encodes and decodes it.
    """
    from ...rules import __file__ as rules_file
    from ...yaml_cache import __file__ as yaml_cache_file
    from ...yaml_cache import _mac_key, compiled_dir

    folder = compiled_dir()
    key = _mac_key(folder)
    raws = _read_all(files) if key is not None else None
    if key is None or raws is None:
        return build()
    address = _address(kind, (*code_files, str(rules_file), str(yaml_cache_file)), files, raws)
    path = _path(folder, kind, address)
    table = _load(path, key, address, decode)
    if table is not None:
        return table
    table = build()
    if _read_all(files) == raws:  # built from the bytes the address names
        _save(path, key, address, table, encode, decode)
    return table
