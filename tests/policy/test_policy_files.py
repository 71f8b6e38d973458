"""Policy files: validation errors name file:line:col; every feature changes the decision as documented."""

from __future__ import annotations

import hashlib
import json
import textwrap
from datetime import date
from pathlib import Path

import pytest

from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import PolicyError, load_policy
from scanner.policy.scan_settings import compile_scan_settings


def _policy(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip())
    return p


@pytest.fixture
def model(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text('{"a": 1}')
    (d / "weights.bin").write_bytes(b"\x00\x01\x02\x03opaque")
    return d


def _run(target: Path, policy_path: Path | str, today: date | None = None):
    pol = load_policy(policy_path)
    report = scan_targets([str(target)], ScanOptions(scoped=compile_scan_settings(pol)))
    report.verdict = decide(report, pol, today=today)
    return report


# --- malformed policies -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("version: 1\nblock_severity: [\n", ":3:1:", "invalid YAML"),
        ("version: 1\nblock_severty: high\n", ":2:1:", "unknown setting 'block_severty'"),
        ("version: 1\nblock_severity: hi\n", ":2:17:", "'hi' is not one of"),
        ("version: 2\n", ":1:10:", "version"),
        ("version: 1\nversion: 1\n", ":2:1:", "duplicate key"),
        ("- a\n- b\n", ":1:1:", "expected a mapping"),
        ("version: 1\nexceptions:\n  - rule: X-Y\n    path: a\n", ":3:5:", "'reason' is a required property"),
        (
            "version: 1\nexceptions:\n  - {rule: X-Y, path: a, reason: r, expires: soon}\n",
            ":3:46:",
            "exceptions.0.expires: 'soon' does not have the expected form (a date, YYYY-MM-DD)",
        ),
        ("version: 1\nmax_file_size: lots\n", ":2:16:", "max_file_size"),
    ],
)
def test_malformed_policy_names_file_line_column(tmp_path, text, where, what):
    p = _policy(tmp_path, text)
    with pytest.raises(PolicyError) as e:
        load_policy(p)
    msg = str(e.value)
    assert "p.yaml" + where in msg, msg
    assert what in msg, msg


def test_malformed_policy_on_cli_is_exit_2_one_line(cli, tmp_path, model):
    p = _policy(tmp_path, "version: 1\nblock_severity: hi\n")
    res = cli("scan", "--policy", str(p), str(model))
    assert res.exit_code == 2
    assert "p.yaml:2:17" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_policy_file(cli, tmp_path, model):
    res = cli("scan", "--policy", str(tmp_path / "nope.yaml"), str(model))
    assert res.exit_code == 2
    assert "policy file not found" in res.stderr


def test_extends_cycle_is_reported(tmp_path):
    _policy(tmp_path, "version: 1\nextends: b.yaml\n", "a.yaml")
    _policy(tmp_path, "version: 1\nextends: a.yaml\n", "b.yaml")
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(tmp_path / "a.yaml")


# --- shipped policies ------------------------------------------------------------


def test_shipped_policies_load_and_validate():
    """Loading skips schema validation for shipped policies (start-up time), so it is asserted here."""
    import json

    import jsonschema
    import yaml

    from scanner.resources import policies_dir

    schema = json.loads((policies_dir() / "policy.schema.json").read_text())
    for name in ("default", "strict", "audit"):
        pol = load_policy(name)
        assert pol.name == name
        jsonschema.Draft202012Validator(schema).validate(
            yaml.safe_load((policies_dir() / f"{name}.yaml").read_text())
        )


def test_default_blocks_unanalyzable_audit_reports_only(model):
    assert _run(model, "default").verdict.decision.value == "block"
    report = _run(model, "audit")
    assert report.verdict.decision.value == "warn"
    assert report.verdict.file_decisions["weights.bin"].value == "warn"


def test_strict_requires_signatures_and_safe_formats(model):
    report = _run(model, "strict")
    rules = {f.rule_id for f in report.all_findings()}
    assert "POLICY-SIGNATURE-REQUIRED" in rules
    assert "POLICY-FORMAT-DENIED" in rules
    assert report.verdict.decision.value == "block"


# --- features -------------------------------------------------------------------


def test_block_reason_points_at_policy_line(tmp_path, model):
    p = _policy(
        tmp_path,
        """
        version: 1
        block_severity: high
        block_unanalyzed: true
    """,
    )
    report = _run(model, p)
    refs = {r.policy_ref for r in report.verdict.reasons if r.decision.value == "block"}
    assert f"{p}:2" in refs or any(r.endswith("p.yaml:2") for r in refs), refs
    assert any(r.endswith("p.yaml:3") for r in refs), refs


def test_severity_override_changes_decision(tmp_path, model):
    (model / "weights.bin").unlink()
    (model / "empty.pt").write_bytes(b"")
    base = _run(model, "default")
    assert base.verdict.decision.value == "allow"
    p = _policy(
        tmp_path,
        """
        version: 1
        extends: default
        severity_overrides:
          FILE-EMPTY: critical
    """,
    )
    report = _run(model, p)
    assert report.verdict.decision.value == "block"
    assert any(r.policy_ref and r.policy_ref.endswith("p.yaml:4") for r in report.verdict.reasons)


def test_exception_waives_until_it_expires(tmp_path, model):
    digest = hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()
    p = _policy(
        tmp_path,
        f"""
        version: 1
        extends: default
        block_unanalyzed: false
        exceptions:
          - rule: FORMAT-UNKNOWN
            path: weights.bin
            sha256: {digest}
            reason: vendor blob, reviewed in TICKET-1
            owner: ml-platform
            expires: 2030-01-31
    """,
    )
    ok = _run(model, p, today=date(2029, 12, 1))
    assert ok.verdict.decision.value == "warn"  # coverage gap still warns, the finding is waived
    waived = [r for r in ok.verdict.reasons if r.rule_id == "FORMAT-UNKNOWN"]
    assert waived and waived[0].decision.value == "allow" and "TICKET-1" in waived[0].message
    assert waived[0].policy_ref.endswith("p.yaml:5"), waived[0].policy_ref

    expired = _run(model, p, today=date(2030, 2, 1))
    rules = {f.rule_id for f in expired.all_findings()}
    assert "POLICY-EXCEPTION-EXPIRED" in rules
    assert expired.verdict.decision.value == "block"
    assert any(
        r.policy_ref.endswith("p.yaml:10")
        for r in expired.verdict.reasons
        if r.rule_id == "POLICY-EXCEPTION-EXPIRED"
    )


def test_exception_pinned_to_other_bytes_does_not_apply(tmp_path, model):
    p = _policy(
        tmp_path,
        f"""
        version: 1
        exceptions:
          - rule: FORMAT-UNKNOWN
            sha256: "{"0" * 64}"
            reason: pinned to different bytes
            expires: 2099-01-01
    """,
    )
    report = _run(model, p)
    assert report.verdict.decision.value == "block"


def test_extends_concatenates_exceptions_and_overrides_scalars(tmp_path):
    _policy(
        tmp_path,
        """
        version: 1
        block_severity: critical
        exceptions:
          - {rule: A-B, path: x, reason: parent, expires: 2099-01-01}
    """,
        "base.yaml",
    )
    child = _policy(
        tmp_path,
        """
        version: 1
        extends: base.yaml
        block_severity: medium
        exceptions:
          - {rule: C-D, path: y, reason: child, expires: 2099-01-01}
    """,
        "child.yaml",
    )
    pol = load_policy(child)
    assert pol.get("block_severity") == "medium"
    assert [e["reason"] for e in pol.get("exceptions")] == ["parent", "child"]
    assert pol.ref("exceptions", 0).endswith("base.yaml:4")
    assert pol.ref("exceptions", 1).endswith("child.yaml:5")


def test_formats_allow_and_deny(tmp_path, model):
    p = _policy(
        tmp_path,
        """
        version: 1
        block_unanalyzed: false
        block_severity: never
        formats:
          deny: [json]
    """,
    )
    report = _run(model, p)
    assert report.verdict.file_decisions["config.json"].value == "block"
    assert report.verdict.file_decisions["weights.bin"].value == "warn"


def test_sources_allow_and_deny(tmp_path, model):
    (model / "weights.bin").unlink()
    p = _policy(
        tmp_path,
        f"""
        version: 1
        sources:
          allow: ["hf://my-org/*", "file://{tmp_path}/approved/*"]
    """,
    )
    report = _run(model, p)
    assert report.verdict.decision.value == "block"
    assert "POLICY-SOURCE-DENIED" in {f.rule_id for f in report.all_findings()}
    approved = tmp_path / "approved" / "m"
    approved.mkdir(parents=True)
    (approved / "config.json").write_text("{}")
    assert _run(approved, p).verdict.decision.value == "allow"


def test_max_file_size(tmp_path, model):
    (model / "weights.bin").unlink()
    (model / "big.txt").write_text("x" * 2048)
    p = _policy(tmp_path, "version: 1\nmax_file_size: 1KiB\n")
    report = _run(model, p)
    assert report.verdict.file_decisions["big.txt"].value == "block"
    assert report.verdict.file_decisions["config.json"].value == "allow"


def test_policy_findings_reach_sarif(cli, tmp_path, model):
    out = tmp_path / "r.sarif"
    res = cli("scan", "--policy", "strict", "--format", "sarif", "--output", str(out), str(model))
    assert res.exit_code == 1
    doc = json.loads(out.read_text())
    assert "POLICY-SIGNATURE-REQUIRED" in {r["ruleId"] for r in doc["runs"][0]["results"]}


def test_audit_policy_exits_zero_on_findings(cli, model):
    assert cli("scan", str(model)).exit_code == 1
    assert cli("scan", "--policy", "audit", str(model)).exit_code == 0
