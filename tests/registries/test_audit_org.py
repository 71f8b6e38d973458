"""audit hf://ORG: every model of an organization, paginated, private repos only with a token that may see them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

from .models import evil_pickle, safetensors_bytes
from .servers.hf_hub_server import HubServer


def test_org_audit_covers_every_model_across_pages(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint, raising=False)
    for i in range(5):
        hub.add_repo(
            f"acme/m{i}",
            {"config.json": b'{"model_type": "x"}', "model.safetensors": safetensors_bytes({"w": 8})},
        )
    hub.add_repo("acme/bad", {"pytorch_model.pkl": evil_pickle()})
    hub.add_repo("acme/secret", {"config.json": b"{}"}, token="hf_sekrit")
    hub.add_repo("other/m", {"config.json": b"{}"})
    res = CliRunner().invoke(
        app, ["audit", "hf://acme", "--db", str(tmp_path / "inv.sqlite"), "-f", "json", "-p", "default"]
    )
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    repos = {f["path"].split("/")[3] for f in doc["files"]}
    assert repos == {
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
        "bad",
    }  # not other orgs, not the private one without a token
    assert any(x["rule_id"] == "PICKLE-DANGEROUS-GLOBAL" for f in doc["files"] for x in f["findings"])
    monkeypatch.setenv("HF_TOKEN", "hf_sekrit")
    res = CliRunner().invoke(app, ["audit", "hf://acme", "--db", str(tmp_path / "inv.sqlite"), "-f", "json"])
    assert "secret" in {f["path"].split("/")[3] for f in json.loads(res.stdout)["files"]}
    assert "hf_sekrit" not in res.output


def test_unknown_org_is_a_clear_error(hub: HubServer, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["audit", "hf://nobody", "--db", str(tmp_path / "inv.sqlite")])
    assert res.exit_code == 2 and "hf://nobody" in res.output


def test_scan_of_an_org_name_says_the_expected_form(hub: HubServer) -> None:
    hub.add_repo("acme/m", {"config.json": b"{}"})
    res = CliRunner().invoke(app, ["scan", "hf://acme"])
    assert res.exit_code == 2
    assert "hf://ORG/NAME" in res.output and "modelward audit hf://acme" in res.output
    assert "verdict" not in res.output.lower()
