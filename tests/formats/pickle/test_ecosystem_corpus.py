"""Files real libraries write are allowed under the default policy with nothing above ``low`` (issue #9).

``fixtures/ecosystem/`` is produced by ``fixtures/gen/ecosystem.py`` with the
real libraries (torch, transformers, scikit-learn, pandas, XGBoost, ...); its
manifest records library and version per file. A file the default policy does
not allow carries a ``gap`` reason and the verdict it gets today, so a change
in either direction is noticed. The profiles are audited entry by entry in
``signatures/pickle/audit/``; that audit must cover every profile entry.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from scanner.findings import Severity
from scanner.rules import get_rule_db
from tests.harness import FIXTURES, REPO, rule_ids, scan

ECOSYSTEM = FIXTURES / "ecosystem"
MANIFEST = json.loads((ECOSYSTEM / "manifest.json").read_text())
ENTRIES = MANIFEST["files"]
AUDIT = REPO / "signatures" / "pickle" / "audit"
PROFILES = REPO / "signatures" / "pickle" / "profiles"
ORDER = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
CONSTRAINTS = {"none", "newobj-only", "data-only", "args-allowlisted", "literal-args", "size-bounded"}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if "gap" not in e], ids=lambda e: e["path"])
def test_library_file_is_allowed_with_nothing_above_low(entry: dict) -> None:
    report = scan(ECOSYSTEM / entry["path"])
    above = sorted(
        f"{f.severity.value}:{f.rule_id}:{f.message[:100]}"
        for f in report.all_findings()
        if ORDER.index(f.severity) > ORDER.index(Severity.LOW)
    )
    assert not above, f"{entry['library']} {entry['version']} {entry['path']}: {above}"
    assert report.verdict.decision.value == "allow"
    assert all(fr.coverage.value == "full" for fr in report.files), entry["path"]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if "gap" in e], ids=lambda e: e["path"])
def test_known_gap_keeps_its_recorded_verdict(entry: dict) -> None:
    report = scan(ECOSYSTEM / entry["path"])
    assert report.verdict.decision.value == entry["expect"], (
        f"{entry['path']} ({entry['gap']}): update the GAPS"
    )
    assert set(entry["rules"]) <= rule_ids(report)


def test_corpus_spans_the_ecosystem() -> None:
    libs = Counter(e["library"] for e in ENTRIES)
    assert len(set(libs) - {"python"}) >= 25, libs
    assert all(e["version"] not in ("", "?") for e in ENTRIES)
    gaps = [e for e in ENTRIES if "gap" in e]
    assert len(gaps) <= len(ENTRIES) // 10, "more than a tenth of the ecosystem is not allowed"
    size = sum((ECOSYSTEM / e["path"]).stat().st_size for e in ENTRIES)
    assert size < 15 << 20


def _audit() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(AUDIT.glob("*.yaml"))}


def test_every_profile_entry_is_audited_once() -> None:
    db = get_rule_db()
    audits = _audit()
    for name, profile in db.profiles.items():
        audit = audits.get(name)
        assert audit is not None, f"profile {name} has no audit file signatures/pickle/audit/{name}.yaml"
        assert audit["profile"] == name
        seen: Counter[str] = Counter()
        for group in audit["groups"]:
            assert group.get("why", "").strip(), f"{name}: a group without a why"
            assert group.get("constraint") in CONSTRAINTS, f"{name}: {group.get('constraint')!r}"
            if group["constraint"] != "none":
                assert group.get("args", "").strip(), f"{name}: constrained group without the argument rule"
            seen.update(group["globals"])
        listed = {f"{m}:{n}" for m, n in profile.exact} | {f"{m}:{n}" for m, n in profile.patterns}
        assert set(seen) == listed, (
            f"{name}: audited but not listed {sorted(set(seen) - listed)}, "
            f"listed but not audited {sorted(listed - set(seen))}"
        )
        assert not [g for g, n in seen.items() if n > 1], f"{name}: audited twice"


def test_removed_entries_stay_out_of_every_profile() -> None:
    db = get_rule_db()
    everything = set()
    for p in db.profiles.values():
        everything |= {f"{m}:{n}" for m, n in p.exact}
    for name, audit in _audit().items():
        for r in audit.get("removed", []):
            assert r["why"].strip()
            assert r["global"] not in everything, f"{name}: removed {r['global']} is back in a profile"


def test_profiles_name_no_whole_package() -> None:
    """Measured, not guessed: no wildcard over a package's names (TorchScript's archive-local classes aside)."""
    for p in PROFILES.glob("*.yaml"):
        doc = yaml.safe_load(p.read_text())
        for g in doc.get("globals", []):
            assert "*" not in g and "?" not in g, f"{p.name}: {g}"
        for g in doc.get("patterns", []):
            assert g.startswith("__torch__"), f"{p.name}: pattern {g} over a Python package"


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


# Factories the ecosystem profiles allow build only the classes their library writes (audit: args-allowlisted).
FACTORY_VARIANTS = {
    "new_index_ndarray": _glob("pandas.core.indexes.base", "_new_Index")
    + b"("
    + _glob("numpy", "ndarray")
    + b"}"
    + _str("shape")
    + b"J\x00\x00\x00\x40"
    + b"stR",
    "new_index_training_args": _glob("pandas.core.indexes.base", "_new_Index")
    + b"("
    + _glob("transformers.training_args", "TrainingArguments")
    + b"}tR",
    "new_datetimeindex_index": _glob("pandas.core.indexes.datetimes", "_new_DatetimeIndex")
    + b"("
    + _glob("pandas", "Index")
    + b"}tR",
    "pyx_ndarraybacked_frame": _glob("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked")
    + b"("
    + _glob("pandas", "DataFrame")
    + b"K\x00NtR",
    "mareconstruct_frame": _glob("numpy.ma.core", "_mareconstruct")
    + b"("
    + _glob("pandas", "DataFrame")
    + _glob("numpy", "ndarray")
    + b")"
    + _str("b")
    + b"tR",
    "spacy_vocab_getter_unlisted": _glob("spacy.vocab", "unpickle_vocab")
    + b"(NNNN}"
    + _str("lower")
    + _glob("os", "getcwd")
    + b"sNNtR",
}


@pytest.mark.parametrize("name", sorted(FACTORY_VARIANTS))
def test_ecosystem_factories_reject_other_classes(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(FACTORY_VARIANTS[name]))
    report = scan(path)
    assert report.verdict.decision.value == "block", sorted(rule_ids(report))


# Classes whose construction has side effects are written NEWOBJ+BUILD; calling them (REDUCE) or storing them
# where a holder calls them later must block (audit: newobj-only; PICKLE-CONSTRAINT-VIOLATION).
NEWOBJ_ONLY_VARIANTS = {
    "reduce_training_args": _glob("transformers.training_args", "TrainingArguments") + b")R",
    "reduce_joblib_memory": _glob("joblib.memory", "Memory") + b"(" + _str("/tmp/modelward-memory") + b"tR",
    "defaultdict_factory_partial_state": _glob("collections", "defaultdict")
    + b"("
    + _glob("accelerate.state", "PartialState")
    + b"tR",
}


@pytest.mark.parametrize("name", sorted(NEWOBJ_ONLY_VARIANTS))
def test_side_effect_classes_only_rebuilt_never_called(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(NEWOBJ_ONLY_VARIANTS[name]))
    assert scan(path).verdict.decision.value == "block"
