"""The pickle analyzer's built tables kept between runs (issue #13, seventh pass): ``gadgets.yaml``'s argument rules
and the audit's use constraints, one MACed JSON file each (``scanner/formats/pickle/table_cache.py``).

A hit must give exactly the table the YAML gives; an edited input file, an edited builder, another scanner
version or a tampered kept file must never be served, and a scan judges the same with or without it.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import pickle
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import scanner
from scanner.formats.pickle import constraints as constraints_mod
from scanner.formats.pickle import gadgets as gadgets_mod
from scanner.formats.pickle import table_cache
from scanner.resources import signatures_dir
from tests.harness import inspect_bytes, rule_ids


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELWARD_CACHE_KEY", f"pickle-table-test-{tmp_path.name}")
    _fresh_process()
    yield tmp_path / "cache" / "modelward" / "yaml"
    _fresh_process()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dst = tmp_path / "signatures"
    shutil.copytree(signatures_dir(), dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def _fresh_process() -> None:
    gadgets_mod.load_gadgets.cache_clear()
    constraints_mod.load_constraints.cache_clear()
    table_cache._source_digest.cache_clear()


def _typed(v: Any) -> Any:
    """``v`` with the type of every part beside it (``==`` alone takes 1 for True and a list for nothing)."""
    if dataclasses.is_dataclass(v):
        return (type(v).__name__, [_typed(getattr(v, f.name)) for f in dataclasses.fields(v)])
    if isinstance(v, frozenset):
        return ("frozenset", sorted(_typed(x) for x in v))
    if isinstance(v, tuple):
        return ("tuple", [_typed(x) for x in v])
    return (type(v).__name__, v)


def _kept(cache: Path, kind: str) -> list[Path]:
    return sorted(cache.glob(f"pickletable-{kind}-*.json"))


def _load_both(root: Path) -> tuple[Any, Any]:
    _fresh_process()
    return gadgets_mod.load_gadgets(root), constraints_mod.load_constraints(root)


def _no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("the table was built from the YAML again")

    monkeypatch.setattr(gadgets_mod, "_build", refuse)
    monkeypatch.setattr(constraints_mod, "_build", refuse)


def test_a_second_load_is_served_from_the_kept_file_and_is_the_same_table(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gadgets, constraints = _load_both(root)
    assert len(gadgets) > 100 and len(constraints) > 100
    assert len(_kept(cache, "gadgets")) == 1 and len(_kept(cache, "constraints")) == 1
    with monkeypatch.context() as m:
        _no_build(m)
        g2, c2 = _load_both(root)
    assert g2 == gadgets and c2 == constraints
    assert list(g2) == list(gadgets) and list(c2) == list(constraints)  # the same order too
    # the same types all the way down (frozensets stay frozensets, positions stay ints, tuples stay tuples)
    assert [_typed(g) for g in g2.values()] == [_typed(g) for g in gadgets.values()]
    assert all(type(v) is tuple for v in c2.values())


@pytest.mark.parametrize(
    ("kind", "rel"),
    [("gadgets", "pickle/gadgets.yaml"), ("constraints", "pickle/audit/joblib.yaml")],
)
def test_an_edited_input_file_is_a_miss(cache: Path, root: Path, kind: str, rel: str) -> None:
    _load_both(root)
    f = root / rel
    text = f.read_text()
    edited = re.sub(r"why: (['\"]?)", r"why: \1EDITED ", text)  # every why of the file
    assert edited != text
    f.write_text(edited)
    gadgets, constraints = _load_both(root)
    whys = [g.why for g in gadgets.values()] if kind == "gadgets" else [w for _, w in constraints.values()]
    assert any(w.startswith("EDITED") for w in whys)
    assert len(_kept(cache, kind)) == 2


def test_an_added_audit_file_is_a_miss(cache: Path, root: Path) -> None:
    _, before = _load_both(root)
    assert "zzz.extra:Thing" not in before
    (root / "pickle" / "audit" / "zzz-extra.yaml").write_text(
        "groups:\n- constraint: data-only\n  why: test\n  globals: ['zzz.extra:Thing']\n"
    )
    _, after = _load_both(root)
    assert after["zzz.extra:Thing"] == ("data-only", "test")


def test_another_scanner_version_is_a_miss(cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _load_both(root)
    monkeypatch.setattr(scanner, "__version__", "99.0.0")
    _load_both(root)
    assert len(_kept(cache, "gadgets")) == 2 and len(_kept(cache, "constraints")) == 2


def test_an_edited_builder_is_a_miss(
    cache: Path, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_both(root)
    edited = tmp_path / "gadgets.py"
    edited.write_text(Path(gadgets_mod.__file__).read_text() + "\n# edited\n")
    monkeypatch.setattr(gadgets_mod, "__file__", str(edited))
    _load_both(root)
    assert len(_kept(cache, "gadgets")) == 2


def _tamper(path: Path, edit: Any, key: bytes | None) -> None:
    mac, _, body = path.read_bytes().partition(b"\n")
    new = edit(body)
    assert new != body
    if key is not None:  # a MAC made with a key that is not the user's
        address = path.name.rsplit("-", 1)[1][: -len(".json")]
        mac = hmac.new(
            key, table_cache._MAC_CONTEXT + address.encode() + b"\0" + new, hashlib.sha256
        ).hexdigest()
        mac = mac.encode()
    path.write_bytes(mac + b"\n" + new)


@pytest.mark.parametrize("key", [None, b"attacker-key"])
def test_a_tampered_kept_file_is_ignored_and_rewritten(cache: Path, root: Path, key: bytes | None) -> None:
    truth = _load_both(root)
    (g,) = _kept(cache, "gadgets")
    (c,) = _kept(cache, "constraints")
    _tamper(g, lambda b: b.replace(b'"always"', b"null"), key)  # every argument rule no longer "invoked"
    _tamper(c, lambda b: b.replace(b'"newobj-only"', b'"none"'), key)  # constraints dropped
    assert _load_both(root) == truth
    assert b'"always"' in g.read_bytes() and b'"newobj-only"' in c.read_bytes()  # rebuilt from the YAML


def test_a_kept_file_for_other_bytes_is_not_served(cache: Path, root: Path) -> None:
    """A verified file copied to another address (another rule set's) must not be read for it."""
    _load_both(root)
    (g,) = _kept(cache, "gadgets")
    f = root / "pickle" / "gadgets.yaml"
    f.write_text(f.read_text() + "\n# edited\n")
    address = table_cache._address("gadgets", (gadgets_mod.__file__,), [f], [f.read_bytes()])
    other = table_cache._path(cache, "gadgets", address)
    shutil.copy(g, other)
    key = hashlib.sha256(b"modelward-cache-key\0" + f"pickle-table-test-{root.parent.name}".encode()).digest()
    assert table_cache._load(other, key, address, gadgets_mod._decode) is None


def test_a_file_changed_while_building_is_not_kept(
    cache: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = root / "pickle" / "gadgets.yaml"
    build = gadgets_mod._build

    def racing(path: Path) -> Any:
        out = build(path)
        f.write_text(f.read_text() + "\n# changed after the address was taken\n")
        return out

    monkeypatch.setattr(gadgets_mod, "_build", racing)
    _fresh_process()
    gadgets_mod.load_gadgets(root)
    assert _kept(cache, "gadgets") == []


def test_no_cache_key_still_loads(tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MODELWARD_CACHE_KEY", raising=False)
    key_file = tmp_path / "cache.key"
    key_file.write_text("k" * 64 + "\n")
    key_file.chmod(0o644)  # readable by others: refused, so there is no trustworthy key
    monkeypatch.setenv("MODELWARD_CACHE_KEY_FILE", str(key_file))
    from scanner.yaml_cache import _mac_key

    _mac_key.cache_clear()
    try:
        gadgets, constraints = _load_both(root)
    finally:
        _mac_key.cache_clear()
        _fresh_process()
    assert gadgets and constraints and not list((tmp_path / "cache").rglob("pickletable-*"))


def test_an_invalid_gadget_file_still_fails_closed_with_a_kept_copy_of_the_old_one(
    cache: Path, root: Path
) -> None:
    from scanner.rules import RuleDatabaseError

    _load_both(root)
    (root / "pickle" / "gadgets.yaml").write_text("callables: [not, a, mapping]\n")
    _fresh_process()
    with pytest.raises(RuleDatabaseError):
        gadgets_mod.load_gadgets(root)


def _proto2_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


# a newobj-only class called (audit constraint), and numpy.dtype handed a class (gadgets.yaml argument rule)
_CALLED = b"\x80\x02" + _proto2_global("joblib.memory", "Memory") + b"X\x01\x00\x00\x00/\x85R."
_DTYPE_OF_CLASS = (
    b"\x80\x02" + _proto2_global("numpy", "dtype") + b"(" + _proto2_global("numpy", "ndarray") + b"tR."
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_CALLED, "PICKLE-CONSTRAINT-VIOLATION"),
        (_DTYPE_OF_CLASS, "PICKLE-GADGET-ARGUMENT"),
        # a benign pickle with a global (a plain-data one builds no table: stream.LazyTable)
        (pickle.dumps(collections.OrderedDict(coef=[0.1, 0.2]), protocol=4), None),
    ],
    ids=["constraint", "gadget", "benign"],
)
def test_a_scan_judges_the_same_from_the_kept_tables(cache: Path, data: bytes, expected: str | None) -> None:
    cold = rule_ids(inspect_bytes(data, "m.pkl"))
    assert (expected in cold) if expected else not cold
    assert _kept(cache, "gadgets") and _kept(cache, "constraints")
    _fresh_process()
    assert rule_ids(inspect_bytes(data, "m.pkl")) == cold
