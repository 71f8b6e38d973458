"""A small zoo whose ``modelward scan`` reports, in every format and console mode, are compared with the ones
modelward wrote before large scans were judged file by file into an on-disk store
(``tests/core/data/scan_golden/``). Run as a script to print them (``python -m tests.core.scan_golden OUT_DIR``):
the golden files were written that way by the code before the change.

The zoo has benign pickles, a blocked one, a truncated one (partial coverage), a name that is not UTF-8,
repository-level findings (``auto_map`` code, a shard index naming a missing shard) and, in the second scan, a
target that cannot be resolved (a report error, exit 2)."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

from tests.audit.report_golden import EVIL, normalize

# (name, format, extra options)
VARIANTS = (
    ("console", "console", ()),
    ("console-quiet", "console", ("-q",)),
    ("console-only-findings", "console", ("--only-findings",)),
    ("json", "json", ()),
    ("sarif", "sarif", ()),
    ("markdown", "markdown", ()),
    ("html", "html", ()),
    ("cyclonedx", "cyclonedx", ()),
)
SCENARIOS = ("zoo", "targets")
EXIT = {"zoo": 1, "targets": 2}


def build(zoo: Path) -> None:
    for team in ("vision", "speech"):
        for i in range(3):
            path = zoo / team / f"proj{i % 2}" / f"m{i}.pkl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps({"team": team, "w": [i, i + 1]}, protocol=4))
    (zoo / "nlp").mkdir()
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    (zoo / "nlp" / "broken.pkl").write_bytes(pickle.dumps({"w": list(range(40))}, protocol=4)[:30])
    odd = os.fsencode(zoo / "speech") + b"/odd\xff.pkl"  # a name that is not UTF-8
    with open(odd, "wb") as f:
        f.write(pickle.dumps({"odd": True}, protocol=4))
    hf = zoo / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"auto_map": {"AutoModel": "modeling_x.MyModel"}, "model_type": "x"}')
    (hf / "modeling_x.py").write_text('import os\nos.system("id")\nclass MyModel: pass\n')
    (hf / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-00001-of-00002.safetensors"}}'
    )
    (zoo / "README.md").write_text("# zoo\n")


def targets(tmp: Path, scenario: str) -> list[str]:
    zoo = tmp / "zoo"
    if scenario == "zoo":
        return [str(zoo)]
    return [str(zoo / "nlp" / "evil.pkl"), str(zoo / "hf"), str(tmp / "missing")]


def run_all(tmp: Path) -> dict[str, str]:
    """Every scenario in every variant, normalized, by golden file name."""
    from typer.testing import CliRunner

    from scanner.cli import app

    build(tmp / "zoo")
    out = {}
    for scenario in SCENARIOS:
        for name, fmt, extra in VARIANTS:
            report = tmp / f"{scenario}.{name}"
            args = ["scan", *targets(tmp, scenario), "-f", fmt, *extra, "-o", str(report)]
            res = CliRunner().invoke(app, args)
            assert res.exit_code == EXIT[scenario], (scenario, name, res.output)
            out[f"{scenario}.{name}"] = normalize(report.read_text(encoding="utf-8"), tmp)
    return out


if __name__ == "__main__":
    import tempfile

    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        for name, text in run_all(Path(d)).items():
            (dest / name).write_text(text, encoding="utf-8")
