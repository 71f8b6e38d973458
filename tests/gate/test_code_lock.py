"""Code a loader runs is pinned by digest in the lock; a changed code file is its own, specific drift."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from scanner.gate.lockfile import read_lock

MODELING = "import torch\n\nclass M(torch.nn.Module):\n    pass\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    m = proj / "models" / "custom"
    m.mkdir(parents=True)
    (m / "config.json").write_text(json.dumps({"model_type": "m", "auto_map": {"AutoModel": "modeling_m.M"}}))
    (m / "modeling_m.py").write_text(MODELING)
    sha = hashlib.sha256(MODELING.encode()).hexdigest()
    (proj / "trust.yaml").write_text(
        textwrap.dedent(f"""
        version: 1
        extends: default
        trusted_code:
          - sha256: {sha}
            reason: reviewed custom modeling code
    """)
    )
    (proj / "modelward.toml").write_text('policy = "trust.yaml"\n[models]\ncustom = "models/custom"\n')
    return proj


def test_code_files_are_marked_in_the_lock_and_trusted_code_passes(cli, project):
    assert cli("lock", "--project", str(project)).exit_code == 0
    files = {f.path: f for f in read_lock(project / "modelward.lock").models["custom"].files}
    assert files["modeling_m.py"].code and not files["config.json"].code
    assert "code = true" in (project / "modelward.lock").read_text()
    res = cli("check", "--project", str(project))
    assert res.exit_code == 0, res.stdout


def test_untrusted_code_blocks_in_check(cli, project):
    (project / "modelward.toml").write_text('policy = "default"\n[models]\ncustom = "models/custom"\n')
    cli("lock", "--project", str(project))
    res = cli("check", "--project", str(project), "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert any(x["rule_id"] == "CODE-EXECUTED-BY-LOADER" for f in doc["files"] for x in f["findings"])


def test_changed_code_file_is_lock_code_changed(cli, project):
    cli("lock", "--project", str(project))
    (project / "models" / "custom" / "modeling_m.py").write_text(MODELING + "import os\nos.system('id')\n")
    res = cli("check", "--project", str(project), "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    found = {(f["path"], x["rule_id"]) for f in doc["files"] for x in f["findings"]}
    assert ("custom/modeling_m.py", "LOCK-CODE-CHANGED") in found
    assert ("custom/modeling_m.py", "LOCK-DIGEST-CHANGED") not in found
    # and the trust by digest no longer applies to the new bytes
    assert any(
        r["rule_id"] == "CODE-EXECUTED-BY-LOADER" and r["decision"] == "block"
        for r in doc["verdict"]["reasons"]
    )


def test_changed_data_file_is_still_digest_changed(cli, project):
    cli("lock", "--project", str(project))
    (project / "models" / "custom" / "config.json").write_text(
        json.dumps({"model_type": "m2", "auto_map": {"AutoModel": "modeling_m.M"}})
    )
    doc = json.loads(cli("check", "--project", str(project), "--format", "json").stdout)
    rules = {x["rule_id"] for f in doc["files"] for x in f["findings"] if f["path"] == "custom/config.json"}
    assert "LOCK-DIGEST-CHANGED" in rules and "LOCK-CODE-CHANGED" not in rules


def test_lock_code_flag_must_be_boolean(cli, project):
    cli("lock", "--project", str(project))
    lock = project / "modelward.lock"
    lock.write_text(lock.read_text().replace("code = true", 'code = "yes"'))
    res = cli("check", "--project", str(project))
    assert res.exit_code == 2 and "code" in res.stderr
