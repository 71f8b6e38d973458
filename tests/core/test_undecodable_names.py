"""Names that are not UTF-8 (a file name on disk, a tar member, a string inside a pickle) never crash a report:
every format is written, the verdict stands, and the name shows as ``\\xNN`` escapes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.harness import evil_pickle

FORMATS = ["console", "json", "sarif", "markdown", "html", "cyclonedx"]


def _latin1_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("caf\xe9/model.pkl")
        data = evil_pickle()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _surrogate_global() -> bytes:
    """A protocol-2 pickle importing a global whose name is a lone surrogate (BINUNICODE is surrogatepass)."""
    name = b"\xed\xa0\x80"
    return b"\x80\x02X\x02\x00\x00\x00osX" + len(name).to_bytes(4, "little") + name + b"\x93)R."


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "zoo"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"ev\xffil.pkl"), "wb") as fh:
        fh.write(evil_pickle())
    (root / "members.tar").write_bytes(_latin1_tar())
    (root / "surrogate.pkl").write_bytes(_surrogate_global())
    return root


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_report_format_is_written(cli, folder: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    res = cli("scan", "--format", fmt, "-o", str(out), str(folder))
    assert res.exit_code == 1, res.output
    text = out.read_text(encoding="utf-8")  # strict UTF-8: no lone surrogate was written
    assert "xffil.pkl" in text or fmt == "cyclonedx"  # the escape (JSON doubles its backslash)


def test_json_report_keeps_every_file_and_its_verdict(cli, folder: Path) -> None:
    res = cli("scan", "--format", "json", str(folder))
    doc = json.loads(res.stdout)
    decisions = doc["verdict"]["file_decisions"]
    [evil] = [p for p in decisions if p.endswith("ev\\xffil.pkl")]
    assert decisions[evil] == "block"
    assert decisions[next(p for p in decisions if p.endswith("members.tar"))] == "block"
    assert decisions[next(p for p in decisions if p.endswith("surrogate.pkl"))] == "block"
    member_paths = {f["path"] for fr in doc["files"] for f in fr["findings"]}
    assert any("caf\\xe9/model.pkl" in p for p in member_paths), member_paths
