"""``pull`` writes only verified bytes, and only inside the destination, whatever the registry or policy says.

Found by probing with the local Hub:

* the HF-cache blob was named after the registry's *claimed* digest (``blobId`` / ``lfs.sha256`` text),
  so a Hub answering ``"blobId": "../../../../x"`` wrote outside the cache whenever the policy did not
  block the digest mismatch (``-p audit``);
* under such a policy the file that failed verification was installed ("installed 1 verified file(s)");
* ``refs/<revision>`` was written with the revision as a path: ``@../../../../x`` escaped the cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scanner.cli import app

from .models import safetensors_bytes
from .servers.hf_hub_server import HubServer

CONFIG = b'{"model_type": "bert"}'


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() or p.is_symlink()] if root.exists() else []


@pytest.mark.parametrize("policy", ["default", "audit"])
def test_claimed_digest_text_never_becomes_a_path(hub: HubServer, hf_env: Path, policy: str):
    commit = hub.add_repo(
        "acme/m", {"config.json": CONFIG, "model.safetensors": safetensors_bytes({"w": 64})}
    )
    # The tree/info API reports this text as the file's blobId (its claimed git blob sha1).
    hub.repos[("model", "acme/m")].commits[commit]["config.json"].sha1 = "../../../../PWNED"
    res = CliRunner().invoke(app, ["pull", "hf://acme/m", "-p", policy])
    assert res.exit_code == 1, res.output + res.stderr
    assert "REGISTRY-DIGEST-MISMATCH" in res.output
    assert "nothing was installed" in res.stderr
    assert [p for p in hf_env.parent.rglob("PWNED*")] == []
    assert _files_under(hf_env / "hub" / "models--acme--m" / "snapshots") == []


def test_audit_policy_never_installs_a_file_that_failed_verification(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/t", {"config.json": CONFIG, "model.safetensors": safetensors_bytes({"w": 4096})})
    hub.faults.tamper.add("model.safetensors")
    dest = tmp_path / "dest"
    res = CliRunner().invoke(app, ["pull", "hf://acme/t", "-p", "audit", "--to", str(dest)])
    assert res.exit_code == 1, res.output + res.stderr
    assert "REGISTRY-DIGEST-MISMATCH" in res.output
    assert "nothing was installed" in res.stderr
    assert not dest.exists()


def test_audit_policy_still_installs_a_verified_repo(hub: HubServer, tmp_path: Path):
    hub.add_repo("acme/ok", {"config.json": CONFIG, "model.safetensors": safetensors_bytes({"w": 64})})
    dest = tmp_path / "dest"
    res = CliRunner().invoke(app, ["pull", "hf://acme/ok", "-p", "audit", "--to", str(dest)])
    assert res.exit_code == 0, res.output + res.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("how", ["at", "flag"])
def test_revision_that_escapes_refs_is_refused(hub: HubServer, hf_env: Path, how: str):
    rev = "../../../../REFPWN"
    hub.add_repo("acme/r", {"config.json": CONFIG}, revision=rev)
    args = ["pull", f"hf://acme/r@{rev}"] if how == "at" else ["pull", "hf://acme/r", "--revision", rev]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output + res.stderr
    assert "cannot be recorded" in res.stderr and "Traceback" not in res.stderr
    assert [p for p in hf_env.parent.rglob("REFPWN*")] == []
    assert _files_under(hf_env / "hub" / "models--acme--r" / "snapshots") == []


def test_nested_revision_name_is_still_recorded(hub: HubServer, hf_env: Path):
    """``refs/pr/1``-style names are legitimate and keep working."""
    commit = hub.add_repo("acme/pr", {"config.json": CONFIG}, revision="refs/pr/1")
    res = CliRunner().invoke(app, ["pull", "hf://acme/pr", "--revision", "refs/pr/1"])
    assert res.exit_code == 0, res.output + res.stderr
    ref = hf_env / "hub" / "models--acme--pr" / "refs" / "refs" / "pr" / "1"
    assert ref.read_text() == commit


@pytest.mark.parametrize("obstacle", ["folder-at-file", "file-at-folder"])
def test_existing_destination_that_cannot_take_every_file_gets_none(
    hub: HubServer, tmp_path: Path, obstacle: str
):
    """Installing into an existing folder used to move files one by one: a folder where ``b.json`` goes
    (or a file named like a folder a path needs) failed half-way, after ``a.json`` had been replaced,
    while the error said "nothing was installed"."""
    hub.add_repo("acme/two", {"a.json": b'{"a": 1}', "b.json": b'{"b": 2}', "sub/c.json": b'{"c": 3}'})
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.json").write_text("OLD")
    if obstacle == "folder-at-file":
        (dest / "b.json").mkdir()
    else:
        (dest / "sub").write_text("a file")
    res = CliRunner().invoke(app, ["pull", "hf://acme/two", "--to", str(dest)])
    assert res.exit_code == 2, res.output + res.stderr
    assert "nothing was installed" in res.stderr and "Traceback" not in res.stderr
    assert (dest / "a.json").read_text() == "OLD"
    assert sorted(p.name for p in dest.iterdir()) == [
        "a.json",
        "b.json" if obstacle == "folder-at-file" else "sub",
    ]
