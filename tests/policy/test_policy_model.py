"""The typed policy: models agree with the published schema; evaluate is pure and uses the rule database it is given."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from scanner.findings import Decision, FileResult, ScanReport, Severity
from scanner.policy.decide import decide
from scanner.policy.evaluate import evaluate
from scanner.policy.loader import PolicyError, load_policy
from scanner.policy.model import PolicySpec, SpecError, compile_spec
from scanner.resources import policies_dir, signatures_dir
from scanner.rules import RuleDB, get_rule_db, load_rule_db
from tests.harness import REPO

# --- the models and policy.schema.json describe the same document ---------------------------------


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and step through Optional (anyOf/oneOf with null) to the object or array inside."""
    while True:
        if "$ref" in node:
            node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
            continue
        branches = [b for b in node.get("anyOf", node.get("oneOf", [])) if b.get("type") != "null"]
        if len(branches) == 1 and "properties" not in node:
            node = branches[0]
            continue
        return node


def _compare(hand: dict[str, Any], gen: dict[str, Any], roots: tuple[dict, dict], where: str) -> int:
    """Assert the same properties, required keys, enums and strictness at every level; count objects seen."""
    hand, gen = _resolve(hand, roots[0]), _resolve(gen, roots[1])
    seen = 0
    if "properties" in hand or "properties" in gen:
        seen = 1
        hp, gp = hand.get("properties", {}), gen.get("properties", {})
        assert set(hp) == set(gp), f"{where}: schema-only {set(hp) - set(gp)}, model-only {set(gp) - set(hp)}"
        assert set(hand.get("required", [])) == set(gen.get("required", [])), f"{where}: required differs"
        assert hand.get("additionalProperties") is False and gen.get("additionalProperties") is False, where
        seen += sum(_compare(hp[k], gp[k], roots, f"{where}.{k}") for k in hp)
    if "enum" in hand or "enum" in gen:
        assert set(hand.get("enum", [])) == set(gen.get("enum", [])), f"{where}: enum differs"
    if "items" in hand or "items" in gen:
        seen += _compare(hand["items"], gen["items"], roots, f"{where}[]")
    if isinstance(hand.get("additionalProperties"), dict):  # a map: the same values
        seen += _compare(hand["additionalProperties"], gen["additionalProperties"], roots, f"{where}{{}}")
    return seen


def test_models_and_json_schema_have_the_same_properties_at_every_level():
    hand = json.loads((policies_dir() / "policy.schema.json").read_text())
    gen = TypeAdapter(PolicySpec).json_schema()
    objects = _compare(hand, gen, (hand, gen), "policy")
    # every object was reached: the document, formats, sources, signatures, its trust entries and their
    # identities, pickle and its extra_allowed, rules, lock, known_bad_feeds, trusted_code, exceptions
    assert objects == 13, objects


def test_a_schema_property_without_a_field_is_caught():
    """The comparison above can fail: a property only the schema knows is reported by name."""
    hand = json.loads((policies_dir() / "policy.schema.json").read_text())
    hand["properties"]["lock"]["properties"]["stale_after"] = {"type": "string"}
    gen = TypeAdapter(PolicySpec).json_schema()
    with pytest.raises(AssertionError, match="stale_after"):
        _compare(hand, gen, (hand, gen), "policy")


RICH = """
version: 1
name: rich
block_severity: never
severity_overrides: {FILE-EMPTY: critical}
formats: {allow: [json], deny: [pickle]}
sources: {allow: ["hf://*"], deny: ["hf://bad/*"]}
max_file_size: 2 GiB
signatures:
  required: true
  trust:
    - sources: ["hf://org/*"]
      keys: [/k.pem]
      identities: [{identity_regex: ".*@org", issuer: "https://issuer"}]
pickle:
  profiles: [torch-weights-only]
  extra_allowed: [{sources: ["hf://org/*"], globals: ["org.models:Net"]}]
rules: {min_version: "2026.1"}
lock: {fresh: true}
known_bad_feeds: [{source: "https://feed/*", reason: r}]
trusted_code: [{sha256: "%s", reason: r, expires: 2030-01-31}]
exceptions: [{rule: X-Y, path: a, reason: r, owner: o, expires: 2030-01-31}]
""" % ("a" * 64)


@pytest.mark.parametrize("name", ["default", "strict", "audit", "rich"])
def test_pydantic_builds_the_same_policy_as_the_loader(name):
    """compile_spec (no pydantic at start-up) and pydantic's validation of the same models agree."""
    from scanner.policy.yaml_source import _NoDupLoader

    path = policies_dir() / f"{name}.yaml"
    text = RICH if name == "rich" else path.read_text()
    data = yaml.load(text, Loader=_NoDupLoader)  # noqa: S506 - a SafeLoader; dates stay strings
    data.pop("extends", None)
    assert compile_spec(data) == TypeAdapter(PolicySpec).validate_python(data)


@pytest.mark.parametrize(
    ("data", "loc", "what"),
    [
        ({"version": 1, "lock": {"fresh": True, "stale": 1}}, ("lock", "stale"), "unknown setting 'stale'"),
        ({"version": 2}, ("version",), "is not one of 1"),
        ({"version": 1, "max_file_size": True}, ("max_file_size",), "not a valid"),
        ({"version": 1, "max_file_size": "lots"}, ("max_file_size",), "not a size"),
        (
            {"version": 1, "exceptions": [{"rule": "A-B", "reason": "r"}]},
            ("exceptions", 0),
            "'expires' is a required property",
        ),
        (
            {"version": 1, "severity_overrides": {"A-B": "urgent"}},
            ("severity_overrides", "A-B"),
            "not one of",
        ),
        ({"version": 1, "signatures": {"required": "yes"}}, ("signatures", "required"), "expected bool"),
    ],
)
def test_compile_rejects_what_the_models_cannot_hold(data, loc, what):
    """Shipped policies skip the JSON Schema at start-up: the compiler alone must refuse bad values."""
    with pytest.raises(SpecError) as e:
        compile_spec(data)
    assert e.value.loc == loc and what in str(e.value), (e.value.loc, str(e.value))


def test_loading_a_policy_does_not_import_pydantic():
    """Every scan loads a policy: the models stay plain dataclasses so start-up does not pay for pydantic."""
    code = (
        "import sys; from scanner.policy.loader import load_policy; load_policy('strict'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'jsonschema')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


def _policy(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


STRICT_CHILD = """
    version: 1
    extends: strict
    max_file_size: 1KiB
    exceptions:
      - {rule: X-Y, path: a, reason: r, expires: 2030-01-31}
"""
BAD_DATE = "version: 1\nexceptions:\n  - {rule: X-Y, path: a, reason: r, expires: 2030-02-30}\n"
EVERY_CHECK = """
    version: 1
    sources: {allow: ["hf://*"]}
    formats: {allow: [json]}
    signatures: {required: true}
    max_file_size: 1
"""
EXPIRED_WAIVER = """
    version: 1
    exceptions:
      - {rule: FORMAT-UNKNOWN, path: w.bin, reason: vendor blob, expires: 2020-01-31}
"""


def test_loaded_policy_is_typed_and_keeps_lines(tmp_path):
    pol = load_policy(_policy(tmp_path, STRICT_CHILD))
    assert pol.spec.max_bytes == 1024
    assert pol.spec.block_at is Severity.MEDIUM  # from strict
    assert pol.spec.signatures.required is True
    assert pol.spec.exceptions[0].expires == date(2030, 1, 31)
    assert pol.spec.severity_overrides["HF-REMOTE-CODE"] is Severity.CRITICAL
    assert pol.ref("exceptions", 0).endswith("p.yaml:5")  # the entry's line in the child
    strict = (policies_dir() / "strict.yaml").read_text().splitlines()
    assert pol.ref("signatures", "required").endswith(f"strict.yaml:{strict.index('  required: true') + 1}")
    assert pol.data["exceptions"][0]["expires"] == "2030-01-31"  # as written: cache keys stay stable
    assert "extends" not in pol.data


def test_a_date_the_schema_lets_through_fails_at_load_naming_the_line(tmp_path):
    """2030-02-30 has the YYYY-MM-DD form; it used to crash the evaluation, now the policy does not load."""
    with pytest.raises(PolicyError) as e:
        load_policy(_policy(tmp_path, BAD_DATE))
    assert "p.yaml:3: exceptions.0.expires" in str(e.value), str(e.value)


def test_bad_date_on_cli_is_exit_2(cli, tmp_path):
    p = _policy(tmp_path, BAD_DATE)
    (tmp_path / "m").mkdir()
    res = cli("scan", "--policy", str(p), str(tmp_path / "m"))
    assert res.exit_code == 2
    assert "p.yaml:3" in res.stderr and "Traceback" not in res.stderr


# --- evaluate is pure; decide applies its findings -------------------------------------------------


def _report(db: RuleDB) -> ScanReport:
    fr = FileResult(
        path="file:///m/w.bin", size=10, format="unknown", formats=["unknown"], source="file:///m"
    )
    fr.findings = [db.finding("FORMAT-UNKNOWN", "opaque", fr.path, severity=Severity.LOW)]
    return ScanReport(scanner_version="x", rules_version=db.version, targets=["/m"], files=[fr])


def test_evaluate_changes_nothing_and_returns_the_policy_findings(tmp_path):
    db = get_rule_db()
    report = _report(db)
    pol = load_policy(_policy(tmp_path, EVERY_CHECK))
    before = report.model_dump()
    first = evaluate(report, pol, db)
    assert report.model_dump() == before
    assert evaluate(report, pol, db) == first  # judging twice gives the same answer
    assert first.verdict.decision is Decision.BLOCK
    raised = [pf.finding.rule_id for pf in first.findings]
    assert raised == [
        "POLICY-SOURCE-DENIED",
        "POLICY-FILE-TOO-LARGE",
        "POLICY-FORMAT-DENIED",
        "POLICY-SIGNATURE-REQUIRED",
    ]
    assert {pf.file_index for pf in first.findings} == {0}

    verdict = decide(report, pol, db)
    assert verdict == first.verdict
    assert [f.rule_id for f in report.files[0].findings] == ["FORMAT-UNKNOWN", *raised]


def _rules_with(tmp_path: Path, rule_id: str, severity: str, title: str) -> RuleDB:
    """A rules folder like the shipped one, with one rule's severity and title changed."""
    root = tmp_path / "rules-db"
    shutil.copytree(signatures_dir() / "rules", root / "rules")
    (root / "VERSION").write_text("9999.1.1\n")
    policy_rules = root / "rules" / "policy.yaml"
    text = policy_rules.read_text()
    head, tail = text.split(f"id: {rule_id}\n", 1)
    sev_line, rest = tail.split("\n", 1)
    title_line, rest = rest.split("\n", 1)
    assert sev_line.strip().startswith("severity:") and title_line.strip().startswith("title:")
    indent = sev_line[: len(sev_line) - len(sev_line.lstrip())]
    policy_rules.write_text(
        f"{head}id: {rule_id}\n{indent}severity: {severity}\n{indent}title: {title}\n{rest}"
    )
    return load_rule_db(root)


def test_decision_follows_the_rule_database_it_is_given(tmp_path):
    """An expired waiver blocks when POLICY-EXCEPTION-EXPIRED is high (shipped) and only warns where a
    rules folder makes it medium: the evaluator no longer reaches for the process-wide database."""
    shipped = get_rule_db()
    custom = _rules_with(tmp_path, "POLICY-EXCEPTION-EXPIRED", "medium", "Waiver expired (custom)")
    assert shipped.rule("POLICY-EXCEPTION-EXPIRED").severity is Severity.HIGH
    pol = load_policy(_policy(tmp_path, EXPIRED_WAIVER))
    today = date(2021, 1, 1)

    with_shipped = evaluate(_report(shipped), pol, shipped, today)
    with_custom = evaluate(_report(custom), pol, custom, today)

    assert with_shipped.verdict.decision is Decision.BLOCK
    assert with_custom.verdict.decision is Decision.WARN
    (expired,) = [pf.finding for pf in with_custom.findings]
    assert (expired.rule_id, expired.severity, expired.title) == (
        "POLICY-EXCEPTION-EXPIRED",
        Severity.MEDIUM,
        "Waiver expired (custom)",
    )
    report = _report(custom)
    assert decide(report, pol, custom, today=today).decision is Decision.WARN
    assert report.files[0].findings[-1].title == "Waiver expired (custom)"
