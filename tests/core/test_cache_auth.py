"""The result cache cannot be forged by whoever can write the cache folder.

Entries are HMAC-SHA256 authenticated with a key kept outside the cache folder
(``MODELWARD_CACHE_KEY`` or a 0600 key file in the config folder); a bad MAC is a miss.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from scanner.cache import ResultCache, load_key

MALICIOUS = b"cos\nsystem\n(S'touch /tmp/x'\ntR."
BENIGN = b"S'" + b"a" * (len(MALICIOUS) - 5) + b"'\n."


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("MODELWARD_CACHE_KEY", raising=False)
    monkeypatch.delenv("MODELWARD_CACHE_KEY_FILE", raising=False)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(MALICIOUS)
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "model.pkl").write_bytes(BENIGN)
    return tmp_path


def _scan(cli, target: Path) -> tuple[int, dict]:  # noqa: ANN001
    res = cli("scan", "--cache", "--format", "json", str(target))
    return res.exit_code, json.loads(res.stdout)


def _entries(root: Path) -> list[Path]:
    return sorted((root / "cache").rglob("*.json"))


def _forge_allow(entry: Path) -> None:
    """Turn the cached BLOCK into ALLOW, keeping the old MAC (an attacker has no key)."""
    doc = json.loads(entry.read_text())
    result = json.loads(doc["result"])
    result["findings"] = []
    doc["result"] = json.dumps(result)
    entry.write_text(json.dumps(doc))


def test_edited_entry_is_a_miss_and_rescan_blocks(cli, env: Path) -> None:  # noqa: ANN001
    code, doc = _scan(cli, env / "m")
    assert code == 1 and not doc["files"][0]["cached"]
    [entry] = _entries(env)
    _forge_allow(entry)
    code, doc = _scan(cli, env / "m")
    assert code == 1, "a forged cache entry turned BLOCK into ALLOW"
    assert not doc["files"][0]["cached"]
    code, doc = _scan(cli, env / "m")  # the fresh result was written back, authenticated
    assert code == 1 and doc["files"][0]["cached"]


def test_old_unauthenticated_layout_is_a_miss(cli, env: Path) -> None:  # noqa: ANN001
    _scan(cli, env / "m")
    [entry] = _entries(env)
    result = json.loads(json.loads(entry.read_text())["result"])
    result["findings"] = []
    entry.write_text(json.dumps(result))  # the pre-MAC format: a bare FileResult
    code, doc = _scan(cli, env / "m")
    assert code == 1 and not doc["files"][0]["cached"]


def test_valid_allow_entry_copied_onto_a_blocked_digest_is_a_miss(cli, env: Path) -> None:  # noqa: ANN001
    """The MAC covers the slot (digest, rules, settings): a genuine ALLOW does not transplant."""
    _scan(cli, env / "m")
    [bad] = _entries(env)
    code, _ = _scan(cli, env / "ok")
    assert code == 0
    [good] = [e for e in _entries(env) if e != bad]
    bad.write_bytes(good.read_bytes())
    code, doc = _scan(cli, env / "m")
    assert code == 1 and not doc["files"][0]["cached"]


def test_entry_forged_with_another_key_is_a_miss(cli, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "attacker-key")
    _scan(cli, env / "ok")
    [good] = _entries(env)
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "the-real-ci-secret")
    code, doc = _scan(cli, env / "ok")
    assert code == 0 and not doc["files"][0]["cached"]
    assert good.exists()


def test_key_file_created_private_outside_the_cache(env: Path) -> None:
    cache = ResultCache()
    key = load_key(cache.root)
    path = env / "config" / "modelward" / "cache.key"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(cache.root) == key, "the key must be stable across runs"
    assert not (env / "cache").exists() or not any((env / "cache").rglob("*key*"))


def test_env_key_needs_no_key_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "ci-secret")
    first = load_key(Path(os.environ["MODELWARD_CACHE_DIR"]))
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "another-secret")
    assert load_key(Path(os.environ["MODELWARD_CACHE_DIR"])) != first
    assert not (env / "config").exists()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_readable_key_file_or_key_inside_cache_disables_the_cache(
    cli,
    env: Path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_key(env / "cache")
    path = env / "config" / "modelward" / "cache.key"
    path.chmod(0o644)  # others can read it, so others can forge
    code, _ = _scan(cli, env / "ok")
    assert code == 0 and not _entries(env)
    monkeypatch.setenv("MODELWARD_CACHE_KEY_FILE", str(env / "cache" / "k"))
    cache = ResultCache()
    assert cache.get("00" * 32) is None and cache.disabled and "inside the cache" in cache.disabled


def test_a_result_cached_by_other_scanner_code_is_not_reused(tmp_path: Path) -> None:
    """Same version string, same rules, same bytes: an edited analysis module changes the key."""
    from scanner import cache as cache_mod

    pkg = tmp_path / "scanner"
    (pkg / "formats").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    walker = pkg / "formats" / "walker.py"
    walker.write_text("ALLOW = False\n")
    first = cache_mod.code_fingerprint.__wrapped__(pkg)
    assert first == cache_mod.code_fingerprint.__wrapped__(pkg)
    walker.write_text("ALLOW = True\n")  # same size, new mtime
    os.utime(walker, ns=(1, 1))
    assert cache_mod.code_fingerprint.__wrapped__(pkg) != first


def test_the_cache_key_names_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner import cache as cache_mod

    c = ResultCache(tmp_path / "c")
    monkeypatch.setattr(cache_mod, "code_fingerprint", lambda: "old-code")
    old = c.key("ab" * 32, "2026.12.03.2", "s")
    monkeypatch.setattr(cache_mod, "code_fingerprint", lambda: "new-code")
    assert c.key("ab" * 32, "2026.12.03.2", "s") != old
