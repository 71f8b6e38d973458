"""`modelward audit`: incremental by file identity, what changed since the last run, a consistent inventory."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.audit import identity
from scanner.audit.inventory import SCHEMA_VERSION, Inventory, InventoryError
from scanner.cli import app

EVIL = b"cos\nsystem\n(S'touch /tmp/x'\ntR."


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are seconds old; shrink git's racy window so they can be trusted after a nap."""
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 50_000_000)


def _zoo(tmp_path: Path, n: int = 12) -> Path:
    zoo = tmp_path / "zoo"
    for team in ("vision", "nlp"):
        (zoo / team).mkdir(parents=True)
        for i in range(n // 2):
            (zoo / team / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [i] * 3, "team": team}, protocol=4))
    time.sleep(0.1)
    return zoo


def _audit(db: Path, *args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["audit", *args, "--db", str(db), "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def test_unchanged_files_are_neither_hashed_nor_inspected_again(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    _, first = _audit(db, str(zoo))
    assert first["audit"]["files"] == {"new": 12, "changed": 0, "unchanged": 0, "removed": 0}
    assert first["audit"]["inspected_files"] == 12 and first["audit"]["previous_run"] is None
    _, second = _audit(db, str(zoo))
    a = second["audit"]
    assert a["files"]["unchanged"] == 12 and a["inspected_files"] == 0 and a["hashed_bytes"] == 0
    assert a["reused_files"] == 12 and a["previous_run"] == first["audit"]["run"]
    assert [f["path"] for f in second["files"]] == [f["path"] for f in first["files"]]
    assert {f["sha256"] for f in second["files"]} == {f["sha256"] for f in first["files"]}
    assert all(f["cached"] for f in second["files"])


def test_same_size_rewrite_with_mtime_restored_is_seen(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    victim = zoo / "nlp" / "m1.pkl"
    victim.write_bytes(b"(dp0\nS'" + b"a" * (len(EVIL) - 17) + b"'\np1\nI1\ns.")  # a dict, same size
    assert victim.stat().st_size == len(EVIL)
    time.sleep(0.1)
    _audit(db, str(zoo), "--policy", "default")
    before = victim.stat()
    victim.write_bytes(EVIL)  # same size
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored; ctime moved
    time.sleep(0.1)
    code, second = _audit(db, str(zoo), "--policy", "default")
    a = second["audit"]
    assert str(victim) in a["changed_paths"] and a["inspected_files"] == 1
    assert code == 1
    assert any(
        x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" and x["path"].endswith("nlp/m1.pkl")
        for x in a["new_findings"]
    )


def test_new_changed_removed_and_resolved(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    time.sleep(0.1)
    _audit(db, str(zoo))
    (zoo / "nlp" / "evil.pkl").unlink()
    (zoo / "vision" / "m0.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (zoo / "vision" / "fresh.pkl").write_bytes(pickle.dumps("hello"))
    time.sleep(0.1)
    _, second = _audit(db, str(zoo))
    a = second["audit"]
    assert a["files"] == {"new": 1, "changed": 1, "unchanged": 11, "removed": 1}
    assert a["new_paths"] == [f"{zoo}/vision/fresh.pkl"] and a["changed_paths"] == [f"{zoo}/vision/m0.pkl"]
    assert a["removed_paths"] == [f"{zoo}/nlp/evil.pkl"]
    assert {x["rule_id"] for x in a["resolved_findings"]} >= {"PICKLE-DANGEROUS-GLOBAL"}


def test_a_rule_database_update_reinspects_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    _audit(db, str(zoo))
    rules = tmp_path / "signatures"
    shutil.copytree(Path(__file__).resolve().parents[2] / "signatures", rules)
    (rules / "VERSION").write_text((rules / "VERSION").read_text().strip() + ".1\n")
    monkeypatch.setenv("MODELWARD_SIGNATURES", str(rules))
    from scanner import rules as rules_mod

    rules_mod._cached.cache_clear()  # the process-wide rule DB is loaded once per root
    try:
        _, second = _audit(db, str(zoo))
    finally:
        rules_mod._cached.cache_clear()
    assert second["audit"]["files"]["unchanged"] == 12 and second["audit"]["inspected_files"] == 12


def test_rehash_reverifies_everything(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    _audit(db, str(zoo))
    _, second = _audit(db, str(zoo), "--rehash")
    assert second["audit"]["inspected_files"] == 12 and second["audit"]["reused_files"] == 0


class _Crash(Exception):
    """Stands in for the process dying between two files."""


def test_a_crash_mid_audit_leaves_a_consistent_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    real = Inventory.record
    calls = {"n": 0}

    def crash_after_five(self: Inventory, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            raise _Crash
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Inventory, "record", crash_after_five)
    with pytest.raises(_Crash):
        CliRunner().invoke(app, ["audit", str(zoo), "--db", str(db)], catch_exceptions=False)
    monkeypatch.setattr(Inventory, "record", real)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    assert con.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 5
    con.close()
    _, resumed = _audit(db, str(zoo))
    a = resumed["audit"]
    assert a["reused_files"] == 5 and a["inspected_files"] == 7 and a["previous_run"] is None


def test_diff_and_history(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    _audit(db, str(zoo))
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    time.sleep(0.1)
    _audit(db, str(zoo))
    res = CliRunner().invoke(app, ["audit", "diff", "--db", str(db)])
    assert res.exit_code == 0, res.output
    diff = json.loads(res.stdout)
    assert diff["added"] == [f"{zoo}/nlp/evil.pkl"] and diff["removed"] == []
    assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for x in diff["new_findings"])
    res = CliRunner().invoke(app, ["audit", "history", "nlp/m0.pkl", "--db", str(db)])
    seen = json.loads(res.stdout)["observations"]
    assert [o["run"] for o in seen] == [1, 2] and seen[0]["sha256"] == seen[1]["sha256"]
    assert CliRunner().invoke(app, ["audit", "diff", "1", "99", "--db", str(db)]).exit_code == 2


def test_inventory_from_a_newer_modelward_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite"
    Inventory(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(InventoryError, match="newer"):
        Inventory(db)
    res = CliRunner().invoke(app, ["audit", str(tmp_path), "--db", str(db)])
    assert res.exit_code == 2 and "newer" in res.output


def test_parallel_workers_give_the_same_verdicts(tmp_path: Path) -> None:
    zoo = _zoo(tmp_path, n=20)
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    _, one = _audit(tmp_path / "a.sqlite", str(zoo), "--policy", "default")
    _, two = _audit(tmp_path / "b.sqlite", str(zoo), "--policy", "default", "--workers", "2")
    assert one["verdict"]["file_decisions"] == two["verdict"]["file_decisions"]


def test_a_forged_inventory_cannot_turn_block_into_allow(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    evil = zoo / "nlp" / "evil.pkl"
    evil.write_bytes(EVIL)
    time.sleep(0.1)
    code, _ = _audit(db, str(zoo), "--policy", "default")
    assert code == 1
    con = sqlite3.connect(db)
    rows = con.execute("SELECT rowid, result FROM results WHERE path LIKE '%evil.pkl'").fetchall()
    assert rows
    for rowid, body in rows:
        doc = json.loads(body)
        doc["findings"] = []
        con.execute("UPDATE results SET result=? WHERE rowid=?", (json.dumps(doc), rowid))
    con.commit()
    con.close()
    code, second = _audit(db, str(zoo), "--policy", "default")
    assert code == 1 and second["audit"]["inspected_files"] == 1  # the forged row is a miss: judged again


def test_audit_include_exclude(tmp_path: Path) -> None:
    zoo, db = _zoo(tmp_path), tmp_path / "inv.sqlite"
    _, doc = _audit(db, str(zoo), "--exclude", "vision/*")
    assert doc["audit"]["files"]["new"] == 6
    assert any(f["rule_id"] == "FILES-EXCLUDED" for fr in doc["files"] for f in fr["findings"])


@pytest.mark.parametrize("single_file", [True, False], ids=["file-target", "folder-target"])
def test_each_observed_file_records_its_decision(tmp_path: Path, single_file: bool) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "evil.pkl").write_bytes(EVIL)
    db = tmp_path / "inv.sqlite"
    _audit(db, str(zoo / "evil.pkl" if single_file else zoo))
    rows = (
        sqlite3.connect(db)
        .execute("SELECT f.path, o.decision FROM observations o JOIN files f ON f.id=o.file_id")
        .fetchall()
    )
    assert rows == [("evil.pkl", "warn")]  # the audit policy reports a block as a warning


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://127.0.0.1:99999", "ftp://hub.example"])
def test_org_listing_with_a_bad_hub_endpoint_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    res = CliRunner().invoke(app, ["audit", "hf://acme", "--db", str(tmp_path / "inv.sqlite")])
    assert res.exit_code == 2, res.output
    assert "HF_ENDPOINT" in res.output and "Traceback" not in res.output
