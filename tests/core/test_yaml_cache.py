"""The parsed-YAML cache (rule database, policies): a hit skips YAML, and whoever writes the cache folder changes nothing."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner import yaml_cache as compiled
from scanner.resources import signatures_dir
from scanner.rules import load_rule_db
from tests.harness import REPO

YAML = b"callables:\n  os:system: {why: test}\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_KEY", f"test-key-{tmp_path.name}")
    return tmp_path / "compiled"


def _counting(data: Any) -> tuple[list[bytes], Any]:
    calls: list[bytes] = []

    def parse(raw: bytes) -> Any:
        calls.append(raw)
        return data

    return calls, parse


def _entry(folder: Path, raw: bytes) -> Path:
    return folder / f"{hashlib.sha256(raw).hexdigest()}.json"


def test_second_parse_of_the_same_bytes_is_served_from_the_cache(folder: Path) -> None:
    calls, parse = _counting({"a": [1, "x", None, 2.5, True]})
    first = compiled.parse_cached(YAML, parse, folder)
    second = compiled.parse_cached(YAML, parse, folder)
    assert first == second == {"a": [1, "x", None, 2.5, True]}
    assert len(calls) == 1
    assert _entry(folder, YAML).is_file()


def test_other_bytes_are_a_miss(folder: Path) -> None:
    calls, parse = _counting({"k": 1})
    compiled.parse_cached(YAML, parse, folder)
    compiled.parse_cached(YAML + b"# edited\n", parse, folder)
    assert len(calls) == 2


def test_a_forged_body_is_ignored_and_rewritten(folder: Path) -> None:
    _, parse = _counting({"allow": ["numpy:dtype"]})
    compiled.parse_cached(YAML, parse, folder)
    path = _entry(folder, YAML)
    entry = json.loads(path.read_text())
    entry["data"] = json.dumps({"allow": ["os:system"]})  # the attacker cannot recompute the MAC
    path.write_text(json.dumps(entry))
    calls, parse = _counting({"allow": ["numpy:dtype"]})
    assert compiled.parse_cached(YAML, parse, folder) == {"allow": ["numpy:dtype"]}
    assert len(calls) == 1
    assert json.loads(json.loads(path.read_text())["data"]) == {"allow": ["numpy:dtype"]}


def test_a_valid_entry_copied_to_another_address_is_ignored(folder: Path) -> None:
    other = YAML + b"# another file\n"
    compiled.parse_cached(other, _counting({"allow": ["os:system"]})[1], folder)
    shutil.copy(_entry(folder, other), _entry(folder, YAML))
    calls, parse = _counting({"allow": []})
    assert compiled.parse_cached(YAML, parse, folder) == {"allow": []}
    assert len(calls) == 1


def test_data_json_cannot_carry_exactly_is_not_stored(folder: Path) -> None:
    for data in (
        {1: "a", "b": 2},
        {"when": datetime.date(2026, 12, 2)},
        {"x": float("nan")},
        {"\x00int-keys": 1},
    ):
        calls, parse = _counting(data)
        raw = repr(data).encode()
        compiled.parse_cached(raw, parse, folder)
        compiled.parse_cached(raw, parse, folder)
        assert len(calls) == 2
        assert not _entry(folder, raw).exists()


def test_without_a_trustworthy_key_nothing_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELWARD_CACHE_KEY", raising=False)
    folder = tmp_path / "cache"
    monkeypatch.setenv("MODELWARD_CACHE_KEY_FILE", str(folder / "cache.key"))  # inside the folder: refused
    calls, parse = _counting({"k": 1})
    compiled.parse_cached(YAML, parse, folder)
    compiled.parse_cached(YAML, parse, folder)
    assert len(calls) == 2
    assert not any(folder.glob("*.json"))


def test_a_loaded_database_equals_the_yaml_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key-equal")
    root = tmp_path / "signatures"
    shutil.copytree(signatures_dir(), root)
    cold, warm = load_rule_db(root), load_rule_db(root)
    assert any((tmp_path / "cache" / "modelward" / "yaml").glob("*.json"))
    assert warm.rules == cold.rules and warm.profiles == cold.profiles
    assert warm.denylist.names == cold.denylist.names and warm.template_data == cold.template_data
    # an edit to the YAML is seen at once, never masked by the compiled copy
    deny = root / "pickle" / "denylist.yaml"
    deny.write_text(
        deny.read_text().replace("entries:", "entries:\n  - {match: 'zzz:yyy', category: exec}", 1)
    )
    assert ("zzz", "yyy") in load_rule_db(root).denylist.names


def test_a_warm_start_does_not_import_yaml(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "MODELWARD_CACHE_KEY": "test-key-warm"}
    code = "import sys; from scanner.rules import load_rule_db; load_rule_db(); print('yaml' in sys.modules)"
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        for _ in range(2)
    ]
    assert [r.stdout.strip() for r in runs] == ["True", "False"], [r.stderr[-2000:] for r in runs]


def test_an_unusable_cache_folder_only_costs_a_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "test-key-unusable")
    planted = tmp_path / "not-a-folder"
    planted.write_text("a file where the cache folder should be")
    calls, parse = _counting({"k": 1})
    assert compiled.parse_cached(YAML, parse, planted / "yaml") == {"k": 1}
    assert compiled.parse_cached(YAML, parse, planted / "yaml") == {"k": 1}
    assert len(calls) == 2


def test_integer_keyed_mappings_come_back_with_integer_keys(folder: Path) -> None:
    data = {"callables": {"m:f": {"args": {0: {"one_of": ["literal"]}, 4: {"invoked": True}}}}}
    calls, parse = _counting(data)
    compiled.parse_cached(YAML, parse, folder)
    again = compiled.parse_cached(YAML, parse, folder)
    assert len(calls) == 1
    assert again == data and list(again["callables"]["m:f"]["args"]) == [0, 4]
