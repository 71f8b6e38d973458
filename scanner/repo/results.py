"""One snapshot's results on disk, seen by the repository checks as the ``{path: FileResult}`` mapping they expect.

The repository checks (``scanner.repo``) run once every file of a snapshot is judged, and may add findings to any
of its results, so no result is final, and none can be judged by the policy, before they have run. A zoo of
100k files would hold 100k results meanwhile. ``ResultTable`` keeps them in a private temporary SQLite file
instead: a check's ``get(path)`` loads that one result and keeps it in memory (what a check changed is what the
report shows); results no check asked for stay on disk until ``drain`` hands every result back, in order.

It is the mapping ``{fr.path: fr for fr in results}`` exactly: keys in first-seen order, each the last result
with that path; ``results[path] = fr`` adds a key (or replaces a value) for later lookups, never a result.
``format_of``, ``with_rule`` and ``digest_owners`` answer the questions of the checks that look at every file
without loading every result; they take a plain dict as well (checks are also called with one).

A check may look at every file (each ``.py`` or ``.sh`` of a 100k-file zoo), so what it loads cannot all stay
loaded: once ``_SWEEP_AT`` results are held, those nothing but the table refers to any more (no check holds the
result, nor a list, dict or finding in it: CPython reference counts, checked part by part) are written back if a
check changed them and dropped; a later ``get`` loads the written-back body. A result a check still holds is
never dropped, so what it changes later is never lost. If the results checks hold at once pass ``MAX_HELD`` (or
their bodies ``MAX_HELD_BYTES``), ``get`` raises ``TooManyHeld``: the check stops, and ``inspect_snapshot``
reports it as a blocking finding (fail closed) instead of memory growing with the zoo.

Bodies are JSON written field by field from this process's own ``FileResult`` objects, in a file SQLite creates
and unlinks itself. The round trip is exact where a report could tell: names that are not UTF-8 (lone surrogates
survive ``json`` with ``ensure_ascii``), bytes in evidence (tagged), enums (their values, as every report writes
them). Nothing in ``scanner/`` unpickles, not even its own data.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

from ..findings import Coverage, FileResult, Finding, Severity, Tags

_SCHEMA = """
CREATE TABLE results (seq INTEGER PRIMARY KEY, path BLOB NOT NULL, sha256 TEXT, format TEXT NOT NULL,
                      rules TEXT NOT NULL, body BLOB NOT NULL);
CREATE INDEX results_path ON results (path, seq);
"""
_CACHE_KIB = 2048
_SWEEP_AT = 256  # results held (loaded by checks) before those no check refers to any more are dropped
MAX_HELD = 10_000  # results checks may hold at once (each still referred to by a check)
MAX_HELD_BYTES = 16 << 20  # and their stored bodies' bytes (a loaded result is a few times its body)
_ATOMS = (str, bytes, int, float, bool, type(None), Enum)  # immutable: a reference to one changes nothing
_BYTES = "\x00bytes"  # the tag of a bytes value in evidence (no JSON key a finding writes starts with NUL)


def _plain(value: Any) -> Any:
    """What ``json`` cannot write, as the reports write it: bytes tagged (restored on load), enums by value,
    sets as lists, anything else by ``str``."""
    if isinstance(value, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


def _unplain(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _BYTES in obj:
        return base64.b64decode(obj[_BYTES])
    return obj


def _dump(fr: FileResult) -> bytes:
    doc = {f.name: getattr(fr, f.name) for f in dataclasses.fields(FileResult)}
    doc["coverage"] = fr.coverage.value
    doc["findings"] = [
        {
            **{f.name: getattr(x, f.name) for f in dataclasses.fields(Finding)},
            "severity": x.severity.value,
            "tags": dataclasses.asdict(x.tags),
        }
        for x in fr.findings
    ]
    return json.dumps(doc, ensure_ascii=True, default=_plain).encode("ascii")


def _load(body: bytes) -> FileResult:
    doc = json.loads(body, object_hook=_unplain)
    findings = [
        Finding(**{**x, "severity": Severity(x["severity"]), "tags": Tags(**x["tags"])})
        for x in doc["findings"]
    ]
    return FileResult(**{**doc, "coverage": Coverage(doc["coverage"]), "findings": findings})


class TooManyHeld(RuntimeError):
    """Repository checks hold more loaded results at once than ``MAX_HELD`` / ``MAX_HELD_BYTES``."""


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def _shared(value: Any, refs: int) -> bool:
    """Whether anything but the ``refs`` references the caller accounts for (the one container slot holding
    ``value``, the caller's and this call's names for it, ``getrefcount``'s argument) refers to ``value`` or
    to anything mutable inside it: a result, list, dict or finding a check could still change."""
    if isinstance(value, _ATOMS) or isinstance(value, Tags):  # a rule's tags: every finding of it shares them
        return False
    if sys.getrefcount(value) > refs:
        return True
    if isinstance(value, (list, tuple)):
        return any(_shared(item, 4) for item in value)  # slot, loop name, parameter, argument
    if isinstance(value, dict):
        return any(_shared(item, 4) for item in value.values())
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if _shared(getattr(value, f.name), 3):  # attribute, parameter, argument
                return True
        return False
    return True  # anything else: assume a check may hold it


def _unreferenced(loaded: dict[int, FileResult], mem: dict[str, FileResult], seq: int) -> bool:
    """Whether nothing but ``loaded`` (and ``mem``) refers to the result ``loaded[seq]`` or to a part of it."""
    fr = loaded[seq]
    mine = 1 if mem.get(fr.path) is fr else 0
    return not _shared(fr, 4 + mine)  # loaded, this name, parameter, argument (+ mem)


_DROPS: list[bool] = []  # whether this interpreter counts references as ``_shared`` expects (checked once)


def _drops_work() -> bool:
    """``_unreferenced`` tried on a probe: a result, a finding's evidence list or the result itself held by
    someone must count as referenced, and nothing held as not. An interpreter that counts otherwise never
    drops a loaded result (then ``MAX_HELD`` bounds them)."""
    if not _DROPS:
        finding = Finding(rule_id="R", severity=Severity.INFO, message="m", path="p", evidence={"k": [1]})
        loaded = {0: FileResult(path="p", size=0, format="x", findings=[finding])}
        mem = {"p": loaded[0]}
        del finding
        part: list[Any] = [loaded[0].findings[0].evidence["k"]]
        ok = not _unreferenced(loaded, mem, 0)
        part.clear()
        ok = ok and _unreferenced(loaded, mem, 0)
        part.append(loaded[0])
        ok = ok and not _unreferenced(loaded, mem, 0)
        part.clear()
        _DROPS.append(ok and _unreferenced(loaded, mem, 0))
    return _DROPS[0]


def _key(path: str) -> bytes:
    """A path as the table keys it: UTF-8, lone surrogates (names that are not UTF-8) included."""
    return path.encode("utf-8", "surrogatepass")


def _path(key: bytes) -> str:
    return key.decode("utf-8", "surrogatepass")


def _rules(fr: FileResult) -> str:
    return " " + " ".join(f.rule_id for f in fr.findings) + " "


class ResultTable(Mapping[str, FileResult]):
    """A snapshot's results by path, on disk; see the module doc. Close it (or ``drain`` it) when done."""

    def __init__(self) -> None:
        import sqlite3  # here: a scan whose snapshots stay in memory never imports it

        self.db: sqlite3.Connection = sqlite3.connect(
            "", isolation_level=None
        )  # "": temporary, on disk, deleted when closed
        self.db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN")
        self._rows = 0
        self._mem: dict[str, FileResult] = {}  # path -> its current value, when in memory (loaded or set)
        self._loaded: dict[int, FileResult] = {}  # seq -> the stored result a check holds (and may change)
        # seq -> (size, digest) of the body a loaded result came from: changed or not when it is dropped
        self._bodies: dict[int, tuple[int, bytes]] = {}
        self._held_bytes = 0
        self._sweep_at = _SWEEP_AT
        self._new: dict[str, int] = {}  # keys that are no stored result's path -> insertion order

    def close(self) -> None:
        self.db.close()

    # building ---------------------------------------------------------------------------------------
    def append(self, fr: FileResult) -> None:
        """One more result, after the others (as ``list.append`` then ``by_path[fr.path] = fr``)."""
        self.db.execute(
            "INSERT INTO results (path, sha256, format, rules, body) VALUES (?, ?, ?, ?, ?)",
            (
                _key(fr.path),
                fr.sha256,
                fr.format,
                _rules(fr),
                _dump(fr),
            ),
        )
        self._rows += 1
        self._mem.pop(fr.path, None)  # the path's value is now this result (never the case while checks run)

    def extend(self, results: Iterable[FileResult]) -> None:
        for fr in results:
            self.append(fr)

    # the mapping ------------------------------------------------------------------------------------
    def _last(self, path: str) -> int | None:
        row = self.db.execute("SELECT max(seq) FROM results WHERE path=?", (_key(path),)).fetchone()
        return None if row[0] is None else int(row[0])

    def get(self, path: str, default: Any = None) -> Any:
        fr = self._mem.get(path)
        if fr is not None:
            return fr
        seq = self._last(path)
        if seq is None:
            return default
        if len(self._loaded) >= self._sweep_at or self._held_bytes >= MAX_HELD_BYTES:
            self._sweep()
        (body,) = self.db.execute("SELECT body FROM results WHERE seq=?", (seq,)).fetchone()
        fr = self._loaded[seq] = self._mem[path] = _load(body)
        self._bodies[seq] = (len(body), _digest(body))
        self._held_bytes += len(body)
        return fr

    def _sweep(self) -> None:
        """Write back (if changed) and drop every loaded result nothing else refers to; raise ``TooManyHeld``
        when those still referred to are too many."""
        for seq in list(self._loaded) if _drops_work() else ():
            if not _unreferenced(self._loaded, self._mem, seq):
                continue
            fr = self._loaded[seq]
            size, digest = self._bodies.pop(seq)
            body = _dump(fr)
            if _digest(body) != digest:  # a check changed it: the table's copy is now this one
                self.db.execute(
                    "UPDATE results SET sha256=?, format=?, rules=?, body=? WHERE seq=?",
                    (fr.sha256, fr.format, _rules(fr), body, seq),
                )
            del self._loaded[seq]
            if self._mem.get(fr.path) is fr:
                del self._mem[fr.path]
            self._held_bytes -= size
        if len(self._loaded) >= MAX_HELD or self._held_bytes >= MAX_HELD_BYTES:
            raise TooManyHeld(
                f"repository checks hold {len(self._loaded)} results ({self._held_bytes} bytes) at once; "
                f"limit {MAX_HELD} results, {MAX_HELD_BYTES} bytes"
            )
        self._sweep_at = min(MAX_HELD, max(_SWEEP_AT, 2 * len(self._loaded)))

    def __getitem__(self, path: str) -> FileResult:
        fr = self.get(path)
        if fr is None:
            raise KeyError(path)
        return fr  # type: ignore[no-any-return]

    def __setitem__(self, path: str, fr: FileResult) -> None:
        if path not in self._mem and path not in self._new and self._last(path) is None:
            self._new[path] = len(self._new)
        self._mem[path] = fr

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self._mem or self._last(path) is not None)

    def __iter__(self) -> Iterator[str]:
        cur = self.db.execute("SELECT path FROM results GROUP BY path ORDER BY min(seq)")
        while rows := cur.fetchmany(256):
            yield from (_path(p) for (p,) in rows)
        yield from list(self._new)

    def __len__(self) -> int:
        (n,) = self.db.execute("SELECT count(DISTINCT path) FROM results").fetchone()
        return int(n) + len(self._new)

    def _current(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """``(position, path, *columns)`` of each key's stored current value (its last row) not in memory,
        restricted by ``sql`` (a condition on that row), in key order."""
        cur = self.db.execute(
            "SELECT (SELECT min(seq) FROM results f WHERE f.path=r.path) AS pos, r.path, r.sha256, r.format "
            "FROM results r WHERE r.seq=(SELECT max(seq) FROM results l WHERE l.path=r.path)"
            f"{' AND ' + sql if sql else ''} ORDER BY pos",
            args,
        )
        while rows := cur.fetchmany(256):
            for pos, path, *columns in rows:
                if (p := _path(path)) not in self._mem:
                    yield (pos, p, *columns)

    def _position(self, path: str) -> int:
        if path in self._new:
            return self._rows + 1 + self._new[path]
        (pos,) = self.db.execute("SELECT min(seq) FROM results WHERE path=?", (_key(path),)).fetchone()
        return int(pos)

    # the checks' questions --------------------------------------------------------------------------
    def format_of(self, path: str) -> str | None:
        fr = self._mem.get(path)
        if fr is not None:
            return fr.format
        seq = self._last(path)
        if seq is None:
            return None
        (fmt,) = self.db.execute("SELECT format FROM results WHERE seq=?", (seq,)).fetchone()
        return str(fmt)

    def paths_with_rule(self, rule_id: str) -> list[str]:
        """Keys whose value has a finding of ``rule_id``, in key order."""
        found = [(pos, p) for pos, p, *_ in self._current("r.rules LIKE ?", (f"% {rule_id} %",))]
        found += [
            (self._position(p), p)
            for p, fr in self._mem.items()
            if any(f.rule_id == rule_id for f in fr.findings)
        ]
        return [p for _pos, p in sorted(found)]

    def digests(self) -> Iterator[tuple[str, str | None, str]]:
        """``(path, sha256, format)`` of every key's value, in key order."""
        mem = sorted((self._position(p), p, fr.sha256, fr.format) for p, fr in self._mem.items())
        stored = self._current("")
        i = 0
        for pos, path, sha, fmt in stored:
            while i < len(mem) and mem[i][0] < pos:
                yield mem[i][1:]
                i += 1
            yield path, sha, fmt
        for m in mem[i:]:
            yield m[1:]

    # reading back -----------------------------------------------------------------------------------
    def drain(self) -> Iterator[FileResult]:
        """Every appended result in order (as the checks left it), each dropped once handed out; then closes."""
        try:
            cur = self.db.execute("SELECT seq, body FROM results ORDER BY seq")
            while rows := cur.fetchmany(64):
                for seq, body in rows:
                    held = self._loaded.pop(seq, None)
                    yield held if held is not None else _load(body)
            self._mem.clear()
        finally:
            self.close()


# ------------------------------------------------------------------------------------------ for the checks
def format_lookup(results: Mapping[str, FileResult]) -> Callable[[str], str | None]:
    """``path -> results[path].format`` (None: no result), without loading a ``ResultTable``'s results."""
    if isinstance(results, ResultTable):
        return results.format_of
    return lambda path: fr.format if (fr := results.get(path)) is not None else None


def with_rule(results: Mapping[str, FileResult], rule_id: str) -> list[FileResult]:
    """The values (``list(results.values())`` order) that could carry a finding of ``rule_id``; a dict's are
    all of them, a ``ResultTable``'s only those that do."""
    if isinstance(results, ResultTable):
        return [results[p] for p in results.paths_with_rule(rule_id)]
    return list(results.values())


def digest_owners(results: Mapping[str, FileResult]) -> Iterator[tuple[str, str | None, str]]:
    """``(path, sha256, format)`` of every value, in key order, without loading a ``ResultTable``'s results."""
    if isinstance(results, ResultTable):
        return results.digests()
    return ((p, fr.sha256, fr.format) for p, fr in results.items())
