"""Reports people and tools read: a self-contained HTML page (rendered in real Chromium) and CycloneDX 1.6."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

EVIL = b"cos\nsystem\n(S'echo <script>alert(1)</script>'\ntR."
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _zoo(tmp_path: Path) -> Path:
    zoo = tmp_path / "zoo"
    for team in ("vision", "nlp"):
        (zoo / team).mkdir(parents=True)
        for i in range(3):
            (zoo / team / f"m{i}.pkl").write_bytes(pickle.dumps({"w": [i]}, protocol=4))
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    return zoo


def _chromium(*args: str, timeout: int = 90) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


def test_html_is_self_contained_and_escapes_file_content(tmp_path: Path) -> None:
    zoo = _zoo(tmp_path)
    out = tmp_path / "audit.html"
    res = CliRunner().invoke(
        app,
        [
            "audit",
            str(zoo),
            "--db",
            str(tmp_path / "i.sqlite"),
            "--policy",
            "default",
            "-f",
            "html",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 1, res.output
    page = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external assets
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert 'id="count-block">1<' in page and 'id="count-files">7<' in page


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium); CI installs it"
)
def test_html_renders_in_chromium_with_counts_and_filtering(tmp_path: Path) -> None:
    zoo = _zoo(tmp_path)
    out = tmp_path / "audit.html"
    db = tmp_path / "i.sqlite"
    CliRunner().invoke(app, ["audit", str(zoo), "--db", str(db)])
    (zoo / "vision" / "late.pkl").write_bytes(EVIL)
    res = CliRunner().invoke(
        app, ["audit", str(zoo), "--db", str(db), "--policy", "default", "-f", "html", "-o", str(out)]
    )
    assert res.exit_code == 1, res.output
    profile = tmp_path / "profile"
    dom = _chromium(f"--user-data-dir={profile}", "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert re.search(r'id="count-files">8<', html) and re.search(r'id="count-block">2<', html)
    assert re.search(r'id="count-new">1<', html)  # late.pkl is new since the last audit
    shown = int(re.search(r'id="shown">(\d+)<', html).group(1))  # the script ran and counted the rows
    assert shown == html.count("<tr data-severity=") and shown >= 2
    assert "New since the last audit" in html and "late.pkl" in html
    shot = tmp_path / "report.png"
    pic = _chromium(
        f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,900", out.as_uri()
    )
    assert pic.returncode == 0 and shot.stat().st_size > 10_000


def _cyclonedx_validator():
    """The CycloneDX 1.6 JSON schema (with its SPDX and JSF parts) as shipped in cyclonedx-python-lib.

    The same schema files its strict validator uses, checked with plain jsonschema: the library's
    json-validation extra pulls in format checkers whose import compiles dozens of grammars (seconds
    per process), which would slow every modelward start in the test environment.
    """
    pytest.importorskip("cyclonedx", reason="cyclonedx-python-lib not installed")
    import jsonschema
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.schema._res import BOM_JSON
    from referencing import Registry, Resource

    main = Path(BOM_JSON[SchemaVersion.V1_6])
    registry = Registry().with_resources(
        (name, Resource.from_contents(json.loads((main.parent / name).read_text())))
        for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
    )
    schema = json.loads(main.read_text())
    for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"):  # relative refs, no $id base
        registry = registry.with_resource(
            f"http://cyclonedx.org/schema/{name}",
            Resource.from_contents(json.loads((main.parent / name).read_text())),
        )
    validator = jsonschema.Draft7Validator(schema, registry=registry)
    return validator.validate


def test_cyclonedx_bom_validates_strictly(tmp_path: Path) -> None:
    validate = _cyclonedx_validator()
    zoo = _zoo(tmp_path)
    for args in (["scan", str(zoo)], ["audit", str(zoo), "--db", str(tmp_path / "i.sqlite")]):
        res = CliRunner().invoke(app, [*args, "-f", "cyclonedx"])
        assert res.exit_code in (0, 1), res.output
        validate(json.loads(res.stdout))
        bom = json.loads(res.stdout)
        assert bom["specVersion"] == "1.6" and len(bom["components"]) == 7
        evil = next(c for c in bom["components"] if c["name"].endswith("evil.pkl"))
        assert evil["type"] == "machine-learning-model"
        assert evil["hashes"][0]["alg"] == "SHA-256" and len(evil["hashes"][0]["content"]) == 64
        props = {p["name"]: p["value"] for p in evil["properties"]}
        assert (
            props["modelward:verdict"] == "block"
            if args[0] == "scan"
            else props["modelward:verdict"] in ("warn", "block", "allow")
        )
        assert any(
            p["name"] == "modelward:finding" and "PICKLE-DANGEROUS-GLOBAL" in p["value"]
            for p in evil["properties"]
        )
