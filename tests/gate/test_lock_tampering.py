"""Red-team round on the gate: a hand-edited or hostile modelward.lock is refused or is drift, never a pass,
and nothing the lock records publishes a credential."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

import scanner.gate.check as check_mod
from scanner.gate.config import ConfigError
from scanner.gate.lockfile import content_root, locked_source, read_lock
from scanner.integrity.sign import sign_model
from tests.integrity.conftest import make_pki, write_key  # noqa: F401 - make_pki is a fixture

ZERO = "0" * 64


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    m = proj / "models" / "clf"
    m.mkdir(parents=True)
    (m / "config.json").write_text('{"labels": 2}')
    (m / "vocab.txt").write_text("a\nb\n")
    (proj / "modelward.toml").write_text('policy = "default"\n[models]\nclf = "models/clf"\n')
    return proj


def _locked(cli, proj: Path) -> str:
    res = cli("lock", "--project", str(proj))
    assert res.exit_code == 0, res.output
    return (proj / "modelward.lock").read_text()


def _entry(path: str, size: int | str = 4, sha: str = ZERO) -> str:
    return f'\n[[models.clf.files]]\npath = "{path}"\nsize = {size}\nsha256 = "{sha}"\n'


def _expect_refused(cli, proj: Path, text: str, needle: str) -> None:
    (proj / "modelward.lock").write_text(text)
    res = cli("check", "--project", str(proj))
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("error:")]) == 1


def test_a_file_pinned_twice_is_refused_not_last_one_wins(cli, project: Path) -> None:
    """The reviewer reads one digest, a parser that keeps the last entry checks another."""
    text = _locked(cli, project)
    first = text.index("[[models.clf.files]]")
    decoy = _entry("vocab.txt").lstrip("\n") + "\n"
    _expect_refused(cli, project, text[:first] + decoy + text[first:], "'vocab.txt' is pinned twice")


@pytest.mark.parametrize(
    "path",
    ["../../../etc/passwd", "/etc/passwd", "sub/../../x", "a\x00b"],
    ids=["dotdot", "abs", "inner", "nul"],
)
def test_a_locked_path_outside_the_model_is_refused(cli, project: Path, path: str) -> None:
    text = _locked(cli, project)
    escaped = json.dumps(path)[1:-1]
    _expect_refused(cli, project, text + _entry(escaped), "is not a relative path inside the model")


@pytest.mark.parametrize("size", ["true", "-4", '"4"'])
def test_a_size_that_is_not_a_byte_count_is_refused(cli, project: Path, size: str) -> None:
    text = _locked(cli, project)
    text = re.sub(r"size = 4\n", f"size = {size}\n", text, count=1)
    _expect_refused(cli, project, text, "models.clf.files[1]")


def test_a_local_pin_that_does_not_match_its_files_is_refused(cli, project: Path) -> None:
    """Editing a file's digest but not `resolved` hides the change from a reviewer who reads the pin."""
    text = _locked(cli, project)
    real = read_lock(project / "modelward.lock").models["clf"].files[1].sha256
    _expect_refused(cli, project, text.replace(real, "f" * 64), "is not the digest of its files")
    _expect_refused(cli, project, re.sub(r'resolved = ".*"', 'resolved = "main"', text), "not an immutable")


@pytest.mark.parametrize(
    ("kind", "resolved", "ok"),
    [
        ("hf", "main", False),
        ("hf", "v1.0", False),
        ("hf", "A" * 40, False),
        ("hf", "a" * 40, True),
        ("oci", "registry.example/repo:latest", False),
        ("oci", "registry.example/repo@sha256:" + "a" * 63, False),
        ("oci", "registry.example/repo@sha256:" + "a" * 64, True),
        ("oci", "oci://registry.example/repo@sha256:" + "a" * 64, True),
        ("gopher", "x", False),
    ],
)
def test_a_pin_must_be_immutable_for_its_kind(tmp_path: Path, kind: str, resolved: str, ok: bool) -> None:
    lock = tmp_path / "modelward.lock"
    lock.write_text(
        textwrap.dedent(f"""
        version = 1
        [models.m]
        source = "x"
        kind = "{kind}"
        resolved = "{resolved}"
    """)
    )
    if ok:
        assert read_lock(lock).models["m"].resolved == resolved
    else:
        with pytest.raises(ConfigError, match="models.m"):
            read_lock(lock)


def test_a_lock_whose_kind_disagrees_with_the_declaration_is_drift(cli, project: Path) -> None:
    """kind = "url" for a local declaration: check must not judge the model by another kind's rules."""
    text = _locked(cli, project)
    (project / "modelward.lock").write_text(text.replace('kind = "local"', 'kind = "url"'))
    res = cli("check", "--project", str(project))
    assert res.exit_code == 1
    assert "LOCK-SOURCE-CHANGED" in res.stdout


def test_a_local_file_nobody_could_hash_is_drift_not_a_pass(
    cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a digest the pin cannot be checked; before, only the size was compared."""
    _locked(cli, project)
    (project / "models" / "clf" / "vocab.txt").write_text("a\nc\n")  # same size, other bytes
    real = check_mod.Pipeline.scan

    def unhashed(self: Any, *args: Any, **kwargs: Any) -> Any:
        report = real(self, *args, **kwargs)
        for fr in report.files:
            fr.sha256 = None
        return report

    monkeypatch.setattr(check_mod.Pipeline, "scan", unhashed)
    res = cli("check", "--project", str(project), "--no-cache", "--policy", "audit")
    assert res.exit_code == 1, res.output
    assert "LOCK-DIGEST-CHANGED" in res.stdout and "could not be hashed" in res.stdout


def test_a_signature_that_covers_nothing_records_no_signer(cli, project: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    kp = write_key(tmp_path, "team", ec.generate_private_key(ec.SECP256R1()))
    model = project / "models" / "clf"
    sign_model(model, kp.private, model / "model.sig", ignore_paths=["config.json", "vocab.txt"])
    (project / "trust.yaml").write_text(
        f"version: 1\nextends: default\nsignatures:\n  trust:\n    - sources: ['file://*']\n"
        f"      keys: ['{kp.public}']\n"
    )
    (project / "modelward.toml").write_text('policy = "trust.yaml"\n[models]\nclf = "models/clf"\n')
    _locked(cli, project)
    assert read_lock(project / "modelward.lock").models["clf"].signer is None


@pytest.mark.parametrize(
    ("source", "secret"),
    [
        ("https://h.example/m.bin#access_token=frag-secret-1", "frag-secret-1"),
        ("https://h.example/m.bin#a=1&token=frag-secret-2&b", "frag-secret-2"),
        ("https://h.example/hf_abcdefghijklmnopqrstuvwxyz0123/m.bin", "hf_abcdefghijklmnopqrstuvwxyz0123"),
        ("https://user:pw-secret@h.example/m.bin?sig=q-secret", "secret"),
    ],
)
def test_locked_sources_publish_no_credentials(source: str, secret: str) -> None:
    shown = locked_source(source)
    assert secret not in shown and "***" in shown
    assert locked_source(source) == shown  # deterministic: check compares it to the lock


def test_content_root_is_what_lock_writes(cli, project: Path) -> None:
    _locked(cli, project)
    lock = read_lock(project / "modelward.lock")
    assert lock.models["clf"].resolved == content_root(lock.models["clf"].files)


def test_check_from_a_subdirectory_finds_the_project(
    cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _locked(cli, project)
    (project / "models" / "clf" / "added.py").write_text("import os\n")
    monkeypatch.chdir(project / "models")
    res = cli("check", "--format", "sarif")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    uris = [
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
        for loc in r.get("locations", [])
    ]
    assert "clf/added.py" in uris  # relative to the working directory, never escaping it
    assert not any(u.startswith(("/", "..")) or "/../" in u for u in uris)


def test_a_same_named_certificate_from_another_trusted_ca_is_another_signer(
    cli,
    project: Path,
    tmp_path: Path,
    make_pki,  # noqa: F811 - the imported fixture
) -> None:
    """Both CAs are trusted; each can issue 'CN=team signer'. The lock pinned the first one's."""
    first = make_pki(tag="team")
    kept = tmp_path / "first"
    kept.mkdir()
    for f in (first.ca_pem, first.leaf_pem, first.leaf_key.private):
        shutil.copy(f, kept / f.name)
    second = make_pki(tag="team")  # identical subject and CA names, other keys
    model = project / "models" / "clf"
    sign_model(
        model, kept / first.leaf_key.private.name, model / "model.sig", certificate=kept / first.leaf_pem.name
    )
    (project / "trust.yaml").write_text(
        "version: 1\nextends: default\nsignatures:\n  trust:\n    - sources: ['file://*']\n"
        f"      chains: ['{kept / first.ca_pem.name}', '{second.ca_pem}']\n"
    )
    (project / "modelward.toml").write_text('policy = "trust.yaml"\n[models]\nclf = "models/clf"\n')
    _locked(cli, project)
    signer = read_lock(project / "modelward.lock").models["clf"].signer
    assert signer is not None and signer.startswith("CN=team signer")
    assert cli("check", "--project", str(project)).exit_code == 0
    sign_model(model, second.leaf_key.private, model / "model.sig", certificate=second.leaf_pem)
    res = cli("check", "--project", str(project))
    assert res.exit_code == 1
    assert "LOCK-SIGNER-CHANGED" in res.stdout
