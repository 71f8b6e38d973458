"""One forward pipeline (issue #15 item 2): compiled per-source settings, execution as a strategy, explicit checks."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import scanner.repo as repo
from scanner.engine import SERIAL
from scanner.findings import FileResult
from scanner.integrity.trust import KeylessTrust
from scanner.pipeline import Pipeline, display_paths
from scanner.rules import RuleDB, get_rule_db
from scanner.settings import ScanOptions, SourceScope, SourceScopes
from scanner.sources.base import Artifact
from tests.core.test_import_cycles import import_graph

SIGNER = KeylessTrust(identity="ci@acme.example", issuer="https://issuer.example")
SCOPES = SourceScopes(
    pickle_profiles=("torch-weights-only",),
    scopes=(
        SourceScope(sources=("hf://acme/*",), extra_allowed_globals=("acme.nets:Net",)),
        SourceScope(
            sources=("hf://acme/*", "oci://*"), signature_keys=("acme.pem",), signature_identities=(SIGNER,)
        ),
    ),
)


def test_compiled_settings_apply_only_to_matching_sources() -> None:
    opts = ScanOptions(extra_allowed_globals=["cli:Allowed"], signature_keys=["cli.pem"], scoped=SCOPES)
    acme = opts.for_source("hf://acme/bert")
    assert acme.extra_allowed_globals == ["cli:Allowed", "acme.nets:Net"]
    assert acme.signature_keys == ["cli.pem", "acme.pem"]
    assert acme.signature_identities == [SIGNER]
    assert acme.allowed_profiles == ["torch-weights-only"]  # the policy's profiles replace the defaults
    other = opts.for_source("hf://someone/bert")
    assert other.extra_allowed_globals == ["cli:Allowed"] and other.signature_keys == ["cli.pem"]
    assert opts.for_source("oci://reg/x").signature_keys == ["cli.pem", "acme.pem"]
    assert opts.extra_allowed_globals == ["cli:Allowed"]  # the settings themselves are not changed


def test_workers_get_no_hook_and_no_registry_credentials() -> None:
    opts = ScanOptions(on_file=lambda fr: None, source_options={"token": "hf_secret"})
    sent = opts.for_workers()
    assert sent.on_file is None and sent.source_options == {}
    assert pickle.loads(pickle.dumps(sent)) == sent


def test_engine_and_pipeline_import_neither_policy_nor_executors() -> None:
    graph = import_graph()
    for module in ("scanner.engine", "scanner.pipeline", "scanner.settings"):
        assert not {d for d in graph[module] if d.startswith("scanner.policy")}, module
    assert not graph["scanner.engine"] & {"scanner.parallel", "scanner.dask_exec", "scanner.pipeline"}
    for module in ("scanner.parallel", "scanner.dask_exec"):
        assert "scanner.pipeline" not in graph[module]


class _Recording:
    """An executor that delegates to the serial one and records what it was given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def judge(self, artifacts: Sequence[Artifact], rules: RuleDB, opts: ScanOptions) -> Iterator[FileResult]:
        self.seen.extend(a.path for a in artifacts)
        yield from SERIAL.judge(artifacts, rules, opts)


def test_execution_is_the_strategy_passed_in(tmp_path: Path) -> None:
    for name in ("b.pkl", "a.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    executor = _Recording()
    pipeline = Pipeline(get_rule_db(), ScanOptions(), executor)
    report = pipeline.scan(pipeline.resolve(str(tmp_path)), qualify=True)
    assert sorted(executor.seen) == ["a.pkl", "b.pkl"]
    shown = {fr.path for fr in report.files}
    assert shown == {f"{tmp_path}/a.pkl", f"{tmp_path}/b.pkl"}
    assert all(fr.source == f"file://{tmp_path}" for fr in report.files)


def test_a_single_local_file_is_shown_as_itself(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps([1], protocol=4))
    pipeline = Pipeline(get_rule_db(), ScanOptions())
    snap = pipeline.resolve(str(model))
    move = display_paths(snap)
    assert move("model.pkl") == str(model)
    assert move("model.pkl!data.pkl") == f"{model}!data.pkl"


def test_every_repository_check_is_registered() -> None:
    """Checks are listed explicitly; a module defining checks that the list forgot would never run."""
    defined = []
    for mod in pkgutil.iter_modules(repo.__path__, prefix="scanner.repo."):
        defined.extend(getattr(importlib.import_module(mod.name), "REPO_CHECKS", ()))
    assert defined and set(defined) == set(repo.REPO_CHECKS)
    assert {m for m, _ in repo.MODULES} == {
        mod.name.rsplit(".", 1)[1]
        for mod in pkgutil.iter_modules(repo.__path__, prefix="scanner.repo.")
        if hasattr(importlib.import_module(mod.name), "REPO_CHECKS")
    }


def test_a_repository_check_module_loads_only_for_a_snapshot_with_its_files() -> None:
    assert repo.checks_for(["model.pt"]) == repo.checks_for([]) != []
    everything = repo.checks_for(
        ["a/MLmodel", "b/config.yaml", "c/model.xml", "d/model.safetensors.index.json"]
    )
    assert everything == list(repo.REPO_CHECKS)
    assert len(repo.checks_for(["model.xml"])) == len(repo.checks_for([])) + 1


def test_a_crashed_repository_check_is_partial_coverage_and_blocks(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from scanner.findings import Coverage

    def crashes(*_a: object) -> list[FileResult]:
        raise RuntimeError("boom")

    monkeypatch.setattr(repo, "checks_for", lambda paths: [crashes])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps([1], protocol=4))
    pipeline = Pipeline(get_rule_db(), ScanOptions())
    extra = repo.inspect_snapshot(pipeline.resolve(str(tmp_path)), {}, get_rule_db(), ScanOptions().limits)
    assert [fr.coverage for fr in extra] == [Coverage.PARTIAL]
    assert extra[0].findings[0].rule_id == "INSPECTOR-ERROR" and "boom" in extra[0].findings[0].message
