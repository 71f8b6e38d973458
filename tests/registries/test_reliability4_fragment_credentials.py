"""A credential in a URL's fragment (``#access_token=…``, OAuth-style) is never shown.

The lockfile already wrote such values as ``***``, but ``redact_url`` kept fragments as they were, so every
report, error line and target name printed them. A real server answers the scans; each format and the errors
are checked, for a file that is served and for one that is not.
"""

from __future__ import annotations

import pickle

import pytest
from typer.testing import CliRunner

from scanner.cli import app
from scanner.io.redaction import redact, redact_url

from .raw_server import RawServer, answer, ranged

FORMATS = ("console", "json", "sarif", "markdown", "html", "cyclonedx")
BODY = pickle.dumps({"w": [1, 2, 3]}, protocol=4)


def test_redact_url_hides_credential_named_fragment_values() -> None:
    assert (
        redact_url("https://h/x#access_token=frag0secret1&sha256=ab")
        == "https://h/x#access_token=***&sha256=ab"
    )
    assert (
        redact_url("https://h/x?a=1#id_token=frag0secret2&state=s") == "https://h/x?a=1#id_token=***&state=s"
    )
    assert redact_url("https://h/x#sha256=ab") == "https://h/x#sha256=ab"  # a pin is not a secret
    assert redact_url("https://h/x#section") == "https://h/x#section"
    assert "frag0secret3" not in redact("GET https://h/x#client_secret=frag0secret3 failed")


@pytest.mark.slow
@pytest.mark.parametrize("found", [True, False], ids=["served", "missing"])
def test_fragment_credential_absent_from_every_format_and_error(
    monkeypatch: pytest.MonkeyPatch, found: bool
) -> None:
    monkeypatch.setenv("MODELWARD_HTTP_BACKOFF", "0.01")
    secret = f"fragSecretValue{int(found)}x9"

    def handle(conn, method, path, headers):  # type: ignore[no-untyped-def]
        if found:
            ranged(conn, headers, BODY)
        else:
            answer(conn, 404, [], b"no")

    srv = RawServer(handle)
    try:
        url = f"{srv.url}/model.pkl#access_token={secret}"
        for fmt in FORMATS:
            res = CliRunner().invoke(app, ["scan", url, "--allow-http", "-f", fmt])
            assert res.exit_code == (0 if found else 2), res.output
            text = res.stdout + res.stderr
            assert secret not in text, (fmt, text[:2000])
            assert "model.pkl" in text or fmt in ("markdown", "html")  # these list files with findings only
        assert all("#" not in p for _m, p, _h in srv.log)  # a fragment is never sent to the server
    finally:
        srv.close()
