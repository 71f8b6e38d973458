"""Policy features on real model files from the fixture corpus (and real pickles of a team's own class)."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import textwrap
from datetime import date
from pathlib import Path

from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.loader import load_policy
from scanner.policy.scan_settings import compile_scan_settings
from tests.harness import FIXTURES

PICKLE = FIXTURES / "pickle"


class TinyNet:
    """Stands in for a team's own model class, pickled whole (torch.save(model) style)."""

    def __init__(self) -> None:
        self.width = 4


def _run(target: Path, policy: Path | str, today: date | None = None):
    pol = load_policy(policy)
    report = scan_targets([str(target)], ScanOptions(scoped=compile_scan_settings(pol)))
    report.verdict = decide(report, pol, today=today)
    return report


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def test_team_classes_allowed_only_for_the_team_source(tmp_path):
    team = tmp_path / "team-models" / "m1"
    other = tmp_path / "downloads" / "m1"
    for d in (team, other):
        d.mkdir(parents=True)
        (d / "model.pkl").write_bytes(pickle.dumps(TinyNet(), protocol=4))
    assert _run(team, "default").verdict.decision.value == "block"
    pol = _write(
        tmp_path,
        f"""
        version: 1
        extends: default
        pickle:
          extra_allowed:
            - sources: ["file://{tmp_path}/team-models/*"]
              globals: ["{__name__}:TinyNet"]
    """,
    )
    assert _run(team, pol).verdict.decision.value == "allow"
    assert _run(other, pol).verdict.decision.value == "block"


def test_profiles_narrow_what_a_source_may_load(tmp_path):
    sk = PICKLE / "benign" / "sklearn" / "decision_tree.pkl"
    assert _run(sk, "default").verdict.decision.value == "allow"
    pol = _write(
        tmp_path,
        """
        version: 1
        extends: default
        pickle:
          profiles: [torch-weights-only]
    """,
    )
    narrowed = _run(sk, pol)
    assert narrowed.verdict.decision.value == "block"
    assert "PICKLE-CALL-UNLISTED" in {f.rule_id for f in narrowed.all_findings()}
    torch_sd = next((PICKLE / "benign" / "torch").glob("*.pt"))
    assert _run(torch_sd, pol).verdict.decision.value == "allow"


def test_sha_pinned_exception_on_a_real_payload_expires(tmp_path):
    evil = tmp_path / "model" / "pytorch_model.bin"
    evil.parent.mkdir()
    shutil.copy(PICKLE / "malicious" / "names" / "pytorch_model.bin", evil)
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    pol = _write(
        tmp_path,
        f"""
        version: 1
        extends: default
        exceptions:
          - rule: PICKLE-DANGEROUS-GLOBAL
            path: pytorch_model.bin
            sha256: "{digest}"
            reason: red-team sample kept for detection tests (SEC-42)
            owner: security
            expires: 2027-01-01
    """,
    )
    waived = _run(evil.parent, pol, today=date(2026, 12, 1))
    assert waived.verdict.decision.value in ("allow", "warn")
    assert any("SEC-42" in r.message for r in waived.verdict.reasons)
    expired = _run(evil.parent, pol, today=date(2027, 1, 2))
    assert expired.verdict.decision.value == "block"
    assert "POLICY-EXCEPTION-EXPIRED" in {f.rule_id for f in expired.all_findings()}
    evil.write_bytes(evil.read_bytes() + b"\x00")  # other bytes: the pinned waiver no longer applies
    assert _run(evil.parent, pol, today=date(2026, 12, 1)).verdict.decision.value == "block"


def test_strict_policy_on_real_formats(tmp_path):
    manifest = json.loads((FIXTURES / "safetensors" / "manifest.json").read_text())
    st = next(
        FIXTURES / "safetensors" / e["path"]
        for e in manifest["files"]
        if e["expect"] == "allow" and e["path"].endswith(".safetensors")
    )
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(st, only / st.name)
    report = _run(only, "strict")
    rules = {f.rule_id for f in report.all_findings()}
    assert "POLICY-FORMAT-DENIED" not in rules
    assert "POLICY-SIGNATURE-REQUIRED" in rules
    pkl = tmp_path / "pkl"
    pkl.mkdir()
    shutil.copy(next((PICKLE / "benign" / "torch").glob("*.pt")), pkl / "w.pt")
    assert "POLICY-FORMAT-DENIED" in {f.rule_id for f in _run(pkl, "strict").all_findings()}
