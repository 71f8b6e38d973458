"""The scan command line read without typer (issue #13 start-up): ``scan_argv`` must give ``run_scan`` exactly
what typer gives it, or step aside.

The table is checked against the typer command's own parameters, and both parsers read the same generated
command lines: wherever ``scan_arguments`` answers, typer must have called ``run_scan`` with the same
arguments; wherever typer refuses a line, ``scan_arguments`` must return None so typer's message is printed.
"""

from __future__ import annotations

import inspect
import os
import pickle
import random
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scanner import scan_argv, scan_command
from scanner.cli import app
from scanner.cli import scan as typer_scan
from scanner.scan_argv import DEFAULTS, FLAGS, REPEATED, VALUED, scan_arguments


def _typer_params() -> dict[str, Any]:
    return {
        name: p.default for name, p in inspect.signature(typer_scan).parameters.items() if name != "targets"
    }


def test_the_table_names_every_option_of_the_typer_command_as_typer_declares_it() -> None:
    params = _typer_params()
    assert set(params) == set(DEFAULTS)
    assert set(inspect.signature(scan_command.run_scan).parameters) == {"targets", *params}
    names: dict[str, set[str]] = {}
    for table in (FLAGS, {k: v[0] for k, v in VALUED.items()}):
        for option, param in table.items():
            names.setdefault(param, set()).add(option)
    for name, info in params.items():
        assert names[name] == set(info.param_decls), name
        default = info.default
        assert DEFAULTS[name] == (default.value if isinstance(default, Enum) else default) or (
            isinstance(DEFAULTS[name], Enum) and DEFAULTS[name].value == default
        ), name
        assert (name in FLAGS.values()) == isinstance(default, bool), name
        assert (name in REPEATED) == isinstance(default, list), name


class _Called(Exception):
    pass


def _typer_reading(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any] | None:
    """What typer hands ``run_scan`` for ``argv`` (None: typer refused the line)."""
    seen: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(scan_command, "run_scan", record)
    env_before = os.environ.get("NO_COLOR")
    res = CliRunner().invoke(app, argv)
    if env_before is None:
        os.environ.pop("NO_COLOR", None)
    return seen if seen else None if res.exit_code else {"<no call>": res.output}


TARGETS = ["model.pkl", "dir/", "hf://org/name", "oci://r/x:1", "-", "a=b"]
VALUES = [
    "json",
    "sarif",
    "JSON",
    "3",
    "0",
    "-1",
    "+2",
    " 3",
    "03",
    "",
    "strict",
    "x.toml",
    "-q",
    "a=b",
    "p/q",
]


def _random_line(rng: random.Random) -> list[str]:
    words: list[str] = ["--no-color"] * rng.choice([0, 0, 1, 2]) + ["scan"]
    options = [*FLAGS, *VALUED, "--", "-h", "--help", "-qf", "-fjson", "--nope", "-x", "--no-color"]
    for _ in range(rng.randint(0, 6)):
        choice = rng.random()
        if choice < 0.35:
            words.append(rng.choice(TARGETS[:4]))
        elif choice < 0.9:
            opt = rng.choice(options)
            if opt in VALUED and rng.random() < 0.9:
                value = rng.choice(VALUES)
                words.extend(
                    [f"{opt}={value}"] if opt.startswith("--") and rng.random() < 0.3 else [opt, value]
                )
            else:
                words.append(opt)
        else:
            words.append(rng.choice(TARGETS))
    return words


HAND_WRITTEN = [
    ["scan", "m.pkl"],
    ["scan", "-q", "m.pkl"],
    ["scan", "m.pkl", "-q"],  # options after targets, as click reads them
    ["--no-color", "scan", "m.pkl", "-f", "json", "-o", "r.json"],
    ["scan", "--format=sarif", "a", "b", "--include", "*.pt", "--include", "*.bin", "--exclude=x"],
    ["scan", "-j", "0", "--policy", "strict", "--no-hash", "--cache", "m"],
    ["scan", "-p", "a", "-p", "b", "m"],  # a single-valued option twice: typer keeps the last
    ["scan", "-f", "JSON", "m"],  # not a choice
    ["scan", "-j", "-1", "m"],  # below the range
    ["scan", "--policy", "--quiet", "m"],  # a value that looks like an option
    ["scan", "--", "-m.pkl"],
    ["scan", "-qf", "json", "m"],
    ["scan", "-fjson", "m"],
    ["scan"],
    ["scan", "-h"],
    ["scan", "--quiet=1", "m"],
    ["--version"],
    ["version"],
    ["scan", "--key", "k.pem", "--chain", "c.pem", "--key", "k2.pem", "--signature", "s.sig", "m"],
    ["scan", "--username", "u", "--password-stdin", "--insecure", "--allow-http", "oci://h/r:t"],
]


@pytest.mark.parametrize("argv", HAND_WRITTEN, ids=[" ".join(a) or "empty" for a in HAND_WRITTEN])
def test_hand_written_lines_read_as_typer_reads_them(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _compare(argv, monkeypatch)


def test_generated_lines_read_as_typer_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1313)
    answered = 0
    for _ in range(400):
        argv = _random_line(rng)
        answered += _compare(argv, monkeypatch)
    assert answered >= 80  # the fast reader answers the plain lines, not only ever steps aside


def _compare(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> bool:
    before = os.environ.get("NO_COLOR")
    fast = scan_arguments(argv)
    if before is None:
        os.environ.pop("NO_COLOR", None)
    slow = _typer_reading(argv, monkeypatch)
    if fast is None:
        return False
    assert slow == fast, argv
    return True


def test_no_color_before_scan_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert scan_arguments(["scan", "m"]) is not None and "NO_COLOR" not in os.environ
    assert scan_arguments(["--no-color", "scan", "m"]) is not None
    assert os.environ["NO_COLOR"] == "1"


def test_shell_completion_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(scan_argv.COMPLETION_VAR, "bash_complete")
    assert scan_arguments(["scan", "m"]) is None


_DUMP = """
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["modelward", *sys.argv[2:]]
from scanner.entry import main
main()
"""


def _console(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    dump = tmp_path / "modules.txt"
    res = subprocess.run(
        [sys.executable, "-c", _DUMP, str(dump), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    return res, set(dump.read_text().split("\n")) if dump.exists() else set()


def test_a_plain_scan_runs_without_typer_and_ends_as_typer_would(tmp_path: Path) -> None:
    good = tmp_path / "small.pkl"
    good.write_bytes(pickle.dumps({"coef": [0.1, 0.2]}, protocol=4))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    res, loaded = _console(tmp_path, "scan", "-q", str(good))
    assert (res.returncode, res.stdout.strip()) == (0, "verdict: ALLOW (policy default), 1 files"), res.stderr
    assert "scanner.formats.pickle" in loaded and not any(m.startswith("typer") for m in loaded)
    res, loaded = _console(tmp_path, "scan", str(bad), "-f", "json")
    assert res.returncode == 1 and '"bad.pkl": "block"' in res.stdout and "typer" not in loaded
    res, _ = _console(tmp_path, "scan", str(tmp_path / "missing.pkl"))
    assert (
        res.returncode == 2 and res.stdout == "" and "error:" in res.stderr and "Traceback" not in res.stderr
    )
    res, loaded = _console(tmp_path, "scan", "-f", "jsn", str(good))  # typer's own message for a bad choice
    assert res.returncode == 2 and "'jsn' is not one of" in res.stderr and "typer" in loaded
