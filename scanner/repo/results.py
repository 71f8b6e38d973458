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

Bodies are JSON written field by field from this process's own ``FileResult`` objects, in a file SQLite creates
and unlinks itself. The round trip is exact where a report could tell: names that are not UTF-8 (lone surrogates
survive ``json`` with ``ensure_ascii``), bytes in evidence (tagged), enums (their values, as every report writes
them). Nothing in ``scanner/`` unpickles, not even its own data.
"""

from __future__ import annotations

import base64
import dataclasses
import json
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
        (body,) = self.db.execute("SELECT body FROM results WHERE seq=?", (seq,)).fetchone()
        fr = self._loaded[seq] = self._mem[path] = _load(body)
        return fr

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
