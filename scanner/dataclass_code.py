"""Start-up: the methods ``dataclasses`` writes for each class, compiled once and kept between runs.

``@dataclass`` builds ``__init__``, ``__repr__``, ``__eq__`` … of every class as source text and compiles it
while the module imports. A local ``scan`` imports ~95 dataclasses, ~380 such texts: about a fifth of the
whole process's instructions went to compiling them (issue #13). The texts are the same at every run, so
their compiled form is kept in a file under the cache folder (one per scanner version and command), addressed by each text's SHA-256. ``dataclasses`` is given an ``exec`` that does
what the builtin does with these texts (each defines one function, ``__create_fn__``) without executing
anything: it builds that function from the kept code object, or from a fresh compile for a text not seen yet.

The file is read only after its HMAC verifies. The key is the cache key (``cache_key``: never inside the
cache folder) and the MAC covers the interpreter's version and the body, so whoever can write the cache folder
cannot plant code and a file from another interpreter is ignored. It holds only code objects compiled here from
``dataclasses``' texts, never model bytes. Only the console entry point installs this; a library import of
``scanner`` leaves ``dataclasses`` untouched.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import hmac
import marshal
import os
import sys
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any

from .cache_key import CacheKeyError, load_key, modelward_cache_home

_MAC_CONTEXT = b"modelward-dataclass-code-v1\0"
MAX_ENTRIES = (
    1600  # twice what a release holds (~800 texts); past it the file starts over with this run's texts
)
SUPPORTED = (
    (3, 10),
    (3, 11),
    (3, 12),
    (3, 13),
)  # whose ``dataclasses`` texts each define one ``__create_fn__``


class UnexpectedText(RuntimeError):
    """A text that is not one ``def __create_fn__``: this interpreter's ``dataclasses`` is not the one modelled."""


def create_fn_code(text: str) -> CodeType:
    """The code of the one function ``text`` defines, compiled as the builtin ``exec`` compiles a string."""
    module = compile(text, "<string>", "exec", dont_inherit=True)
    inner = [c for c in module.co_consts if isinstance(c, CodeType)]
    if len(inner) != 1 or inner[0].co_name != "__create_fn__" or module.co_names != ("__create_fn__",):
        raise UnexpectedText(text[:80])
    return inner[0]


def _interpreter() -> bytes:
    """What a code object's validity depends on: the interpreter and its exact build (``sys.version`` names the
    release, date and compiler; the bytecode format changes only between releases)."""
    return f"{sys.implementation.cache_tag}\0{sys.hexversion}\0{sys.version}".encode()


class CodeCache:
    """Compiled ``dataclasses`` method texts, loaded from and saved to one MACed file.

    The file maps the SHA-256 of each text to its marshalled code: loading it copies bytes, and only the texts
    a run uses are turned into code objects (a release holds ~800 texts, a local scan uses ~380).
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path, self._key = path, key
        self.entries: dict[bytes, bytes] = {}
        self.used: set[bytes] = set()
        self.compiled = 0  # texts this run had to compile (0 once the file holds them all)

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, _MAC_CONTEXT + _interpreter() + b"\0" + body, hashlib.sha256).digest()

    def load(self) -> None:
        try:
            blob = self.path.read_bytes()
        except OSError:
            return
        mac, body = blob[:32], blob[32:]
        if len(mac) != 32 or not hmac.compare_digest(mac, self._mac(body)):
            return  # planted, truncated, or from another interpreter: compile afresh and rewrite
        try:
            entries = marshal.loads(
                body
            )  # static-only exception: our own MAC-verified code cache (docstring)
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(entries, dict) and all(
            type(k) is bytes and type(v) is bytes for k, v in entries.items()
        ):
            self.entries = entries

    def _kept(self, address: bytes) -> CodeType | None:
        raw = self.entries.get(address)
        if raw is None:
            return None
        try:
            code = marshal.loads(raw)  # static-only exception: inside the MAC-verified file
        except (EOFError, ValueError, TypeError):
            return None
        return code if type(code) is CodeType and code.co_name == "__create_fn__" else None

    def code_for(self, text: str) -> CodeType:
        address = hashlib.sha256(text.encode()).digest()
        self.used.add(address)
        code = self._kept(address)
        if code is None:
            code = create_fn_code(text)
            self.entries[address] = marshal.dumps(code)
            self.compiled += 1
        return code

    def save(self) -> None:
        """Write the file if this run compiled anything (atomically; a read-only folder is left alone)."""
        if not self.compiled:
            return
        entries = self.entries
        if len(entries) > MAX_ENTRIES:
            entries = {a: entries[a] for a in self.used}
        body = marshal.dumps(entries)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_bytes(self._mac(body) + body)
            tmp.replace(self.path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


def cached_exec(cache: CodeCache) -> Any:
    """The ``exec`` ``dataclasses`` calls as ``exec(text, globals, ns)``: puts the function ``text`` defines in
    ``ns``, bound to ``globals``, exactly as executing the text would."""

    def exec_(
        source: str, globals: dict[str, Any] | None = None, locals: dict[str, Any] | None = None
    ) -> None:
        if not isinstance(source, str) or locals is None:
            raise UnexpectedText(repr(source)[:80])
        namespace = vars(dataclasses) if globals is None else globals
        locals["__create_fn__"] = FunctionType(cache.code_for(source), namespace)

    return exec_


def _word(text: str) -> str:
    """``text`` when it is a plain word fit for a file name, else ``main``."""
    plain = text.replace("-", "").replace("_", "").replace(".", "")
    return text if 0 < len(text) <= 32 and plain.isascii() and plain.isalnum() else "main"


def default_path(argv: list[str] | None = None) -> Path:
    """One file per scanner version and command (the first word of ``argv`` that is not an option, as the CLI
    names it): a ``scan`` reads the ~360 texts scans use, not every command's texts of every version that ran on
    this machine (one shared file had grown to ~0.8 MB, read and MACed whole at every start: issue #13)."""
    from . import __version__

    args = sys.argv[1:] if argv is None else argv
    command = _word(next((a for a in args if not a.startswith("-")), "main"))
    name = f"dataclasses-{sys.implementation.cache_tag}-{_word(__version__)}-{command}.bin"
    return modelward_cache_home() / "code" / name


def install(path: Path | None = None) -> CodeCache | None:
    """Give ``dataclasses`` the cached ``exec`` and save new texts at exit; None (nothing changed) when there is
    no trustworthy cache key, the interpreter is not one whose ``dataclasses`` is modelled, or ``dataclasses``
    already has an ``exec`` of its own."""
    if "exec" in vars(dataclasses) or sys.version_info[:2] not in SUPPORTED:
        return None
    path = path or default_path()
    try:
        key = load_key(path.parent.parent)
    except CacheKeyError:
        return None
    cache = CodeCache(path, key)
    cache.load()
    dataclasses.exec = cached_exec(cache)  # type: ignore[attr-defined]
    atexit.register(cache.save)
    return cache


def uninstall(cache: CodeCache) -> None:
    """Undo ``install`` (tests): ``dataclasses`` compiles with the builtin again; the cache is not saved."""
    vars(dataclasses).pop("exec", None)
    atexit.unregister(cache.save)
