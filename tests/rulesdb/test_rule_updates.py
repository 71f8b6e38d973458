"""Signed rule-database updates: valid, tampered, unsigned, untrusted, older and incompatible bundles, served
from a file and from a real HTTP server on 127.0.0.1; the previous database stays active on every refusal."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from scanner import rules as rules_mod
from scanner.cli import app
from scanner.resources import packaged_signatures_dir

EVIL = b"cos\nsystem\n(S'touch /tmp/pwned'\ntR."


@pytest.fixture(autouse=True)
def private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MODELWARD_SIGNATURES", raising=False)
    monkeypatch.delenv("MODELWARD_KNOWN_BAD", raising=False)
    rules_mod._cached.cache_clear()
    yield
    rules_mod._cached.cache_clear()


def _key(tmp_path: Path, name: str) -> tuple[Path, Path]:
    k = ec.generate_private_key(ec.SECP256R1())
    priv, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    priv.write_bytes(
        k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub.write_bytes(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def _rules_tree(tmp_path: Path, version: str, *, extra_known_bad: str | None = None) -> Path:
    src = tmp_path / f"signatures-{version}"
    shutil.copytree(packaged_signatures_dir(), src, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (src / "VERSION").write_text(version + "\n")
    if extra_known_bad:
        (src / "known_bad_sha256.yaml").write_text(
            f"digests:\n  - {{sha256: {extra_known_bad}, name: test-sample, reference: https://example.org/x}}\n"
        )
    return src


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def _active_version() -> str:
    rules_mod._cached.cache_clear()
    return rules_mod.get_rule_db().version


def test_a_signed_newer_bundle_becomes_active_and_its_rules_apply(tmp_path: Path) -> None:
    import hashlib

    priv, pub = _key(tmp_path, "team")
    evil = tmp_path / "zoo" / "evil.pkl"
    evil.parent.mkdir()
    evil.write_bytes(EVIL)
    src = _rules_tree(tmp_path, "2099.1.1.1", extra_known_bad=hashlib.sha256(EVIL).hexdigest())
    bundle = tmp_path / "rules.tar.gz"
    assert _run("rules", "pack", str(src), "-o", str(bundle), "--key", str(priv)).exit_code == 0
    res = _run("rules", "update", "--from", str(bundle), "--key", str(pub))
    assert res.exit_code == 0, res.output
    assert _active_version() == "2099.1.1.1"
    res = _run("scan", str(evil), "-f", "json")
    doc = json.loads(res.stdout)
    assert doc["rules_version"] == "2099.1.1.1"
    assert any(f["rule_id"] == "KNOWN-MALICIOUS-HASH" for f in doc["files"][0]["findings"])
    listing = _run("rules")
    assert "2099.1.1.1" in listing.output and "installed from" in listing.output


@pytest.mark.parametrize(
    "case", ["tampered", "unsigned", "untrusted-key", "older", "incompatible", "link", "damaged-trailer"]
)
def test_bad_bundles_are_refused_and_the_previous_database_stays(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.rulesdb import bundle as bundle_mod

    priv, pub = _key(tmp_path, "team")
    other_priv, _ = _key(tmp_path, "mallory")
    before = _active_version()
    version = "2000.1.1.1" if case == "older" else "2099.1.1.1"
    bundle = tmp_path / "rules.tar.gz"
    signer = other_priv if case == "untrusted-key" else priv
    if case == "incompatible":  # a validly signed bundle for a rule-database format from the future
        monkeypatch.setattr(bundle_mod, "BUNDLE_SCHEMA", 99)
    assert (
        _run(
            "rules", "pack", str(_rules_tree(tmp_path, version)), "-o", str(bundle), "--key", str(signer)
        ).exit_code
        == 0
    )
    monkeypatch.setattr(bundle_mod, "BUNDLE_SCHEMA", 1)
    if (
        case == "damaged-trailer"
    ):  # the signed content is intact; only the gzip CRC after the tar end is wrong
        raw = bytearray(bundle.read_bytes())
        raw[-8] ^= 0xFF
        bundle.write_bytes(bytes(raw))
    if case in ("tampered", "unsigned", "link"):
        unpacked = tmp_path / "unpacked"
        with tarfile.open(bundle) as tar:
            tar.extractall(unpacked, filter="data")
        if case == "tampered":
            (unpacked / "pickle" / "denylist.yaml").write_text("entries: []\n")
        elif case == "unsigned":
            (unpacked / "bundle.sig").unlink()
        bundle.unlink()
        with tarfile.open(bundle, "w:gz") as tar:
            for p in sorted(unpacked.rglob("*")):
                tar.add(p, arcname=p.relative_to(unpacked).as_posix(), recursive=False)
            if case == "link":
                info = tarfile.TarInfo("rules/evil-link")
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
    res = _run("rules", "update", "--from", str(bundle), "--key", str(pub))
    assert res.exit_code == 2, res.output
    expected = {
        "tampered": "tampered",
        "unsigned": "not signed",
        "untrusted-key": "not trusted",
        "older": "not newer",
        "incompatible": "schema",
        "link": "refused member",
        "damaged-trailer": "not a readable bundle",
    }[case]
    assert expected in res.output and res.output.count("error:") == 1
    assert _active_version() == before


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_update_from_a_url(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    root, base = http_root
    priv, pub = _key(tmp_path, "team")
    _run(
        "rules",
        "pack",
        str(_rules_tree(tmp_path, "2099.2.2.2")),
        "-o",
        str(root / "rules.tar.gz"),
        "--key",
        str(priv),
    )
    res = _run("rules", "update", "--from", f"{base}/rules.tar.gz", "--key", str(pub), "--allow-http")
    assert res.exit_code == 0, res.output
    assert _active_version() == "2099.2.2.2"


def test_known_bad_feed_round_trip_between_two_inventories(
    tmp_path: Path, http_root: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Team A audits and exports what it blocked; team B imports the signed feed; B's scan names A's record."""
    root, base = http_root
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "evil.pkl").write_bytes(EVIL)
    res = _run("audit", str(zoo), "--db", str(tmp_path / "a.sqlite"), "--policy", "default")
    assert res.exit_code == 1, res.output
    feed = root / "feed.json"
    assert (
        _run("audit", "export", "--known-bad", "--db", str(tmp_path / "a.sqlite"), "-o", str(feed)).exit_code
        == 0
    )
    records = json.loads(feed.read_text())
    assert len(records) == 1 and records[0]["id"].startswith("MAL-")
    assert records[0]["database_specific"]["modelward"]["source"] == "redacted"
    _validate_osv(records)
    priv, pub = _key(tmp_path, "team-a")
    signed = tmp_path / "signing" / "feed.json"
    signed.parent.mkdir()
    shutil.copy(feed, signed)
    from scanner.integrity.sign import sign_model

    sign_model(signed, priv, root / "feed.json.sig")
    # Team B: a fresh data home, so the known-bad store starts empty.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "team-b"))
    rules_mod._cached.cache_clear()
    assert _run("rules", "import-known-bad", f"{base}/feed.json", "--allow-http").exit_code == 2  # no trust
    res = _run("rules", "import-known-bad", f"{base}/feed.json", "--key", str(pub), "--allow-http")
    assert res.exit_code == 0, res.output
    rules_mod._cached.cache_clear()
    copy = tmp_path / "elsewhere.bin"
    copy.write_bytes(EVIL)
    scan = json.loads(_run("scan", str(copy), "-f", "json").stdout)
    hits = [f for f in scan["files"][0]["findings"] if f["rule_id"] == "KNOWN-MALICIOUS-HASH"]
    assert hits and records[0]["id"] in hits[0]["message"]


def test_tampered_feed_is_refused(tmp_path: Path) -> None:
    priv, pub = _key(tmp_path, "team")
    feed = tmp_path / "f" / "feed.json"
    feed.parent.mkdir()
    feed.write_text(
        json.dumps(
            [
                {
                    "id": "MAL-X-1",
                    "modified": "2026-01-01T00:00:00Z",
                    "database_specific": {"modelward": {"sha256": "a" * 64}},
                }
            ]
        )
    )
    from scanner.integrity.sign import sign_model

    sign_model(feed, priv, tmp_path / "f" / "feed.json.sig")
    feed.write_text(feed.read_text().replace("a" * 64, "b" * 64))
    res = _run("rules", "import-known-bad", str(feed), "--key", str(pub))
    assert res.exit_code == 2 and "tampered" in res.output


def test_scan_export_known_bad(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    out = tmp_path / "kb.json"
    res = _run("scan", str(evil), "--export-known-bad", str(out))
    assert res.exit_code == 1
    records = json.loads(out.read_text())
    assert records[0]["database_specific"]["modelward"]["rule_ids"]
    _validate_osv(records)


def _validate_osv(records: list[dict]) -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent / "osv-schema" / "schema.json").read_text())
    for rec in records:
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(rec)
