"""Credentials never appear in any report format, on stderr, or in error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.http_session import redact, redact_url, register_secret

from .models import safetensors_bytes
from .servers.hf_hub_server import CDN_SECRET_QUERY, HubServer

HF_SECRET = "hf_FAKEtokenForRedactionTest0123456789"
FORMATS = ("console", "json", "sarif", "markdown")


def _outputs(args: list[str]) -> list[tuple[int, str]]:
    out = []
    for fmt in FORMATS:
        res = CliRunner().invoke(app, [*args, "--format", fmt])
        out.append((res.exit_code, res.stdout + "\n" + res.stderr))
    return out


def test_redact_helpers():
    register_secret("sekritvalue99")
    text = (
        "GET https://user:pw123456@host/x?token=abc123456&X-Amz-Signature=zzz&ok=1 failed with sekritvalue99; "
        "Authorization: Bearer hf_abcdefghijklmnopqrstuvwxyz"
    )
    red = redact(text)
    for s in ("pw123456", "abc123456", "zzz", "sekritvalue99", "hf_abcdefghijklmnopqrstuvwxyz"):
        assert s not in red
    assert "ok=1" in red and "host/x" in red
    assert redact_url("https://a:b@h/p?sig=1&x=2#sha256=ab") == "https://***@h/p?sig=***&x=2#sha256=ab"


def test_hf_token_absent_from_every_format_and_error(hub: HubServer, monkeypatch: pytest.MonkeyPatch):
    hub.add_repo(
        "acme/private", {"config.json": b"{}", "w.safetensors": safetensors_bytes({"w": 8})}, token=HF_SECRET
    )
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    for code, text in _outputs(["scan", "hf://acme/private"]):
        assert code == 0, text
        assert HF_SECRET not in text
        assert "cdnsignature0123456789" not in text  # the CDN's signed query never shows either
    for code, text in _outputs(["scan", "hf://acme/missing"]):
        assert code == 2 and HF_SECRET not in text
    monkeypatch.setenv("HF_TOKEN", HF_SECRET[:-1] + "X")  # wrong token: access denied, token not echoed
    for code, text in _outputs(["scan", "hf://acme/private"]):
        assert code == 2 and HF_SECRET[:-1] not in text
    assert CDN_SECRET_QUERY  # the server really signs CDN URLs


def test_url_credentials_absent_from_every_scan_format(nginx):
    (nginx.www / "private" / "w.safetensors").write_bytes(safetensors_bytes({"w": 8}))
    url = f"http://alice:s3cretpass@127.0.0.1:{nginx.port}/private/w.safetensors?token=querysecret42"
    for code, text in _outputs(["scan", url, "--allow-http"]):
        assert code == 0, text
        assert "s3cretpass" not in text and "querysecret42" not in text


def test_url_credentials_absent_from_errors(nginx, tmp_path: Path):
    (nginx.www / "private" / "w.safetensors").write_bytes(safetensors_bytes({"w": 8}))
    bad = f"http://alice:wrongpass77@127.0.0.1:{nginx.port}/private/w.safetensors?token=querysecret42"
    res = CliRunner().invoke(app, ["pull", bad, "--allow-http", "--to", str(tmp_path / "d")])
    assert res.exit_code == 2
    assert "wrongpass77" not in res.output and "querysecret42" not in res.output
    assert "401" in res.output
    res = CliRunner().invoke(app, ["scan", bad, "--allow-http"])
    assert res.exit_code == 2 and "401" in res.output
    assert "wrongpass77" not in res.output and "querysecret42" not in res.output


def test_url_credentials_absent_from_pull_reports(nginx, tmp_path: Path):
    (nginx.www / "private" / "w.safetensors").write_bytes(safetensors_bytes({"w": 8}))
    url = f"http://alice:s3cretpass@127.0.0.1:{nginx.port}/private/w.safetensors?token=querysecret42"
    for i, fmt in enumerate(FORMATS):
        res = CliRunner().invoke(
            app, ["pull", url, "--allow-http", "--to", str(tmp_path / f"d{i}"), "--format", fmt]
        )
        assert res.exit_code == 0, res.output
        assert "s3cretpass" not in res.output and "querysecret42" not in res.output


def test_url_credentials_absent_from_scan_reports(nginx):
    from scanner.pipeline import ScanOptions, scan_targets
    from scanner.report import render

    (nginx.www / "private" / "w.safetensors").write_bytes(safetensors_bytes({"w": 8}))
    url = f"http://alice:s3cretpass@127.0.0.1:{nginx.port}/private/w.safetensors?token=querysecret42"
    report = scan_targets([url], ScanOptions(source_options={"allow_http": True}))
    assert not report.errors
    for fmt in FORMATS:
        text = render(report, fmt)
        assert "s3cretpass" not in text and "querysecret42" not in text, fmt
