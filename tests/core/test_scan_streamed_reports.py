"""``modelward scan`` of many files judges each finished file on its own into an on-disk ``ReportStore`` (the
audit's ``FileJudge``) and streams its report from there; a small scan keeps its files in memory. Either way the
report is, byte for byte, what modelward wrote before (``tests/core/data/scan_golden``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.audit import judge
from scanner.report import store
from tests.core.scan_golden import EXIT, SCENARIOS, VARIANTS, build, normalize, targets

GOLDEN = Path(__file__).parent / "data" / "scan_golden"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("scan-golden")
    build(tmp / "zoo")
    return tmp


def _stores(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    made: list[object] = []
    real = store.ReportStore.__init__

    def counting(self: store.ReportStore, *args: object, **kwargs: object) -> None:
        made.append(self)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.ReportStore, "__init__", counting)
    return made


@pytest.mark.parametrize("stored", [False, True], ids=["memory", "store"])
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_scan_report_is_what_modelward_wrote_before(
    zoo: Path, monkeypatch: pytest.MonkeyPatch, stored: bool, scenario: str, variant: str
) -> None:
    from typer.testing import CliRunner

    from scanner.cli import app

    made = _stores(monkeypatch)
    if stored:  # every scan past 0 files: the small zoo takes the path a 100k-file zoo takes
        monkeypatch.setattr(judge, "STORE_AT", 0)
    _name, fmt, extra = next(v for v in VARIANTS if v[0] == variant)
    out = zoo / f"{scenario}.{variant}.{stored}"
    res = CliRunner().invoke(app, ["scan", *targets(zoo, scenario), "-f", fmt, *extra, "-o", str(out)])
    assert res.exit_code == EXIT[scenario], res.output
    assert len(made) == (1 if stored else 0)
    got = normalize(out.read_text(encoding="utf-8"), zoo)
    assert got == (GOLDEN / f"{scenario}.{variant}").read_text(encoding="utf-8")


def test_the_golden_files_are_every_variant() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(
        f"{s}.{v[0]}" for s in SCENARIOS for v in VARIANTS
    )


def test_known_bad_export_is_the_same_from_the_store(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--export-known-bad`` lists the blocked files with a digest whether they were held or stored."""
    import json
    import re

    from typer.testing import CliRunner

    from scanner.cli import app

    got = []
    for stored in (False, True):
        monkeypatch.setattr(judge, "STORE_AT", 0 if stored else 2000)
        out = zoo / f"known-bad.{stored}.json"
        res = CliRunner().invoke(
            app,
            [
                "scan",
                str(zoo / "zoo"),
                "-f",
                "json",
                "-o",
                str(zoo / "r.json"),
                "--export-known-bad",
                str(out),
            ],
        )
        assert res.exit_code == 1, res.output
        got.append(re.sub(r'"(published|modified|first_seen)": "[^"]*"', r'"\1": ""', out.read_text()))
    assert got[0] == got[1]
    records = json.loads(got[0])
    assert len(records) == 4  # evil.pkl, broken.pkl, modeling_x.py, the shard index: the four blocked files
