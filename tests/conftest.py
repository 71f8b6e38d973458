"""Suite-wide fixtures (the in-process CLI, the canary check) and the markers' registration.

Scanning helpers live in ``tests/harness.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from tests.harness import CANARY

# Never let a test reach a public host through a client's default endpoint.
os.environ.setdefault("HF_HUB_OFFLINE", "0")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
# MLflow's telemetry thread unsets its session variable with `del os.environ[...]` and races the test's client.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"


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
    CANARY.unlink(missing_ok=True)  # every xdist worker runs this: no exists-then-unlink race
    yield
    assert not CANARY.exists(), "a fixture payload ran: the canary file exists"
