"""Measure the globals real libraries write, from the files of fixtures/ecosystem (run in the project venv).

The ecosystem corpus (``fixtures/gen/ecosystem.py``) holds files written by real
libraries. This script reads them with the scanner's own static walker, with
no allowlist profile in force, so every global each file references comes back
as a finding carrying its ``module:name``, the opcode that imported it and how
the unpickler uses it (called, passed, imported). Nothing is unpickled.

The result, per library and version of the manifest, is the raw material of
``signatures/pickle/profiles/*.yaml``; ``--check`` lists the globals of the
corpus that no default profile allows (what the test would block).

    .venv/bin/python signatures/pickle/measure_ecosystem.py [--json] [--check] [DIR]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from scanner.pipeline import ScanOptions, scan_targets
from scanner.rules import get_rule_db

NO_PROFILE = "__measure_no_profile__"  # a profile name that does not exist: nothing is allowlisted
IMPORT_RULES = {
    "PICKLE-IMPORT-UNLISTED",
    "PICKLE-CALL-UNLISTED",
    "PICKLE-DANGEROUS-GLOBAL",
    "PICKLE-DYNAMIC-IMPORT",
}


def measure(root: Path) -> dict[str, dict[str, dict[str, set[str]]]]:
    """{'library version': {'module:name': {'files': {...}, 'use': {...}}}} for every manifest entry."""
    manifest = json.loads((root / "manifest.json").read_text())
    out: dict[str, dict[str, dict[str, set[str]]]] = defaultdict(dict)
    for e in manifest["files"]:
        report = scan_targets(
            [str(root / e["path"])], ScanOptions(allowed_profiles=[NO_PROFILE], compute_sha256=False)
        )
        lib = f"{e['library']} {e['version']}"
        for f in report.all_findings():
            g = (f.evidence or {}).get("global")
            if f.rule_id not in IMPORT_RULES or not g:
                continue
            rec = out[lib].setdefault(g, {"files": set(), "use": set()})
            rec["files"].add(e["path"])
            ev = f.evidence
            use = (
                "called"
                if ev.get("called")
                else ("passed" if f.rule_id == "PICKLE-CALL-UNLISTED" else "imported")
            )
            rec["use"].add(f"{ev.get('opcode')}/{use}")
    return out


def unlisted(measured: dict[str, dict[str, dict[str, set[str]]]]) -> dict[str, list[str]]:
    db = get_rule_db()
    profiles = db.default_profiles()
    gaps: dict[str, list[str]] = {}
    for lib, globs in measured.items():
        miss = sorted(g for g in globs if not any(p.allows(*g.split(":", 1)) for p in profiles))
        if miss:
            gaps[lib] = miss
    return gaps


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    root = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "fixtures" / "ecosystem"
    measured = measure(root)
    if "--check" in argv:
        print(json.dumps(unlisted(measured), indent=1))
        return
    if "--json" in argv:
        print(
            json.dumps(
                {
                    lib: {g: {k: sorted(v) for k, v in r.items()} for g, r in sorted(gl.items())}
                    for lib, gl in sorted(measured.items())
                },
                indent=1,
            )
        )
        return
    for lib, globs in sorted(measured.items()):
        print(f"# {lib}: {len(globs)} globals")
        for g, rec in sorted(globs.items()):
            print(f'  - "{g}"  # {", ".join(sorted(rec["use"]))}; {len(rec["files"])} file(s)')


if __name__ == "__main__":
    main(sys.argv[1:])
