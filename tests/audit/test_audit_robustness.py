"""`modelward audit` in a hostile environment: killed mid-run, two at once, a broken inventory, files that move
while judged, undecodable names, workers that die, and report paths that are not plain files."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner import parallel
from scanner.audit import identity, inventory
from scanner.audit.inventory import Inventory
from scanner.audit.runner import AuditOptions, run_audit
from scanner.cli import app
from scanner.cli_support import emit
from scanner.policy.loader import load_policy
from scanner.settings import ScanOptions

MODELWARD = str(Path(sys.executable).with_name("modelward"))
EVIL = b"cos\nsystem\n(S'touch /tmp/x'\ntR."


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "RACY_WINDOW_NS", 50_000_000)


def _zoo(tmp_path: Path, n: int = 12, evil_every: int = 0) -> Path:
    zoo = tmp_path / "zoo"
    for i in range(n):
        d = zoo / f"t{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        body = EVIL if evil_every and i % evil_every == 0 else pickle.dumps({"w": [i] * 50}, protocol=4)
        (d / f"m{i:04d}.pkl").write_bytes(body)
    time.sleep(0.1)
    return zoo


def _audit(db: Path, *args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["audit", *args, "--db", str(db), "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _one_error_line(res: object) -> str:
    out = res.stderr  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out and out.startswith("error: "), out
    return out


# --- two audits at once -------------------------------------------------------------------------------------


def _open_inventory(path: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        Inventory(Path(path)).close()
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


@pytest.mark.slow
def test_audits_creating_one_new_inventory_at_once_all_open_it(tmp_path: Path) -> None:
    """Each migration step re-reads the schema version under the write lock: the second opener waits and sees
    the tables the first created instead of failing with 'table meta already exists'."""
    ctx = multiprocessing.get_context("fork")
    seen: list[str] = []
    for k in range(4):
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [
            ctx.Process(target=_open_inventory, args=(str(tmp_path / f"inv{k}.sqlite"), barrier, results))
            for _ in range(6)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        seen += [results.get(timeout=5) for _ in procs]
    assert seen == ["ok"] * 24


def test_an_inventory_locked_past_the_wait_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoo, db = _zoo(tmp_path, 4), tmp_path / "inv.sqlite"
    _audit(db, str(zoo))
    monkeypatch.setattr(inventory, "BUSY_SECONDS", 0.2)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        res = CliRunner().invoke(app, ["audit", str(zoo), "--db", str(db)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    out = _one_error_line(res)
    assert str(db) in out and "locked" in out and "another process" in out
    _, again = _audit(db, str(zoo))  # nothing was lost: the next run goes on from the first
    assert again["audit"]["files"]["unchanged"] == 4


def _corrupt_tables(db: Path, *tables: str) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    roots = [
        con.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (t,)).fetchone()[0] for t in tables
    ]
    con.close()
    with open(db, "r+b") as f:
        for root in roots:
            f.seek((root - 1) * page_size)
            f.write(b"\xa5" * page_size)


@pytest.mark.parametrize("command", [[], ["diff"], ["history", "m0001.pkl"], ["export", "--known-bad"]])
def test_an_inventory_found_corrupt_after_it_opened_is_one_error(tmp_path: Path, command: list[str]) -> None:
    zoo, db = _zoo(tmp_path, 4), tmp_path / "inv.sqlite"
    _audit(db, str(zoo))
    _audit(db, str(zoo))
    _corrupt_tables(
        db, "files", "observations"
    )  # the schema page is intact: it opens, then a query meets the damage
    res = CliRunner().invoke(app, ["audit", *(command or [str(zoo)]), "--db", str(db)])
    out = _one_error_line(res)
    assert f"{db}: inventory database error:" in out


def test_a_full_disk_mid_audit_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zoo, db = _zoo(tmp_path, 4), tmp_path / "inv.sqlite"

    def full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Inventory, "record", full)
    out = _one_error_line(CliRunner().invoke(app, ["audit", str(zoo), "--db", str(db)]))
    assert "database or disk is full" in out


# --- files that change between listing and judging ---------------------------------------------------------


def _audit_with_hook(zoo: Path, db: Path, hook: object) -> dict:
    opts = AuditOptions(db=db, policy=load_policy("default"), scan=ScanOptions(on_file=hook))  # type: ignore[arg-type]
    with run_audit([str(zoo)], opts) as out:
        return {f.path.rsplit("/", 1)[-1]: f for f in out.files()}


def _recorded_identity(db: Path, name: str) -> str | None:
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT identity FROM files WHERE path LIKE ?", (f"%{name}",)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def test_a_file_swapped_after_listing_is_recorded_without_an_identity(tmp_path: Path) -> None:
    """The identity recorded must be that of the bytes judged: the file listed was replaced before it was
    judged, so the listed identity belongs to bytes nobody inspected."""
    zoo, db = _zoo(tmp_path, 4), tmp_path / "inv.sqlite"
    victim = zoo / "t1" / "m0001.pkl"
    swapped: list[str] = []

    def swap(fr: object) -> None:
        if not swapped:  # after the first file is judged, before the victim is
            new = victim.with_name("new.tmp")
            new.write_bytes(EVIL)
            os.replace(new, victim)
            swapped.append(str(fr))

    files = _audit_with_hook(zoo, db, swap)
    assert swapped and any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in files["m0001.pkl"].findings)
    assert _recorded_identity(db, "m0001.pkl") is None
    assert _recorded_identity(db, "m0002.pkl") is not None  # the others keep theirs
    _, second = _audit(db, str(zoo), "--policy", "default")
    assert second["audit"]["inspected_files"] == 1 and second["audit"]["reused_files"] == 3


@pytest.mark.parametrize("how", ["deleted", "symlink", "rewritten"])
def test_a_file_removed_or_linked_after_listing_is_not_judged_clean(tmp_path: Path, how: str) -> None:
    zoo, db = _zoo(tmp_path, 4), tmp_path / "inv.sqlite"
    victim = zoo / "t1" / "m0001.pkl"
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(EVIL)
    done: list[bool] = []

    before = victim.stat()
    rewritten = victim.read_bytes().replace(b"K\x01", b"K\x02")  # same size, other bytes
    assert rewritten != victim.read_bytes()

    def change(fr: object) -> None:
        if not done:
            if how == "rewritten":
                victim.write_bytes(rewritten)
                os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime put back
            else:
                victim.unlink()
            if how == "symlink":
                victim.symlink_to(outside)
            done.append(True)

    files = _audit_with_hook(zoo, db, change)
    fr = files["m0001.pkl"]
    if how == "rewritten":  # the verdict is about the bytes read, which are the new ones
        assert len(rewritten) == before.st_size and fr.sha256 == hashlib.sha256(rewritten).hexdigest()
    elif how == "deleted":
        assert fr.coverage.value == "none" and any(f.rule_id == "FILE-UNREADABLE" for f in fr.findings)
    else:  # the bytes judged are the ones the link names now, and they block
        assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in fr.findings)
    assert _recorded_identity(db, "m0001.pkl") is None


# --- undecodable names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_undecodable_and_control_character_names_are_recorded_and_reported(
    tmp_path: Path, workers: str
) -> None:
    zoo, db = tmp_path / "zoo", tmp_path / "inv.sqlite"
    zoo.mkdir()
    names = [b"bad\xff\xfe.pkl", b"new\nline.pkl", b"esc\x1b[31m.pkl", b"\xe9t\xe9.pkl", b"ok.pkl"]
    for n in names:
        with open(os.path.join(os.fsencode(zoo), n), "wb") as f:
            f.write(EVIL)
    time.sleep(0.1)
    _, first = _audit(db, str(zoo), "--workers", workers)
    assert first["audit"]["files"]["new"] == 5 and len(first["files"]) == 5
    assert any("bad\\xff\\xfe.pkl" in p for p in first["audit"]["new_paths"])
    _, second = _audit(db, str(zoo), "--workers", workers)
    assert second["audit"]["files"]["unchanged"] == 5 and second["audit"]["reused_files"] == 5
    assert second["audit"]["new_findings"] == []
    con = sqlite3.connect(db)
    decided = con.execute("SELECT decision FROM observations WHERE run_id=2").fetchall()
    con.close()
    assert len(decided) == 5 and None not in {d for (d,) in decided}
    for fmt in ("html", "markdown", "sarif", "cyclonedx", "console"):
        res = CliRunner().invoke(
            app, ["audit", str(zoo), "--db", str(db), "-f", fmt, "-o", str(tmp_path / fmt)]
        )
        assert res.exit_code == 0, res.output
    assert "bad\\xff\\xfe.pkl" in (tmp_path / "html").read_text()
    res = CliRunner().invoke(app, ["audit", "history", "bad\\xff\\xfe.pkl", "--db", str(db)])
    assert res.exit_code == 0 and len(json.loads(res.stdout)["observations"]) == 7


# --- worker processes that die --------------------------------------------------------------------------------


def _die_on_poison(job: tuple[str, str, int]) -> str:
    """Stands in for ``parallel._judge`` in forked workers: the poison file kills its worker (as the OOM
    killer would); every other file is judged normally."""
    if "poison" in job[0]:
        os._exit(137)
    assert parallel._WorkerState.rules is not None
    return parallel.judge_local_job(job, parallel._WorkerState.rules, parallel._WorkerState.opts)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_file_closed_and_the_audit_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if multiprocessing.get_start_method() != "fork":
        pytest.skip("the stand-in judge reaches workers only when they are forked")
    zoo, db = _zoo(tmp_path, 30, evil_every=7), tmp_path / "inv.sqlite"
    (zoo / "t2" / "m0010poison.pkl").write_bytes(pickle.dumps({"w": 1}))
    time.sleep(0.1)
    monkeypatch.setattr(parallel, "_judge", _die_on_poison)
    code, report = _audit(db, str(zoo), "--workers", "2", "--policy", "default")
    assert code == 1 and len(report["files"]) == 31
    by_name = {f["path"].rsplit("/", 1)[-1]: f for f in report["files"]}
    poison = by_name.pop("m0010poison.pkl")
    assert poison["coverage"] == "none"
    assert [f["rule_id"] for f in poison["findings"]] == ["INSPECTOR-ERROR"]
    assert "worker process" in poison["findings"][0]["message"]
    assert all(f["coverage"] == "full" for f in by_name.values())  # the others were judged, once each
    blocked = {p.rsplit("/", 1)[-1] for p, d in report["verdict"]["file_decisions"].items() if d == "block"}
    assert blocked == {f"m{i:04d}.pkl" for i in range(0, 30, 7)} | {"m0010poison.pkl"}
    assert _recorded_identity(db, "m0010poison.pkl") is None  # never reused: judged again next time
    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs").fetchall() == [("complete",)]
    assert con.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 31
    con.close()


# --- interrupted audits (real processes) -----------------------------------------------------------------------


def _start(tmp_path: Path, zoo: Path, db: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    cmd = [MODELWARD, "audit", str(zoo), "--db", str(db), "-f", "json"]
    return subprocess.Popen(
        [*cmd, "-o", str(tmp_path / "out" / "report.json"), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _observed(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM observations").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _frozen_mid_scan(tmp_path: Path, zoo: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """An audit stopped (SIGSTOP) after it has recorded 40 files and well before its last: the poll that
    watches it can itself be slowed past the whole scan on a loaded machine, so an attempt that froze too
    late is thrown away and another is started."""
    for attempt in range(5):
        db, out = tmp_path / f"inv{attempt}.sqlite", tmp_path / "out"
        out.mkdir(exist_ok=True)
        proc = _start(tmp_path, zoo, db)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _observed(db) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGSTOP)
        if proc.poll() is None and 40 <= _observed(db) < 300 and not os.listdir(out):
            return proc, db
        proc.kill()
        proc.communicate(timeout=30)
        for leftover in out.iterdir():
            leftover.unlink()
    pytest.fail("the audit never froze mid-scan in five attempts")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_audit_killed_mid_run_leaves_no_report_and_no_false_clean(
    tmp_path: Path, sig: signal.Signals
) -> None:
    zoo = _zoo(tmp_path, 400, evil_every=7)
    proc, db = _frozen_mid_scan(tmp_path, zoo)
    proc.send_signal(sig)  # delivered when the audit runs again
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"Traceback" not in err
    assert os.listdir(tmp_path / "out") == []  # neither the report nor a piece of it
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    judged = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    con.close()
    assert 40 <= judged < 400
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    done = subprocess.run(
        [MODELWARD, "audit", str(zoo), "--db", str(db), "-f", "json"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert report["audit"]["files"]["new"] == 400 - judged
    blocked = {p for p, d in report["verdict"]["file_decisions"].items() if d != "allow"}
    assert len(blocked) == len(range(0, 400, 7))  # every evil file, judged before the kill or after


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_workers_die_with_a_killed_audit(tmp_path: Path) -> None:
    """A pool worker holds its own job queue open: without a parent-death signal it would wait forever."""
    zoo, db = _zoo(tmp_path, 1500), tmp_path / "inv.sqlite"
    (tmp_path / "out").mkdir()
    proc = _start(tmp_path, zoo, db, "--workers", "2")
    kids: list[str] = []
    deadline = time.monotonic() + 60
    while len(kids) < 2 and proc.poll() is None and time.monotonic() < deadline:
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        time.sleep(0.02)
    assert len(kids) >= 2, "no workers seen"
    proc.kill()
    proc.communicate(timeout=30)

    def alive() -> list[int]:
        """Live processes of the audit this test started (their command line names its database)."""
        out = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and str(db).encode() in (entry / "cmdline").read_bytes():
                    if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                        out.append(int(entry.name))
            except OSError:
                pass
        return out

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive()
    for pid in left:
        os.kill(pid, signal.SIGKILL)  # ours: started by the audit this test started
    assert left == []


# --- writing the report ----------------------------------------------------------------------------------------


def test_a_report_is_never_written_through_a_planted_temporary_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "report.json"
    (tmp_path / "report.json.part").symlink_to(victim)  # the fixed name an older modelward used
    emit("{}\n", out)
    assert victim.read_text() == "keep"
    assert out.read_text() == "{}\n" and not out.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.json.part", "victim"]


def test_a_report_to_a_fifo_or_through_a_link_keeps_them(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    emit("streamed\n", fifo)  # renaming a file over it (or over /dev/null) would replace it
    reader.join(10)
    assert got == ["streamed\n"] and fifo.is_fifo()
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    emit("new\n", link)
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_report_that_cannot_be_written_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "report.json"
    target.mkdir()  # a folder where the report should go
    with pytest.raises(SystemExit):
        emit("x" * 100_000, target)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.json"]
    emit("made\n", tmp_path / "new" / "folder" / "r.json")  # a missing folder is made
    assert (tmp_path / "new" / "folder" / "r.json").read_text() == "made\n"


@pytest.mark.parametrize("command", [["diff"], ["history", "m.pkl"], ["export", "--known-bad"]])
def test_a_query_of_a_missing_inventory_is_one_error_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "typo" / "inv.sqlite"
    out = _one_error_line(CliRunner().invoke(app, ["audit", *command, "--db", str(db)]))
    assert str(db) in out and "no inventory database" in out
    assert not (tmp_path / "typo").exists()


def test_a_ctrl_c_python_swallows_still_stops_the_audit_at_the_next_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyboardInterrupt raised inside a weakref callback is dropped by Python as unraisable; that report
    (a traceback on stderr) is silenced, the press is remembered and the next judged file stops the audit.
    Any other unraisable exception still reaches the hook that was there before."""
    import gc
    import weakref

    from scanner.audit_cli import _stop_between_files_on_sigint
    from scanner.findings import FileResult

    class Thing:
        pass

    reported: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_type))
    scan = ScanOptions()
    restore = _stop_between_files_on_sigint(scan)
    try:
        thing = Thing()
        ref = weakref.ref(thing, lambda _r: signal.raise_signal(signal.SIGINT))
        del thing  # the handler runs inside the callback: its KeyboardInterrupt is unraisable
        gc.collect()
        assert ref() is None and reported == []
        other = Thing()
        ref = weakref.ref(other, lambda _r: 1 / 0)
        del other
        gc.collect()
        assert reported == [ZeroDivisionError]
        assert scan.on_file is not None
        with pytest.raises(KeyboardInterrupt):
            scan.on_file(FileResult(path="m.pkl", size=0, format="pickle"))
    finally:
        restore()
    assert "Traceback" not in capsys.readouterr().err
    assert sys.unraisablehook is not None and sys.unraisablehook.__name__ == "<lambda>"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and scan.on_file is None
