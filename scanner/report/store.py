"""A report's files, reasons and decisions on disk: a private temporary SQLite database, deleted when closed.

A zoo audit judges hundreds of thousands of files; holding each one's result until the report is written
grows memory with the zoo. Each finished (printable) result goes here instead, and renderers read it back
one row at a time (``ReportView``). SQLite keeps at most a few MiB of pages in memory and spills the rest,
sorting included, to its temporary file.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from ..findings import Decision, FileResult, Reason, ScanReport
from .view import GroupKey, Totals

_SCHEMA = """
CREATE TABLE files (seq INTEGER PRIMARY KEY, path TEXT NOT NULL, source TEXT, has_findings INTEGER NOT NULL,
                    body BLOB NOT NULL);
CREATE INDEX files_path ON files (path);
CREATE TABLE decisions (path TEXT PRIMARY KEY, seq INTEGER NOT NULL, decision TEXT NOT NULL);
CREATE TABLE reasons (seq INTEGER PRIMARY KEY, rule_id TEXT, path TEXT, body BLOB NOT NULL);
CREATE INDEX reasons_rule ON reasons (rule_id, path);
CREATE TABLE items (list TEXT NOT NULL, seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE INDEX items_list ON items (list, seq);
"""
_CACHE_KIB = 4096  # page cache; the rest of the database (and any sort) is on disk


class ReportStore:
    """Finished results in report order, the verdict's reasons and per-path decisions, and named lists."""

    def __init__(self, head: ScanReport) -> None:
        self.head = head  # files empty; the verdict's decision and policy only (set by whoever decides)
        self.totals = Totals()
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)  # "": temporary, on disk
        self.db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN")  # one transaction for the whole run: nothing here outlives the process

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing ----------------------------------------------------------------------------------------
    def add_file(self, fr: FileResult, decision: Decision | None) -> None:
        """One finished result (printable: no lone surrogates) and the decision the verdict gives it."""
        self.totals.add(fr)
        cur = self.db.execute(
            "INSERT INTO files (path, source, has_findings, body) VALUES (?, ?, ?, ?)",
            (fr.path, fr.source, 1 if fr.findings else 0, fr.json_bytes()),
        )
        if decision is not None:
            self.db.execute(
                "INSERT INTO decisions (path, seq, decision) VALUES (?, ?, ?) "
                "ON CONFLICT (path) DO UPDATE SET decision=excluded.decision",
                (fr.path, cur.lastrowid, decision.value),
            )

    def add_reasons(self, reasons: Iterable[Reason]) -> None:
        self.db.executemany(
            "INSERT INTO reasons (rule_id, path, body) VALUES (?, ?, ?)",
            ((r.rule_id, r.path, r.json_bytes()) for r in reasons),
        )

    def add_items(self, name: str, items: Iterable[str]) -> None:
        """Append to the list ``name`` (JSON texts: an audit summary's paths and findings)."""
        self.db.executemany("INSERT INTO items (list, body) VALUES (?, ?)", ((name, x) for x in items))

    # reading ----------------------------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        cur = self.db.execute(sql, args)
        while rows := cur.fetchmany(256):
            yield from rows

    def files(self) -> Iterator[tuple[FileResult, Decision | None]]:
        for body, decision in self._rows(
            "SELECT f.body, d.decision FROM files f LEFT JOIN decisions d ON d.path=f.path ORDER BY f.seq"
        ):
            yield FileResult.model_validate_json(body), Decision(decision) if decision else None

    def files_with_findings(self, group: GroupKey) -> Iterator[tuple[FileResult, Decision | None]]:
        self.db.create_function("mw_group", 2, group, deterministic=True)
        for body, decision in self._rows(
            "SELECT f.body, d.decision FROM files f LEFT JOIN decisions d ON d.path=f.path "
            "WHERE f.has_findings ORDER BY mw_group(f.path, f.source), f.path, f.seq"
        ):
            yield FileResult.model_validate_json(body), Decision(decision) if decision else None

    def reasons(self) -> Iterator[Reason]:
        for (body,) in self._rows("SELECT body FROM reasons ORDER BY seq"):
            yield Reason.model_validate_json(body)

    def decisions(self) -> Iterator[tuple[str, Decision]]:
        for path, decision in self._rows("SELECT path, decision FROM decisions ORDER BY seq"):
            yield path, Decision(decision)

    def decision_of(self, path: str) -> Decision | None:
        row = self.db.execute("SELECT decision FROM decisions WHERE path=?", (path,)).fetchone()
        return Decision(row[0]) if row else None

    def decision_counts(self) -> Counter[Decision | None]:
        rows = self.db.execute(
            "SELECT d.decision, count(*) FROM files f LEFT JOIN decisions d ON d.path=f.path GROUP BY d.decision"
        )
        return Counter({Decision(d) if d else None: n for d, n in rows})

    def policy_ref(self, rule_id: str, paths: tuple[str, str]) -> str:
        row = self.db.execute(
            "SELECT body FROM reasons WHERE rule_id=? AND path IN (?, ?) ORDER BY seq LIMIT 1",
            (rule_id, *paths),
        ).fetchone()
        return (Reason.model_validate_json(row[0]).policy_ref or "") if row else ""

    def source_of(self, path: str) -> str | None:
        row = self.db.execute(
            "SELECT source FROM files WHERE path=? ORDER BY seq DESC LIMIT 1", (path,)
        ).fetchone()
        return row[0] if row else None

    def items(self, name: str, limit: int = -1) -> Iterator[str]:
        for (body,) in self._rows("SELECT body FROM items WHERE list=? ORDER BY seq LIMIT ?", (name, limit)):
            yield body

    def count(self, name: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM items WHERE list=?", (name,)).fetchone()[0])
