"""A killed pull leaves nothing a scan of the destination can see, and the next pull cleans up after it.

Real subprocess pulls against the suite's Hub-compatible server (served slowly), killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import scanner.pull as pull_mod
from scanner.pull import PullOptions, pull
from scanner.quarantine import Quarantine, clean_stale, quarantine_root
from tests.harness import REPO, rule_ids, scan
from tests.registries.servers.hf_hub_server import HubServer

MALICIOUS = b"cos\nsystem\n(S'touch /tmp/x'\ntR."
FILES = {
    "config.json": b'{"model_type": "tiny"}',
    "a.json": b'{"a": 1}',
    "b.json": b'{"b": 2}',
    "c.json": b'{"c": 3}',
}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    for var in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "CI",
        "MODELWARD_QUARANTINE_DIR",
        "MODELWARD_CACHE_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    srv = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", srv.endpoint)
    srv.add_repo("acme/tiny", FILES)
    try:
        yield srv
    finally:
        srv.stop()


def _modelward_entries(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".modelward" in p.name)


def _kill_mid_download(args: list[str]) -> Path:
    """Start a real pull, SIGKILL it once a partial download sits in quarantine; returns that quarantine."""
    qroot = quarantine_root()
    code = "import sys; from scanner.cli import main; sys.argv[0] = 'modelward'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "pull", *args],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            trees = list(qroot.glob("pull-*/tree")) if qroot.exists() else []
            if trees and any(p.is_file() for p in trees[0].rglob("*")):
                break
            assert proc.poll() is None, f"pull ended before it could be killed: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            time.sleep(0.02)
        else:
            pytest.fail("no partial download appeared in quarantine")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()  # type: ignore[union-attr]
    [stale] = [p.parent for p in trees]
    return stale


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["new-to", "existing-to", "hf-cache"])
def test_sigkilled_pull_leaves_nothing_in_destination_and_next_pull_cleans(
    hub: HubServer, tmp_path: Path, mode: str
) -> None:
    dest_parent = tmp_path / "models"
    dest_parent.mkdir()
    dest = dest_parent / "tiny"
    if mode == "existing-to":
        dest.mkdir()
        (dest / "README.md").write_text("mine")
    args = ["hf://acme/tiny"] + ([] if mode == "hf-cache" else ["--to", str(dest)])
    hub.faults.slow = 0.4  # every response waits: the pull is caught between files
    stale = _kill_mid_download(args)
    assert stale.is_dir() and (stale / "owner.lock").is_file()
    hf_hub = tmp_path / "hf_home" / "hub"
    for place in (dest_parent, hf_hub):
        assert _modelward_entries(place) == [], f"a killed pull left files in {place}"
    if mode == "new-to":
        assert not dest.exists()
    if mode == "existing-to":
        assert sorted(p.name for p in dest.iterdir()) == ["README.md"]
    if mode == "hf-cache":
        assert not list(hf_hub.rglob("blobs/*"))
    assert "PULL-LEFTOVER" not in rule_ids(scan(dest_parent))

    hub.faults.slow = 0.0
    out = pull("hf://acme/tiny", PullOptions(to=None if mode == "hf-cache" else dest, progress=False))
    assert out.installed, out.message
    assert not stale.exists(), "the next pull did not remove the dead pull's quarantine"
    assert list(quarantine_root().iterdir()) == []
    for place in (dest_parent, hf_hub):
        assert _modelward_entries(place) == []


def test_live_quarantine_is_not_removed(tmp_path: Path) -> None:
    root = tmp_path / "q"
    mine = Quarantine(root)
    (mine.tree / "x.bin").write_bytes(b"partial")
    other = Quarantine(root)  # a second pull starting while the first runs
    assert mine.path.exists() and not other.stale_removed
    fresh = root / "pull-123-nolock"
    fresh.mkdir()  # between mkdtemp and taking the lock: young, kept
    assert clean_stale(root) == [] and fresh.exists()
    os.utime(fresh, (time.time() - 3600, time.time() - 3600))
    assert clean_stale(root) == [fresh]
    mine.discard()
    other.discard()
    assert list(root.iterdir()) == []


def test_legacy_quarantine_inside_a_model_folder_is_flagged_not_read(tmp_path: Path) -> None:
    d = tmp_path / "model"
    leftover = d / ".modelward-quarantine-abc123" / "tree"
    leftover.mkdir(parents=True)
    (leftover / "pytorch_model.bin").write_bytes(MALICIOUS[:20])  # partial: would crash-parse as a pickle
    (d / "config.json").write_text("{}")
    report = scan(d)
    ids = rule_ids(report)
    assert "PULL-LEFTOVER" in ids
    assert not [f for f in report.all_findings() if "pytorch_model.bin" in f.path], (
        "descended into the leftover"
    )
    assert report.verdict.decision.value == "block"  # unread content in the tree: fail closed until deleted


def test_quarantined_bytes_changed_before_the_scan_block(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan re-hashes the quarantined file it inspects; it must match what was downloaded and verified."""
    hub.add_repo("acme/evil", {"config.json": FILES["config.json"], "model.pkl": b"S'" + b"a" * 26 + b"'\n."})
    real = pull_mod._scan_quarantined

    def tamper(snapshot, fetched, opts, rules):  # noqa: ANN001, ANN202
        for f in fetched:
            if f.artifact.path == "model.pkl":
                st = f.local.stat()
                f.local.write_bytes(MALICIOUS)
                os.utime(f.local, ns=(st.st_atime_ns, st.st_mtime_ns))
        return real(snapshot, fetched, opts, rules)

    monkeypatch.setattr(pull_mod, "_scan_quarantined", tamper)
    out = pull("hf://acme/evil", PullOptions(to=tmp_path / "evil", progress=False))
    assert not out.installed and not (tmp_path / "evil").exists()
    ids = rule_ids(out.report)
    assert "FILE-CHANGED-DURING-SCAN" in ids
    assert hashlib.sha256(MALICIOUS).hexdigest() not in {fr.sha256 for fr in out.report.files}


def test_cross_filesystem_install_copies_through_locked_staging(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem")
    q = shm / f"modelward-test-{os.getpid()}"
    monkeypatch.setenv("MODELWARD_QUARANTINE_DIR", str(q))
    try:
        for dest in (tmp_path / "new", tmp_path / "existing"):
            if dest.name == "existing":
                dest.mkdir()
            out = pull("hf://acme/tiny", PullOptions(to=dest, progress=False))
            assert out.installed, out.message
            assert {p.name: p.read_bytes() for p in dest.iterdir() if p.name in FILES} == FILES
            assert _modelward_entries(tmp_path) == []
        assert list(q.iterdir()) == []
    finally:
        import shutil

        shutil.rmtree(q, ignore_errors=True)


def test_quarantine_root_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    """A restored cache could make the quarantine folder a link into a destination: refuse to use it."""
    elsewhere = tmp_path / "models"
    elsewhere.mkdir()
    link = tmp_path / "q"
    link.symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a folder owned"):
        Quarantine(link)
    assert list(elsewhere.iterdir()) == []


def test_next_pull_removes_old_lockless_legacy_quarantines(hub: HubServer, tmp_path: Path) -> None:
    dest = tmp_path / "tiny"
    dest.mkdir()
    old = dest / ".modelward-quarantine-k2j3h4"
    (old / "tree").mkdir(parents=True)
    (old / "tree" / "model.bin").write_bytes(b"partial")
    young = dest / ".modelward-quarantine-young"
    young.mkdir()  # maybe an older release's pull still running: kept
    past = time.time() - 7200
    os.utime(old, (past, past))
    out = pull("hf://acme/tiny", PullOptions(to=dest, progress=False))
    assert out.installed
    assert not old.exists() and young.exists()


def test_unusable_cache_folder_falls_back_to_a_private_temp_quarantine(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only or planted cache folder must not stop pulls, nor move the quarantine into the destination."""
    blocked = tmp_path / "xdg-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    dest = tmp_path / "tiny"
    out = pull("hf://acme/tiny", PullOptions(to=dest, progress=False))
    assert out.installed
    assert _modelward_entries(dest) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".modelward")]
    [fallback] = list((tmp_path / "tmp").iterdir())
    assert fallback.name.startswith("modelward-quarantine-") and list(fallback.iterdir()) == []
