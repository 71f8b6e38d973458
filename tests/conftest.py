"""Shared test helpers: run the real CLI in-process and scan paths through the real engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.engine import ScanOptions, scan_targets
from scanner.findings import ScanReport
from scanner.policy.default import decide

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CANARY = Path("/tmp/modelward-canary")

# Never let a test reach a public host through a client's default endpoint.
os.environ.setdefault("HF_HUB_OFFLINE", "0")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"


def scan(*paths: str | Path, **opts: object) -> ScanReport:
    report = scan_targets([str(p) for p in paths], ScanOptions(**opts))  # type: ignore[arg-type]
    report.verdict = decide(report)
    return report


def rule_ids(report: ScanReport) -> set[str]:
    return {f.rule_id for f in report.all_findings()}


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def json_scan(cli):
    def run(*paths: str | Path) -> tuple[int, dict]:
        res = cli("scan", "--format", "json", *[str(p) for p in paths])
        return res.exit_code, json.loads(res.stdout)

    return run


@pytest.fixture(autouse=True, scope="session")
def _no_canary_before():
    if CANARY.exists():
        CANARY.unlink()
    yield
    assert not CANARY.exists(), "a fixture payload ran: the canary file exists"
