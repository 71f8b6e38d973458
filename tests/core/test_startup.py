"""Start-up (issue #13): a local pickle scan imports only what judging a local pickle needs.

Measured in a real subprocess (a fresh interpreter, the CLI's own ``main``), by the modules loaded when
the process exits. Not timed: speed targets and figures live in benchmarks/bench_startup.py.

What is allowed, deliberately: typer, PyYAML on a cold start (the rule database and the policy are YAML; a warm
start reads their MACed JSON copy and imports neither PyYAML nor pydantic), rich.console (the console report). What is not: network clients, other formats'
parsers, signing, the CI gate, the audit inventory, the progress bar when stderr is not a terminal.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

_DUMP = """
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv = ["modelward", *sys.argv[2:]]
from scanner.cli import main
main()
"""

NOT_FOR_A_LOCAL_PICKLE = (
    # network and registries
    "requests",
    "urllib3",
    "huggingface_hub",
    "scanner.io.http_session",
    "scanner.sources.hf",
    "scanner.sources.oci",
    # other formats' heavy parsers
    "jinja2",
    "onnx",
    "google.protobuf",
    "h5py",
    "numpy",
    "py7zr",
    "fickling",
    "scanner.analysis.python_ast",  # code carriers: imported when a file or repository holds code
    "scanner.analysis.keras_config",
    "scanner.analysis.marshal_code",
    "scanner.formats.onnx.onnx_skeleton",
    "scanner.formats.onnx.onnx_graph",
    # schemas, signing, the gate, the audit inventory, rule bundles
    "jsonschema",
    "cryptography",
    "sigstore",
    "scanner.integrity.sign",
    "scanner.integrity.verify",
    "scanner.gate.check",
    "scanner.gate.lockfile",
    "scanner.audit.runner",
    "sqlite3",
    "scanner.rulesdb.bundle",
    # the other commands' modules: a process mounts only the command it runs
    "scanner.audit_cli",
    "scanner.gate.cli",
    "scanner.integrity.cli",
    "scanner.pull_cli",
    "scanner.rules_cli",
    # a progress bar is drawn on a terminal only
    "rich.progress",
    # the other report writers, and what the JSON report is written with (pydantic), for console or -q output
    "scanner.report.sarif",
    "scanner.report.html",
    "scanner.report.cyclonedx",
    "scanner.report.markdown",
    "scanner.report.json_report",
    "scanner.report.store",
    "pydantic",
    # network modules, and what only another file of a repository needs (a dist-info entry_points.txt)
    "socket",
    "ssl",
    "email",
    "configparser",
)


def _modules(
    tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    dump = tmp_path / "modules.txt"
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, **(env_extra or {})}
    res = subprocess.run(
        [sys.executable, "-c", _DUMP, str(dump), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return res, set(dump.read_text().split("\n")) if dump.exists() else set()


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["console", "quiet"])
def test_local_pickle_scan_imports_nothing_it_does_not_use(tmp_path: Path, quiet: list[str]) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2], "intercept": 0.3}, protocol=4))
    res, loaded = _modules(tmp_path, "scan", *quiet, str(small))
    assert res.returncode == 0, res.stderr
    assert "ALLOW" in res.stdout
    assert "scanner.formats.pickle" in loaded  # the dump is real: the pickle analyzer ran
    assert sorted(m for m in NOT_FOR_A_LOCAL_PICKLE if m in loaded) == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["scan", "--help"]])
def test_version_and_help_load_no_engine(tmp_path: Path, args: list[str]) -> None:
    res, loaded = _modules(tmp_path, *args)
    assert res.returncode == 0, res.stderr
    heavy = ("scanner.engine", "scanner.rules", "scanner.formats.registry", "yaml", "scanner.policy.loader")
    assert sorted(m for m in heavy if m in loaded) == []


@pytest.mark.parametrize(
    ("args", "mounted", "not_mounted"),
    [
        (["audit", "--help"], "scanner.audit_cli", "scanner.pull_cli"),
        (["rules", "--help"], "scanner.rules_cli", "scanner.audit_cli"),
        (["verify", "--help"], "scanner.integrity.cli", "scanner.gate.cli"),
        (["--help"], "scanner.rules_cli", None),  # the whole app: every command listed
    ],
)
def test_a_command_mounts_only_its_own_module(
    tmp_path: Path, args: list[str], mounted: str, not_mounted: str | None
) -> None:
    res, loaded = _modules(tmp_path, *args)
    assert res.returncode == 0, res.stderr
    assert mounted in loaded and (not_mounted is None or not_mounted not in loaded)


def test_warm_quiet_scan_parses_no_yaml_builds_no_pydantic_adapter_loads_no_rich(tmp_path: Path) -> None:
    small = tmp_path / "small.pkl"
    small.write_bytes(pickle.dumps({"coef": [0.1, 0.2]}, protocol=4))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "MODELWARD_CACHE_KEY": "startup-test-key"}
    cold, cold_loaded = _modules(tmp_path, "scan", "-q", str(small), env_extra=env)
    warm, warm_loaded = _modules(tmp_path, "scan", "-q", str(small), env_extra=env)
    assert cold.returncode == warm.returncode == 0, cold.stderr + warm.stderr
    assert "yaml" in cold_loaded  # the first run parsed the YAML: the second is what the cache saves
    assert sorted(m for m in ("yaml", "pydantic", "rich") if m in warm_loaded) == []  # -q writes without rich


def test_warm_torch_checkpoint_scan_imports_no_yaml(tmp_path: Path) -> None:
    """A torch zip's small text members (version, byteorder) are judged by content without importing PyYAML."""
    import zipfile

    ckpt = tmp_path / "model.pt"
    with zipfile.ZipFile(ckpt, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"step": 1}, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/.format_version", "1")
        z.writestr("archive/version", "3\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "MODELWARD_CACHE_KEY": "startup-test-key"}
    _modules(tmp_path, "scan", "-q", str(ckpt), env_extra=env)  # cold: fills the parsed-rule cache
    res, loaded = _modules(tmp_path, "scan", "-q", str(ckpt), env_extra=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "scanner.analysis.template_carriers" in loaded  # the text members were judged
    assert "yaml" not in loaded
