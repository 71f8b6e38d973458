"""A small audit whose reports, in every format, are compared with the ones modelward wrote before reports
were streamed (``tests/audit/data/golden/``). Run as a script to print them (``python -m tests.audit.report_golden
OUT_DIR``): the golden files were written that way by the code before the change."""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

FORMATS = ("json", "html", "markdown", "console", "sarif", "cyclonedx")
EVIL = b"cos\nsystem\n(S'echo <pwned>'\ntR."
OLD = 1_500_000_000  # file times well out of the racy window, so every identity is trusted


def build(zoo: Path) -> None:
    for team in ("vision", "nlp", "speech"):
        for i in range(4):
            path = zoo / team / f"proj{i % 2}" / f"m{i}.pkl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps({"team": team, "w": [i, i + 1]}, protocol=4))
    (zoo / "nlp" / "evil.pkl").write_bytes(EVIL)
    (zoo / "README.md").write_text("# zoo\n")
    _age(zoo)


def change(zoo: Path) -> None:
    """Between the two runs: one file removed, one rewritten benign, one turned malicious, one added."""
    (zoo / "vision" / "proj0" / "m0.pkl").unlink()
    (zoo / "speech" / "proj1" / "m1.pkl").write_bytes(pickle.dumps({"changed": True}, protocol=4))
    (zoo / "nlp" / "evil.pkl").write_bytes(pickle.dumps({"cleaned": True}, protocol=4))
    (zoo / "speech" / "late.pkl").write_bytes(EVIL.replace(b"system", b"popen"))
    _age(zoo)


def _age(zoo: Path) -> None:
    # ctime cannot be set back, so identities stay racy: the second run's states are settled by digest
    for p in zoo.rglob("*"):
        os.utime(p, (OLD, OLD))


RULES_VERSION = (Path(__file__).parents[2] / "signatures" / "VERSION").read_text(encoding="utf-8").strip()


def normalize(text: str, tmp: Path) -> str:
    text = text.replace(Path.cwd().as_uri(), "<CWD>").replace(str(tmp), "<TMP>")
    text = text.replace(RULES_VERSION, "<RULES>")  # a rule-database release does not change a report's shape
    text = re.sub(r'"(started_at|started|timestamp)": "[^"]*"', r'"\1": "<TIME>"', text)
    text = re.sub(r'"duration_seconds": [0-9.e-]+', '"duration_seconds": 0', text)
    text = re.sub(r"urn:uuid:[0-9a-f-]+", "urn:uuid:<UUID>", text)
    return re.sub(r'"modelward/v1": "[0-9a-f]+"', '"modelward/v1": "<FINGERPRINT>"', text)  # hashes the path


def run_all(tmp: Path) -> dict[str, str]:
    """Two audits of the zoo (before and after ``change``); every format of each, normalized."""
    from typer.testing import CliRunner

    from scanner.cli import app

    zoo, out = tmp / "zoo", {}
    build(zoo)
    for run in (1, 2):
        if run == 2:
            change(zoo)
        for fmt in FORMATS:
            db = tmp / f"{fmt}.sqlite"
            report = tmp / f"run{run}.{fmt}"
            args = ["audit", str(zoo), "--db", str(db), "--policy", "default", "-f", fmt, "-o", str(report)]
            res = CliRunner().invoke(app, args)
            assert res.exit_code == 1, res.output
            out[f"run{run}.{fmt}"] = normalize(report.read_text(encoding="utf-8"), tmp)
    return out


if __name__ == "__main__":
    import tempfile

    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        for name, text in run_all(Path(d)).items():
            (dest / name).write_text(text, encoding="utf-8")
