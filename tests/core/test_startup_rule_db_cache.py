"""The compiled rule database (issue #13): one MACed JSON file instead of validating ~75 YAML files at every start.

A hit must give exactly the database the YAML gives; an edited rule file, another scanner version or a
tampered compiled file must never be served.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import shutil
from pathlib import Path
from typing import Any

import pytest

import scanner
from scanner import rules as rules_mod
from scanner.resources import signatures_dir
from scanner.rules import RuleDB, load_rule_db


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELWARD_CACHE_KEY", f"rule-db-test-{tmp_path.name}")
    return tmp_path / "cache" / "modelward" / "yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dst = tmp_path / "signatures"
    shutil.copytree(signatures_dir(), dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def _compiled(cache: Path) -> list[Path]:
    return sorted(cache.glob("ruledb-*.json"))


def _norm(db: RuleDB) -> Any:
    def rows(d: dict[Any, Any]) -> list[Any]:
        return [(k, dataclasses.astuple(v)) for k, v in d.items()]

    return (
        db.version,
        db.root,
        rows(db.rules),
        rows(db.profiles),
        rows(db.hydra_profiles),
        rows(db.denylist.modules),
        rows(db.denylist.names),
        db.denylist.aliases,
        rows(db.known_bad),
        repr(db.template_data),  # repr: integer keys must come back as integers
    )


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("the YAML was validated again")

    monkeypatch.setattr(rules_mod, "_check", refuse)
    monkeypatch.setattr(rules_mod, "_parse_rule_yaml", refuse)


def test_a_second_load_is_served_from_the_compiled_file_and_is_the_same_database(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_rule_db(root)
    assert len(_compiled(cache)) == 1
    _no_validation(monkeypatch)
    second = load_rule_db(root)
    assert _norm(second) == _norm(first)
    assert second.rule("PICKLE-DANGEROUS-GLOBAL").severity == first.rule("PICKLE-DANGEROUS-GLOBAL").severity


def test_an_edited_rule_file_is_a_miss(cache: Path, root: Path) -> None:
    load_rule_db(root)
    pickle_rules = root / "rules" / "pickle.yaml"
    text = pickle_rules.read_text()
    assert "title:" in text
    pickle_rules.write_text(text.replace("title:", "title: EDITED", 1))
    db = load_rule_db(root)
    assert any(r.title.startswith("EDITED") for r in db.rules.values())
    assert len(_compiled(cache)) == 2


def test_another_scanner_version_is_a_miss(cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_rule_db(root)
    monkeypatch.setattr(scanner, "__version__", "99.0.0")
    load_rule_db(root)
    assert len(_compiled(cache)) == 2


def _tamper(path: Path, edit: Any, key: bytes | None = None) -> None:
    mac, _, body = path.read_bytes().partition(b"\n")
    new = edit(body)
    assert new != body
    if key is not None:  # a MAC made with a key that is not the user's
        address = path.name[len("ruledb-") : -len(".json")]
        mac = hmac.new(
            key, rules_mod._MAC_CONTEXT + address.encode() + b"\0" + new, hashlib.sha256
        ).hexdigest()
        mac = mac.encode()
    path.write_bytes(mac + b"\n" + new)


@pytest.mark.parametrize("key", [None, b"attacker-key"])
def test_a_tampered_compiled_file_is_ignored_and_rewritten(
    cache: Path, root: Path, key: bytes | None
) -> None:
    truth = _norm(load_rule_db(root))
    (entry,) = _compiled(cache)
    _tamper(
        entry, lambda b: b.replace(b'"critical"', b'"info"'), key
    )  # every critical rule made informational
    db = load_rule_db(root)
    assert _norm(db) == truth
    assert b'"critical"' in entry.read_bytes().partition(b"\n")[2]  # rebuilt from the YAML


def test_a_compiled_file_for_other_bytes_is_not_served(cache: Path, root: Path) -> None:
    """A verified entry copied to another address (another rule set's) must not be read for it."""
    load_rule_db(root)
    (entry,) = _compiled(cache)
    (root / "rules" / "pickle.yaml").write_text((root / "rules" / "pickle.yaml").read_text() + "\n# edited\n")
    files = rules_mod._database_files(root)
    address = rules_mod._database_address(
        (root / "VERSION").read_text().strip(), root, files, rules_mod._read_all(files)
    )
    shutil.copy(entry, cache / f"ruledb-{address}.json")
    assert rules_mod._load_compiled(address) is None


def test_no_cache_key_still_loads(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELWARD_CACHE_KEY", raising=False)
    key_file = tmp_path / "cache.key"
    key_file.write_text("k" * 64 + "\n")
    key_file.chmod(0o644)  # readable by others: refused, so there is no trustworthy key
    monkeypatch.setenv("MODELWARD_CACHE_KEY_FILE", str(key_file))
    db = load_rule_db(root)
    assert db.rules and not list((tmp_path / "cache").rglob("ruledb-*.json"))


# -- the per-folder bundle behind load_rule_file (the pickle analyzer's gadget and audit files) --


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_mod, "_bundles", {})


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(rules_mod, "parse_cached", refuse)


def _audit_files(root: Path) -> list[Path]:
    files = sorted((root / "pickle" / "audit").glob("*.yaml"))
    assert len(files) > 2
    return files


def test_folder_files_are_served_from_one_bundle(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh_process(monkeypatch)
    files = _audit_files(root)
    first = [rules_mod.load_rule_file(p) for p in files]
    assert len(list(cache.glob("rulefiles-*.json"))) == 1
    _fresh_process(monkeypatch)
    with monkeypatch.context() as m:
        _no_parse(m)
        second = [rules_mod.load_rule_file(p) for p in files]
    assert second == first
    third = rules_mod.load_rule_file(files[0])  # asked again in the same process: a copy of its own
    assert third == first[0] and third is not second[0]


def test_a_bundle_entry_is_served_only_for_the_same_bytes(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh_process(monkeypatch)
    files = _audit_files(root)
    for p in files:
        rules_mod.load_rule_file(p)
    files[0].write_text("groups: []\n")
    _fresh_process(monkeypatch)
    assert rules_mod.load_rule_file(files[0]) == {"groups": []}


@pytest.mark.parametrize("key", [None, b"attacker-key"])
def test_a_tampered_bundle_is_ignored(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch, key: bytes | None
) -> None:
    _fresh_process(monkeypatch)
    files = _audit_files(root)
    truth = [rules_mod.load_rule_file(p) for p in files]
    (bundle,) = cache.glob("rulefiles-*.json")
    mac, _, body = bundle.read_bytes().partition(b"\n")
    new = body.replace(b'"data-only"', b'"none"')
    assert new != body
    if key is not None:
        address = bundle.name[len("rulefiles-") : -len(".json")]
        mac = hmac.new(
            key, rules_mod._BUNDLE_MAC + address.encode() + b"\0" + new, hashlib.sha256
        ).hexdigest()
        mac = mac.encode()
    bundle.write_bytes(mac + b"\n" + new)
    _fresh_process(monkeypatch)
    assert [rules_mod.load_rule_file(p) for p in files] == truth
