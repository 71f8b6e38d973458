"""``modelward scan TARGET -f json`` run in a thread with a time limit, for the network-fault tests: a scan that
hangs fails its test at the limit instead of blocking the suite."""

from __future__ import annotations

import json
import threading
import time

from typer.testing import CliRunner

from scanner.cli import app


def scan_within(target: str, limit: float = 40.0) -> tuple[int, str, dict, float]:
    """(exit code, output, parsed JSON report or {}, seconds taken); no traceback allowed in the output."""
    box: dict = {}

    def run() -> None:
        box["res"] = CliRunner().invoke(app, ["scan", target, "-f", "json"])

    t0 = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    took = time.monotonic() - t0
    assert not worker.is_alive(), f"scan {target} still running after {limit:.0f} s"
    res = box["res"]
    assert "Traceback" not in res.output, res.output
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        doc = {}
    return res.exit_code, res.output, doc, took
