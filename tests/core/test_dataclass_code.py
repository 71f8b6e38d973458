"""The start-up cache of compiled dataclass methods: same classes as the stdlib builds, planted code never runs."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import scanner
from scanner import dataclass_code

MODELWARD = str(Path(sys.executable).with_name("modelward"))


@pytest.fixture
def key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELWARD_CACHE_KEY", "k" * 40)
    return tmp_path / "cache" / "code" / "dataclasses.bin"


@pytest.fixture
def installed(key_env: Path) -> Iterator[dataclass_code.CodeCache]:
    cache = dataclass_code.install(key_env)
    assert cache is not None
    try:
        yield cache
    finally:
        dataclass_code.uninstall(cache)


def _classes() -> dict[str, Any]:
    """A spread of dataclass features: every generated method kind the scanner's classes use."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class Frozen:
        a: int
        b: str = "x"
        c: list[int] = dataclasses.field(default_factory=list, compare=False)

    @dataclasses.dataclass(kw_only=True, order=True)
    class Ordered:
        n: int
        tag: ClassVar[str] = "t"
        extra: dict[str, int] = dataclasses.field(default_factory=dict)

        def __post_init__(self) -> None:
            self.extra.setdefault("seen", self.n)

    @dataclasses.dataclass(eq=True, unsafe_hash=True)
    class Hashed:
        x: float
        init_only: dataclasses.InitVar[int] = 0

    return {"Frozen": Frozen, "Ordered": Ordered, "Hashed": Hashed}


def _behaviour(cls: dict[str, Any]) -> list[Any]:
    f = cls["Frozen"](1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.a = 2
    o1, o2 = cls["Ordered"](n=1), cls["Ordered"](n=2)
    with pytest.raises(TypeError):
        cls["Ordered"](1)  # kw_only
    return [
        repr(f),
        f == cls["Frozen"](1, "x", [9]),
        hash(f) == hash(cls["Frozen"](1)),
        repr(o1),
        o1 < o2,
        o1.extra,
        hash(cls["Hashed"](1.5, 3)) == hash(cls["Hashed"](1.5)),
        [fl.name for fl in dataclasses.fields(cls["Ordered"])],
    ]


def _codes(cls: dict[str, Any]) -> dict[str, bytes]:
    out = {}
    for name, c in cls.items():
        for meth in ("__init__", "__repr__", "__eq__", "__lt__", "__hash__", "__setattr__"):
            fn = c.__dict__.get(meth)
            if fn is not None and hasattr(fn, "__code__"):
                out[f"{name}.{meth}"] = fn.__code__.co_code
    return out


def test_classes_built_through_the_cache_are_the_stdlib_classes(installed: dataclass_code.CodeCache) -> None:
    cached = _classes()
    assert installed.compiled > 0
    dataclass_code.uninstall(installed)
    plain = _classes()
    assert _behaviour(cached) == _behaviour(plain)
    assert _codes(cached) == _codes(plain) and len(_codes(plain)) >= 8


def test_a_saved_file_is_used_by_the_next_run_and_nothing_is_recompiled(key_env: Path) -> None:
    first = dataclass_code.install(key_env)
    assert first is not None
    try:
        reference = _behaviour(_classes())
    finally:
        dataclass_code.uninstall(first)
    first.save()
    assert key_env.is_file()

    second = dataclass_code.install(key_env)
    assert second is not None
    try:
        assert _behaviour(_classes()) == reference
    finally:
        dataclass_code.uninstall(second)
    assert second.compiled == 0 and second.used


def _plant(path: Path, entries: dict[bytes, bytes], mac: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mac + marshal.dumps(entries))


def test_a_planted_file_never_runs_its_code(key_env: Path, tmp_path: Path) -> None:
    """Whoever can write the cache folder swaps a method's code: the MAC does not verify, the text is compiled."""
    first = dataclass_code.install(key_env)
    assert first is not None
    try:
        _classes()
    finally:
        dataclass_code.uninstall(first)
    marker = tmp_path / "planted-ran"
    planted = f"def __create_fn__(*a, **k):\n open({str(marker)!r}, 'w').close()\n return None"
    evil = marshal.dumps(dataclass_code.create_fn_code(planted))  # would pass every check but the MAC
    for mac in (b"\0" * 32, first._mac(b"something else")):
        _plant(key_env, {address: evil for address in first.entries}, mac)
        again = dataclass_code.install(key_env)
        assert again is not None
        try:
            assert _behaviour(_classes())  # the classes work: their methods are the compiled texts
            assert again.compiled == len(first.used)
        finally:
            dataclass_code.uninstall(again)
        assert not marker.exists()

    # control: the same entries under the right MAC do run, so the MAC is what kept them out above
    forged = {address: evil for address in first.entries}
    _plant(key_env, forged, first._mac(marshal.dumps(forged)))
    keyed = dataclass_code.install(key_env)
    assert keyed is not None
    try:
        with pytest.raises(AttributeError):  # the planted __create_fn__ returns None, not a method
            _behaviour(_classes())
    finally:
        dataclass_code.uninstall(keyed)
    assert marker.exists()


def test_a_file_from_another_interpreter_is_ignored(key_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = dataclass_code.install(key_env)
    assert first is not None
    try:
        _classes()
    finally:
        dataclass_code.uninstall(first)
    first.save()
    monkeypatch.setattr(dataclass_code, "_interpreter", lambda: b"cpython-399\0other")
    again = dataclass_code.install(key_env)
    assert again is not None
    try:
        _classes()
        assert again.compiled == len(first.used)
    finally:
        dataclass_code.uninstall(again)


def test_no_trustworthy_key_leaves_dataclasses_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELWARD_CACHE_KEY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("MODELWARD_CACHE_KEY_FILE", str(tmp_path / "c" / "modelward" / "cache.key"))  # inside
    assert dataclass_code.install() is None
    assert "exec" not in vars(dataclasses)


@pytest.mark.slow
def test_the_console_script_keeps_the_cache_and_a_library_import_does_not(tmp_path: Path) -> None:
    if not Path(MODELWARD).exists():
        pytest.skip("modelward entry point not installed beside the interpreter")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "MODELWARD_CACHE_KEY": "q" * 40}
    sample = tmp_path / "m.pkl"
    sample.write_bytes(b"\x80\x04K\x01.")
    first = subprocess.run([MODELWARD, "scan", "-q", str(sample)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "cache" / "modelward" / "code"
    saved = folder / f"dataclasses-{sys.implementation.cache_tag}-{scanner.__version__}-scan.bin"
    assert saved.is_file()
    before = saved.stat()
    second = subprocess.run([MODELWARD, "scan", "-q", str(sample)], env=env, capture_output=True, text=True)
    assert second.returncode == 0 and second.stdout == first.stdout
    after = saved.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # nothing new to compile
    assert [p.name for p in folder.iterdir()] == [saved.name]  # the scan command's own file, nothing else

    probe = "import dataclasses, scanner.cli; print('exec' in vars(dataclasses))"
    lib = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert lib.stdout.strip() == "False", lib.stderr


def test_a_file_past_its_cap_keeps_only_this_runs_texts(
    key_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = dataclass_code.install(key_env)
    assert first is not None
    try:
        _classes()
    finally:
        dataclass_code.uninstall(first)
    first.entries.update({bytes([i]) * 32: b"stale" for i in range(40)})  # texts of code that changed since
    monkeypatch.setattr(dataclass_code, "MAX_ENTRIES", len(first.used) + 10)
    first.save()
    again = dataclass_code.CodeCache(key_env, first._key)
    again.load()
    assert set(again.entries) == first.used


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["scan", "-q", "m.pkl"], "scan"),
        (["--no-color", "audit", "run", "x"], "audit"),
        (["-V"], "main"),
        ([], "main"),
        (["../../etc/x"], "main"),  # never a path: a file name of plain words only
        (["a" * 40], "main"),
        (["sc\u0430n"], "main"),  # not ASCII
    ],
)
def test_each_command_keeps_its_own_file(argv: list[str], command: str) -> None:
    """A one-file scan reads the texts scans use, not the union over every command and version (issue #13)."""
    path = dataclass_code.default_path(argv)
    assert path.name == f"dataclasses-{sys.implementation.cache_tag}-{scanner.__version__}-{command}.bin"
    assert path.parent == dataclass_code.modelward_cache_home() / "code"
