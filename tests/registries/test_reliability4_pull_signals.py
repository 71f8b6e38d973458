"""A pull ended by SIGTERM or SIGHUP (a cancelled CI job, ``timeout``, a closed terminal) leaves nothing behind.

Before, their default action killed ``modelward pull`` on the spot: the quarantine folder with the partly
downloaded file stayed on disk until some later pull cleaned it. Now the signal unwinds the pull through its
cleanup, then ends the process with the signal's own status. A real ``modelward pull`` process downloads from a
real server that sends its body slowly, and is signalled mid-body.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .raw_server import RawServer

MODELWARD = str(Path(sys.executable).with_name("modelward"))
SIZE = 2 << 20


def _slow(conn, method, path, headers):  # type: ignore[no-untyped-def]
    """Answers any GET with SIZE zero bytes, 16 KiB every 50 ms (about 6 s in all); Range is ignored."""
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n".encode())
    for _ in range(SIZE // (16 << 10)):
        conn.sendall(bytes(16 << 10))
        time.sleep(0.05)
    return False


def _partial(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "owner.lock" and p.stat().st_size > 0]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signalled_pull_leaves_no_quarantine_and_no_destination(tmp_path: Path, signum: int) -> None:
    srv = RawServer(_slow)
    quarantine, dest = tmp_path / "q", tmp_path / "out" / "model"
    env = {**os.environ, "MODELWARD_QUARANTINE_DIR": str(quarantine), "MODELWARD_NETWORK_SECONDS": "60"}
    proc = subprocess.Popen(
        [MODELWARD, "pull", f"{srv.url}/model.bin", "--allow-http", "--to", str(dest)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (quarantine.exists() and _partial(quarantine)):  # mid-body: some bytes are on disk
            assert proc.poll() is None and time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        proc.send_signal(signum)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.close()
    assert rc == -signum  # still ended by the signal, as callers expect
    assert not dest.exists() and not (tmp_path / "out").exists()
    assert not [p.name for p in quarantine.iterdir()], "the quarantine of the killed pull stayed behind"


def test_handlers_are_restored_and_not_taken_from_others() -> None:
    from scanner.pull import _terminate_cleanly

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    mine = signal.getsignal(signal.SIGTERM)
    with _terminate_cleanly():
        inside = signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == mine
    if mine == signal.SIG_DFL:
        assert inside != signal.SIG_DFL
    else:  # someone (pytest, an embedding program) handles SIGTERM: theirs is kept
        assert inside == mine
