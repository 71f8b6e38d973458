"""The audit inventory: an embedded SQLite database of runs, files, verdicts and findings.

A nightly zoo audit must say what is new since last night and must not re-hash
terabytes that did not change. The inventory remembers, per (target, path), the
file's identity and digest when it was last judged, and per digest the result
under a rule-database version and scan settings. Results stream in as files are
judged (one small transaction each), so memory stays flat and a crash leaves a
consistent database: a run without ``finished`` is reported as interrupted and
the next run reuses everything that was recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..cache_key import CacheKeyError, load_key
from ..findings import FileResult

SCHEMA_VERSION = 2
BUSY_SECONDS = 30.0  # how long a write waits for another audit's transaction before it is an error

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, finished_ns INTEGER, status TEXT NOT NULL,
        targets TEXT NOT NULL, scanner_version TEXT NOT NULL, rules_version TEXT NOT NULL, policy TEXT NOT NULL
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
        identity TEXT, digest TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
        UNIQUE (target, path)
    );
    CREATE TABLE results (
        digest TEXT NOT NULL, path TEXT NOT NULL, rules_version TEXT NOT NULL, settings TEXT NOT NULL,
        identity TEXT NOT NULL, result TEXT NOT NULL, mac TEXT NOT NULL,
        PRIMARY KEY (digest, path, rules_version, settings)
    );
    CREATE TABLE observations (
        run_id INTEGER NOT NULL REFERENCES runs(id), file_id INTEGER NOT NULL REFERENCES files(id),
        digest TEXT, state TEXT NOT NULL, decision TEXT, format TEXT, PRIMARY KEY (run_id, file_id)
    );
    CREATE TABLE findings (
        run_id INTEGER NOT NULL, file_id INTEGER NOT NULL, rule_id TEXT NOT NULL, severity TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX findings_run ON findings (run_id, file_id);
    """,
    2: """
    ALTER TABLE runs ADD COLUMN settings TEXT NOT NULL DEFAULT '';
    CREATE TABLE waivers (
        run_id INTEGER NOT NULL, file_id INTEGER NOT NULL, rule_id TEXT NOT NULL, policy_ref TEXT NOT NULL
    );
    CREATE INDEX files_digest ON files (digest);
    """,
}


def db_text(value: str) -> str:
    """``value`` as SQLite can store it: a name with bytes that are not UTF-8 (``os.fsdecode`` leaves them as
    lone surrogates) gets the ``\\xNN`` escapes the reports show, instead of failing to encode."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")


class InventoryError(Exception):
    """The database cannot be opened or is from a newer modelward."""


def default_db_path() -> Path:
    """``$MODELWARD_AUDIT_DB``, else ``$XDG_DATA_HOME/modelward/inventory.sqlite``."""
    env = os.environ.get("MODELWARD_AUDIT_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "modelward" / "inventory.sqlite"


@dataclass(frozen=True)
class Known:
    """What the inventory remembers of one (target, path)."""

    file_id: int
    identity: str | None
    digest: str | None
    size: int


@dataclass(frozen=True)
class RunInfo:
    id: int
    started_ns: int
    finished_ns: int | None
    status: str
    targets: list[str]
    rules_version: str
    policy: str


class Inventory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.forged = 0  # result rows whose MAC did not verify (treated as never recorded)
        try:
            self._key: bytes | None = load_key(path.parent)
        except CacheKeyError:
            self._key = None  # no trustworthy key: nothing is reused, everything is inspected
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = self._open()
        except sqlite3.DatabaseError as exc:
            hint = (
                f"; {path.parent} is not writable, and SQLite keeps {path.name}-wal and -shm beside it"
                if not os.access(path.parent, os.W_OK)
                else ""
            )
            raise InventoryError(f"{path}: not a usable inventory database ({exc}){hint}") from None
        except OSError as exc:
            raise InventoryError(f"{path}: {exc.strerror or exc}") from None

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL and migrate. Audits opening a new database at once can meet SQLite's
        deadlock guard ("database is locked" at once, the busy wait skipped): they try again, in the same wait."""
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            self.db = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(
                    "PRAGMA synchronous=NORMAL"
                )  # WAL: consistent after a crash, no fsync per file
                self.db.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                return self.db
            except sqlite3.OperationalError as exc:
                self.db.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02 + random.random() * 0.1)
            except BaseException:
                self.db.close()
                raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # schema -----------------------------------------------------------------------------------------
    def _version(self) -> int:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        if self._check_version(self._version()) == SCHEMA_VERSION:
            return
        for version in range(1, SCHEMA_VERSION + 1):
            with self._tx():
                # read again under the write lock: another audit opening the same new database at the same
                # moment may have applied this step while we waited
                if self._check_version(self._version()) >= version:
                    continue
                for stmt in _MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),)
                )

    def _check_version(self, current: int) -> int:
        if current > SCHEMA_VERSION:
            raise InventoryError(
                f"{self.path}: schema version {current} is newer than this modelward "
                f"({SCHEMA_VERSION}); upgrade modelward"
            )
        return current

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            if exc_type:
                self.db.execute("ROLLBACK")
                return
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:  # disk full, I/O error: leave no transaction open behind the error
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def _tx(self) -> Inventory._Tx:
        return Inventory._Tx(self.db)

    # runs -------------------------------------------------------------------------------------------
    def start_run(
        self, targets: list[str], scanner_version: str, rules_version: str, policy: str, settings: str
    ) -> RunInfo:
        started = time.time_ns()
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO runs (started_ns, status, targets, scanner_version, rules_version, policy, settings) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (started, json.dumps(targets), scanner_version, rules_version, db_text(policy), settings),
            )
        return RunInfo(int(cur.lastrowid or 0), started, None, "running", targets, rules_version, policy)

    def finish_run(self, run_id: int, status: str = "complete") -> None:
        with self._tx():
            self.db.execute(
                "UPDATE runs SET finished_ns=?, status=? WHERE id=?", (time.time_ns(), status, run_id)
            )

    def run(self, run_id: int) -> RunInfo | None:
        row = self.db.execute(
            "SELECT id, started_ns, finished_ns, status, targets, rules_version, policy FROM runs WHERE id=?",
            (run_id,),
        ).fetchone()
        return _run_info(row) if row else None

    def previous_run(self, before: int, targets: list[str] | None = None) -> RunInfo | None:
        """The last completed run before ``before`` (with the same targets when given)."""
        for row in self.db.execute(
            "SELECT id, started_ns, finished_ns, status, targets, rules_version, policy "
            "FROM runs WHERE id < ? AND status='complete' ORDER BY id DESC",
            (before,),
        ):
            info = _run_info(row)
            if targets is None or sorted(info.targets) == sorted(targets):
                return info
        return None

    def runs(self) -> list[RunInfo]:
        rows = self.db.execute(
            "SELECT id, started_ns, finished_ns, status, targets, rules_version, policy FROM runs ORDER BY id"
        )
        return [_run_info(r) for r in rows]

    # files ------------------------------------------------------------------------------------------
    def known(self, target: str, path: str) -> Known | None:
        target, path = db_text(target), db_text(path)
        row = self.db.execute(
            "SELECT id, identity, digest, size FROM files WHERE target=? AND path=?", (target, path)
        ).fetchone()
        return Known(int(row[0]), row[1], row[2], int(row[3])) if row else None

    @staticmethod
    def _mac(key: bytes, *parts: str) -> str:
        msg = b"modelward-inventory-v1\0" + b"\0".join(p.encode() for p in parts)
        return hmac.new(key, msg, hashlib.sha256).hexdigest()

    def cached_result(
        self, digest: str, path: str, rules_version: str, settings: str, identity: str
    ) -> FileResult | None:
        """The result recorded for these bytes, under this name, for a file of exactly this identity.

        The row is authenticated (HMAC with the key ``scan --cache`` uses, kept outside this folder): whoever
        can write the database cannot pair a benign result with other bytes or another identity.
        """
        if self._key is None:
            return None
        path = db_text(path)
        row = self.db.execute(
            "SELECT identity, result, mac FROM results WHERE digest=? AND path=? AND rules_version=? AND settings=?",
            (digest, path, rules_version, settings),
        ).fetchone()
        if row is None or row[0] != identity:
            return None
        if not hmac.compare_digest(
            row[2], self._mac(self._key, digest, path, rules_version, settings, identity, row[1])
        ):
            self.forged += 1
            return None
        try:
            return FileResult.model_validate_json(row[1])
        except ValueError:
            return None

    def record(
        self,
        run_id: int,
        target: str,
        path: str,
        result: FileResult,
        *,
        identity: str | None,
        state: str,
        decision: str | None,
        reusable: bool,
        rules_version: str,
        settings: str,
        waivers: Sequence[tuple[str, str]] = (),
        content_key: str | None = None,
    ) -> None:
        """One judged file, in one transaction: the database is consistent after every file.

        ``content_key`` names the bytes when the scanner has no SHA-256 of them (an object store's ETag).
        """
        key = result.sha256 or content_key
        target, path = db_text(target), db_text(path)
        with self._tx():
            row = self.db.execute("SELECT id FROM files WHERE target=? AND path=?", (target, path)).fetchone()
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO files (target, path, size, identity, digest, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        target,
                        path,
                        result.size,
                        identity if reusable else None,
                        key,
                        run_id,
                        run_id,
                    ),
                )
                file_id = int(cur.lastrowid or 0)
            else:
                file_id = int(row[0])
                self.db.execute(
                    "UPDATE files SET size=?, identity=?, digest=?, last_seen=? WHERE id=?",
                    (result.size, identity if reusable else None, key, run_id, file_id),
                )
            self.db.execute(
                "INSERT OR REPLACE INTO observations (run_id, file_id, digest, state, decision, format) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, file_id, key, state, decision, db_text(result.format)),
            )
            self.db.execute("DELETE FROM findings WHERE run_id=? AND file_id=?", (run_id, file_id))
            self.db.executemany(
                "INSERT INTO findings (run_id, file_id, rule_id, severity, message) VALUES (?, ?, ?, ?, ?)",
                [
                    (run_id, file_id, db_text(f.rule_id), f.severity.value, db_text(f.message))
                    for f in result.findings
                ],
            )
            self.db.executemany(
                "INSERT INTO waivers (run_id, file_id, rule_id, policy_ref) VALUES (?, ?, ?, ?)",
                [(run_id, file_id, db_text(r), db_text(ref)) for r, ref in waivers],
            )
            if reusable and key and identity and self._key is not None:
                body = result.model_dump_json()
                self.db.execute(
                    "INSERT OR REPLACE INTO results (digest, path, rules_version, settings, identity, result, mac) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        path,
                        rules_version,
                        settings,
                        identity,
                        body,
                        self._mac(self._key, key, path, rules_version, settings, identity, body),
                    ),
                )

    def seen_in(self, run_id: int) -> Iterator[tuple[str, str, str | None, str]]:
        """(target, path, digest, state) of every file observed in a run."""
        yield from self.db.execute(
            "SELECT f.target, f.path, o.digest, o.state FROM observations o JOIN files f ON f.id=o.file_id "
            "WHERE o.run_id=? ORDER BY f.target, f.path",
            (run_id,),
        )

    def findings_of(self, run_id: int) -> set[tuple[str, str, str, str]]:
        """(target/path, rule id, severity, message) for every finding recorded in a run."""
        rows = self.db.execute(
            "SELECT f.target, f.path, x.rule_id, x.severity, x.message FROM findings x "
            "JOIN files f ON f.id=x.file_id WHERE x.run_id=?",
            (run_id,),
        )
        return {(f"{t.rstrip('/')}/{p}", r, s, m) for t, p, r, s, m in rows}

    def removed_since(self, before: int, now: int) -> Iterator[str]:
        """``target/path`` of every file observed in run ``before`` but not in run ``now``, sorted."""
        yield from (
            f"{t.rstrip('/')}/{p}"
            for t, p in self.db.execute(
                "SELECT f.target, f.path FROM observations o JOIN files f ON f.id=o.file_id WHERE o.run_id=? "
                "AND NOT EXISTS (SELECT 1 FROM observations n WHERE n.run_id=? AND n.file_id=o.file_id) "
                "ORDER BY f.target, f.path",
                (before, now),
            )
        )

    def findings_not_in(self, run_id: int, other: int) -> Iterator[tuple[str, str, str, str]]:
        """``findings_of(run_id) - findings_of(other)``, sorted, computed by SQLite (spilling to disk)."""
        select = (
            "SELECT rtrim(f.target, '/') || '/' || f.path, x.rule_id, x.severity, x.message FROM findings x "
            "JOIN files f ON f.id=x.file_id WHERE x.run_id=?"
        )
        yield from self.db.execute(f"{select} EXCEPT {select} ORDER BY 1, 2, 3, 4", (run_id, other))

    def blocked(self, run_id: int) -> list[dict[str, object]]:
        """Files the run blocked: digest, size, format, where, first seen, and their findings."""
        rows = self.db.execute(
            "SELECT f.id, f.target, f.path, f.size, o.digest, o.format, r.started_ns FROM observations o "
            "JOIN files f ON f.id=o.file_id JOIN runs r ON r.id=f.first_seen "
            "WHERE o.run_id=? AND o.decision='block' ORDER BY f.target, f.path",
            (run_id,),
        ).fetchall()
        out = []
        for file_id, target, path, size, digest, fmt, first_ns in rows:
            findings = self.db.execute(
                "SELECT rule_id, severity, message FROM findings WHERE run_id=? AND file_id=?",
                (run_id, file_id),
            ).fetchall()
            out.append(
                {
                    "target": target,
                    "path": path,
                    "size": size,
                    "sha256": digest,
                    "format": fmt,
                    "first_seen": _iso(first_ns),
                    "findings": findings,
                }
            )
        return out

    def history(self, needle: str) -> list[dict[str, object]]:
        """Every observation of a path (``target/path`` or a path suffix) or a digest, oldest first."""
        needle = db_text(needle)
        rows = self.db.execute(
            "SELECT r.id, r.started_ns, f.target, f.path, o.digest, o.state, o.decision, r.rules_version "
            "FROM observations o JOIN files f ON f.id=o.file_id JOIN runs r ON r.id=o.run_id "
            "WHERE o.digest=? OR f.path=? OR (f.target || '/' || f.path)=? OR f.path LIKE ? ORDER BY r.id",
            (needle, needle, needle, f"%/{needle}"),
        )
        return [
            {
                "run": r,
                "started": _iso(s),
                "target": t,
                "path": p,
                "sha256": d,
                "state": st,
                "decision": dec,
                "rules_version": rv,
            }
            for r, s, t, p, d, st, dec, rv in rows
        ]


def _run_info(row: tuple) -> RunInfo:
    return RunInfo(int(row[0]), int(row[1]), row[2], row[3], json.loads(row[4]), row[5], row[6])


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))
