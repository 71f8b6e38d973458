"""A ``ResultTable`` drops the results repository checks loaded once nothing but the table refers to them (writing
back what a check changed), keeps every result a check still holds, and fails closed when checks hold too many."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner import engine
from scanner.findings import FileResult, Finding, Severity, Tags
from scanner.repo import results as results_mod
from scanner.repo.results import ResultTable, TooManyHeld
from scanner.settings import ScanOptions
from scanner.sources.local import LocalSource
from tests.harness import FIXTURES

RULE_TAGS = Tags(
    cia=["integrity"]
)  # as ``RuleDB.finding`` makes them: every finding of a rule shares its tags


def _finding(path: str, rule: str = "HF-SHELL-SCRIPT") -> Finding:
    return Finding(
        rule_id=rule, severity=Severity.HIGH, message="m", path=path, evidence={"k": [1, 2]}, tags=RULE_TAGS
    )


def _table(n: int) -> ResultTable:
    table = ResultTable()
    for i in range(n):
        table.append(FileResult(path=f"p{i}", size=i, format="text", findings=[_finding(f"p{i}")]))
    return table


def test_released_results_are_dropped_and_written_back_held_ones_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(results_mod, "_SWEEP_AT", 2)
    table = _table(40)
    held = table["p0"]  # a check keeps the result ...
    notes = table["p1"].coverage_notes  # ... a list in one ...
    evidence = table["p2"].findings[0].evidence  # ... a finding's evidence in another
    finding = table["p3"].findings[0]  # ... a finding
    table["p4"].findings.append(_finding("p4", "EXTRA"))  # changed, then let go
    for i in range(5, 40):
        assert table.get(f"p{i}").size == i  # each let go at once
    assert len(table._loaded) <= 8  # the four held and the last few loaded, not all 40
    assert table.paths_with_rule("EXTRA") == ["p4"]  # the written-back body is what the questions see
    assert table["p4"].findings[-1].rule_id == "EXTRA"  # and what a later get loads
    held.findings.append(_finding("p0", "LATE"))  # changes made after many sweeps
    notes.append("late note")
    evidence["late"] = True
    finding.message = "late message"
    del held, notes, evidence, finding
    out = {fr.path: fr for fr in table.drain()}
    assert [f.rule_id for f in out["p0"].findings] == ["HF-SHELL-SCRIPT", "LATE"]
    assert out["p1"].coverage_notes == ["late note"]
    assert out["p2"].findings[0].evidence == {"k": [1, 2], "late": True}
    assert out["p3"].findings[0].message == "late message"
    assert [f.rule_id for f in out["p4"].findings] == ["HF-SHELL-SCRIPT", "EXTRA"]
    assert list(out) == [f"p{i}" for i in range(40)]


def test_a_check_looking_at_every_file_holds_a_bounded_number() -> None:
    table = _table(3000)
    for i in range(3000):
        table[f"p{i}"].findings.append(_finding(f"p{i}", "SEEN"))  # as RepoFindings.add does for each .sh
    assert len(table._loaded) <= 2 * results_mod._SWEEP_AT
    assert all([f.rule_id for f in fr.findings] == ["HF-SHELL-SCRIPT", "SEEN"] for fr in table.drain())


def test_holding_too_many_results_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_mod, "_SWEEP_AT", 4)
    monkeypatch.setattr(results_mod, "MAX_HELD", 20)
    table = _table(40)
    kept = []
    with pytest.raises(TooManyHeld):
        for i in range(40):
            kept.append(table[f"p{i}"])
    table.close()


def test_a_check_stopped_by_the_bound_blocks_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check raising ``TooManyHeld`` is reported as a blocking INSPECTOR-ERROR, never a silent pass."""
    for i in range(5):
        (tmp_path / f"run{i}.sh").write_text("echo hi\n")
    monkeypatch.setattr(engine, "SPILL_AT", 0)
    monkeypatch.setattr(results_mod, "_SWEEP_AT", 0)
    monkeypatch.setattr(results_mod, "MAX_HELD", 0)
    snap = LocalSource().resolve(str(tmp_path))
    got = list(engine.stream_snapshot(snap, ScanOptions()))
    errors = [f for fr in got for f in fr.findings if f.rule_id == "INSPECTOR-ERROR"]
    assert errors and "hold" in errors[0].message and errors[0].severity >= Severity.HIGH


def _scan(path: Path, spill_at: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(engine, "SPILL_AT", spill_at)
    snap = LocalSource().resolve(str(path))
    return [fr.model_dump_json() for fr in engine.stream_snapshot(snap, ScanOptions())]


@pytest.mark.parametrize("folder", ["hf-repo", "onnx", "openvino", "safetensors", "nemo2", "carriers"])
def test_dropping_at_every_load_gives_the_in_memory_results(
    folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = FIXTURES / folder
    if not root.is_dir():
        pytest.skip(f"no fixtures/{folder}")
    monkeypatch.setattr(
        results_mod, "_SWEEP_AT", 1
    )  # every result no check holds is dropped at the next load
    for sub in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        assert _scan(sub, 0, monkeypatch) == _scan(sub, 10**9, monkeypatch), sub


def test_this_interpreter_counts_references_as_the_table_expects() -> None:
    """The probe must pass here, or large scans would fail closed on every check that looks at many files."""
    assert results_mod._drops_work()


def test_an_interpreter_that_counts_otherwise_drops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_mod, "_DROPS", [False])
    monkeypatch.setattr(results_mod, "_SWEEP_AT", 2)
    monkeypatch.setattr(results_mod, "MAX_HELD", 30)
    table = _table(40)
    for i in range(30):
        table[f"p{i}"].findings.append(_finding(f"p{i}", "SEEN"))
    assert len(table._loaded) == 30  # nothing dropped, nothing lost
    with pytest.raises(TooManyHeld):
        table.get("p39")
    assert sum(any(f.rule_id == "SEEN" for f in fr.findings) for fr in table.drain()) == 30
