"""A file listed as regular but swapped for a FIFO or a device before it is opened: an error, never a hang.

A plain ``open`` of a FIFO waits for a writer forever; the scan (and model-signing's hashing) opened files by
path after listing them, so replacing one with a FIFO froze the run, and a link to ``/dev/zero`` swapped in
was read as an empty file. Files are now opened non-blocking and checked through the descriptor.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.findings import Decision
from scanner.integrity.errors import IntegrityError
from scanner.integrity.hashing import hash_file
from scanner.io.reader import FileReader, ReaderError
from scanner.sources.local import LocalSource
from tests.harness import rule_ids, scan

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")


def _within(seconds: float, fn: Callable[[], object], fifo: Path | None = None) -> object:
    """Run ``fn``; fail (not hang) when it does not return in time, then unblock it by opening the writer."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if fifo is not None:  # release the blocked open() so the thread ends
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"still blocked after {seconds} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def test_file_reader_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "model.bin"
    os.mkfifo(fifo)
    with pytest.raises(ReaderError, match="not a regular file"):
        _within(5, lambda: FileReader(fifo), fifo)


def test_hashing_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "model.bin"
    os.mkfifo(fifo)
    with pytest.raises(IntegrityError, match="not a regular file"):
        _within(5, lambda: hash_file(fifo), fifo)


def _swap_after_listing(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    real = LocalSource.resolve

    def resolve(self: LocalSource, target: str):  # type: ignore[no-untyped-def]
        snap = real(self, target)
        swap()
        return snap

    monkeypatch.setattr(LocalSource, "resolve", resolve)


@pytest.mark.parametrize("single", [False, True], ids=["folder", "file-target"])
def test_file_swapped_for_a_fifo_after_listing_blocks_without_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, single: bool
) -> None:
    model = tmp_path / "m" / "config.json"
    model.parent.mkdir()
    model.write_text('{"a": 1}')

    def swap() -> None:
        model.unlink()
        os.mkfifo(model)

    _swap_after_listing(monkeypatch, swap)
    report = _within(10, lambda: scan(model if single else model.parent), model)
    assert report.verdict.decision is Decision.BLOCK  # type: ignore[attr-defined]
    assert "FILE-UNREADABLE" in rule_ids(report)  # type: ignore[arg-type]


def test_file_swapped_for_a_link_to_a_device_is_not_read_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m" / "model.safetensors"
    model.parent.mkdir()
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")

    def swap() -> None:
        model.unlink()
        model.symlink_to("/dev/zero")

    _swap_after_listing(monkeypatch, swap)
    report = _within(10, lambda: scan(model.parent), model)
    assert report.verdict.decision is Decision.BLOCK  # type: ignore[attr-defined]
    assert "FILE-UNREADABLE" in rule_ids(report)  # type: ignore[arg-type]


def test_regular_files_still_read_and_hash(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text('{"a": 1}')
    r = FileReader(p)
    assert r.read(0, 100) == b'{"a": 1}' and len(r.sha256()) == 64
    assert os.get_blocking(r._fd)  # noqa: SLF001 - the descriptor is back to blocking
    r.close()
    assert len(hash_file(p)) == 64
