"""Remote code blocks by default; a policy trusts it only by digest or source pattern, with a reason."""

from __future__ import annotations

import hashlib
import json
import textwrap
from datetime import date
from pathlib import Path

import pytest

from scanner.findings import Decision, Severity
from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.decide import decide
from scanner.policy.evaluate import evaluate
from scanner.policy.loader import PolicyError, load_policy
from scanner.policy.scan_settings import compile_scan_settings

MODELING = "import torch\nfrom .layers import Block\n\nclass M(torch.nn.Module):\n    def __init__(self, c):\n        super().__init__()\n"
LAYERS = "import torch\n\nclass Block(torch.nn.Module):\n    pass\n"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "m", "auto_map": {"AutoModel": "modeling_m.M"}}))
    (d / "modeling_m.py").write_text(MODELING)
    (d / "layers.py").write_text(LAYERS)
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>"}))
    return d


def _policy(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nextends: default\n" + textwrap.dedent(body).lstrip())
    return p


def _run(target: Path, policy: Path | str, today: date | None = None):
    pol = load_policy(policy)
    report = scan_targets([str(target)], ScanOptions(scoped=compile_scan_settings(pol)))
    report.verdict = decide(report, pol, today=today)
    return report


def _code_findings(report) -> dict[str, dict]:
    return {Path(f.path).name: f for f in report.all_findings() if f.rule_id == "CODE-EXECUTED-BY-LOADER"}


def test_default_blocks_every_executed_file_with_how_to_trust(repo):
    report = _run(repo, "default")
    found = _code_findings(report)
    assert set(found) == {"modeling_m.py", "layers.py"}, "the relative import is code the loader runs too"
    for name, f in found.items():
        assert f.severity >= Severity.HIGH
        assert f.evidence["sha256"] == _sha(repo / name)
        assert f.evidence["loader"].startswith("transformers") and f.evidence["key"] == "auto_map.AutoModel"
        assert "trusted_code" in f.message and f.evidence["sha256"] in f.message
    assert report.verdict.decision is Decision.BLOCK


def test_trust_by_digest_allows_and_names_the_policy_line(tmp_path, repo):
    p = _policy(
        tmp_path,
        f"""
        trusted_code:
          - sha256: {_sha(repo / "modeling_m.py")}
            reason: reviewed by ml-platform
          - sha256: {_sha(repo / "layers.py")}
            reason: reviewed layers
            owner: alice
    """,
    )
    report = _run(repo, p)
    assert report.verdict.decision is Decision.ALLOW, [
        (r.decision, r.message) for r in report.verdict.reasons
    ]
    trusted = [r for r in report.verdict.reasons if r.rule_id == "CODE-EXECUTED-BY-LOADER"]
    assert {r.policy_ref.rsplit(":", 1)[1] for r in trusted} == {"4", "6"}
    assert all("reviewed" in r.message for r in trusted)


def test_changed_file_blocks_again(tmp_path, repo):
    p = _policy(
        tmp_path,
        f"""
        trusted_code:
          - {{sha256: {_sha(repo / "modeling_m.py")}, reason: reviewed}}
          - {{sha256: {_sha(repo / "layers.py")}, reason: reviewed}}
    """,
    )
    (repo / "layers.py").write_text(LAYERS + "\n# a harmless-looking edit\n")
    report = _run(repo, p)
    assert report.verdict.decision is Decision.BLOCK
    blocked = {
        Path(r.path).name
        for r in report.verdict.reasons
        if r.decision is Decision.BLOCK and r.rule_id == "CODE-EXECUTED-BY-LOADER"
    }
    assert blocked == {"layers.py"}


def test_trust_by_source_and_path_glob(tmp_path, repo):
    src = f"file://{repo.resolve()}"
    p = _policy(
        tmp_path,
        f"""
        trusted_code:
          - source: "{src}"
            path: "modeling_*.py"
            reason: our own repository
    """,
    )
    report = _run(repo, p)
    blocked = {
        Path(r.path).name
        for r in report.verdict.reasons
        if r.decision is Decision.BLOCK and r.rule_id == "CODE-EXECUTED-BY-LOADER"
    }
    assert blocked == {"layers.py"}, "the path glob narrows the trust"
    p2 = _policy(tmp_path, 'trusted_code:\n  - {source: "hf://someone-else/*", reason: x}\n')
    assert _run(repo, p2).verdict.decision is Decision.BLOCK


def test_expired_trust_blocks_and_is_reported(tmp_path, repo):
    p = _policy(
        tmp_path,
        """
        trusted_code:
          - {source: "file://*", reason: temporary, expires: "2020-01-01"}
    """,
    )
    report = _run(repo, p, today=date(2026, 1, 1))
    assert report.verdict.decision is Decision.BLOCK
    assert any(
        f.rule_id == "POLICY-EXCEPTION-EXPIRED" and "trusted_code" in f.message for f in report.all_findings()
    )


def test_trust_does_not_waive_malicious_analysis(tmp_path, repo):
    (repo / "layers.py").write_text("import os\nos.system('id')\n" + LAYERS)
    p = _policy(tmp_path, 'trusted_code:\n  - {source: "file://*", reason: everything}\n')
    report = _run(repo, p)
    assert report.verdict.decision is Decision.BLOCK
    assert any(
        r.rule_id == "PY-DANGEROUS-CALL" and r.decision is Decision.BLOCK for r in report.verdict.reasons
    )


def test_trust_other_rules_is_not_possible(tmp_path, repo):
    """trusted_code waives only CODE-EXECUTED-BY-LOADER, whoever emits it."""
    from scanner.findings import FileResult, ScanReport
    from scanner.rules import get_rule_db

    db = get_rule_db()
    fr = FileResult(path="model.mar!handler.py", size=1, format="zip", source="file:///x")
    fr.findings = [
        db.finding(
            "CODE-EXECUTED-BY-LOADER",
            "torchserve runs it",
            fr.path,
            evidence={"sha256": "a" * 64, "loader": "torchserve"},
        ),
        db.finding("HF-NATIVE-LIBRARY", "native", fr.path, evidence={"sha256": "a" * 64}),
    ]
    p = _policy(tmp_path, f"trusted_code:\n  - {{sha256: {'a' * 64}, reason: reviewed handler}}\n")
    v = evaluate(
        ScanReport(scanner_version="x", rules_version="y", targets=["x"], files=[fr]), load_policy(p), db
    ).verdict
    by_rule = {r.rule_id: r.decision for r in v.reasons}
    assert by_rule["CODE-EXECUTED-BY-LOADER"] is Decision.ALLOW
    assert by_rule["HF-NATIVE-LIBRARY"] is Decision.BLOCK


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("trusted_code:\n  - {sha256: abc, reason: r}\n", "does not have the expected form"),
        ("trusted_code:\n  - {sha256: " + "a" * 64 + "}\n", "'reason' is a required property"),
        ("trusted_code:\n  - {path: '*.py', reason: r}\n", "trusted_code.0"),
        ("trusted_code:\n  - {source: 'hf://*', reason: r, expires: soon}\n", "expires"),
    ],
)
def test_malformed_trust_entries_are_rejected(tmp_path, body, what):
    with pytest.raises(PolicyError) as e:
        load_policy(_policy(tmp_path, body))
    assert what in str(e.value)


def test_cli_end_to_end_blocks_then_passes_with_trust(cli, tmp_path, repo):
    res = cli("scan", str(repo))
    assert res.exit_code == 1
    assert "trusted_code" in res.stdout
    doc = json.loads(cli("scan", "--format", "json", str(repo)).stdout)
    digests = sorted(
        {
            f["evidence"]["sha256"]
            for fr in doc["files"]
            for f in fr["findings"]
            if f["rule_id"] == "CODE-EXECUTED-BY-LOADER"
        }
    )
    assert len(digests) == 2
    entries = "".join(f"  - sha256: {d}\n    reason: reviewed\n" for d in digests)
    p = _policy(tmp_path, "trusted_code:\n" + entries)
    ok = cli("scan", str(repo), "--policy", str(p))
    assert ok.exit_code == 0, ok.stdout


def test_benign_repo_without_custom_code_has_nothing_above_low(tmp_path):
    d = tmp_path / "llama"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": 8,
                "torch_dtype": "bfloat16",
            }
        )
    )
    (d / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    (d / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": "<s>",
                "eos_token": "</s>",
                "tokenizer_class": "LlamaTokenizer",
                "chat_template": "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}",
            }
        )
    )
    (d / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>"}))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (d / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    report = _run(d, "default")
    worst = max((f.severity for f in report.all_findings()), default=None, key=lambda s: s.rank)
    assert worst is None or worst <= Severity.LOW, [(f.rule_id, f.message) for f in report.all_findings()]
    assert report.verdict.decision is Decision.ALLOW


def test_trusted_code_entries_concatenate_through_extends(tmp_path, repo):
    base = tmp_path / "base.yaml"
    base.write_text(
        f"version: 1\nextends: default\ntrusted_code:\n  - {{sha256: {_sha(repo / 'modeling_m.py')}, reason: base}}\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text(
        f"version: 1\nextends: base.yaml\ntrusted_code:\n  - {{sha256: {_sha(repo / 'layers.py')}, reason: child}}\n"
    )
    report = _run(repo, child)
    assert report.verdict.decision is Decision.ALLOW
    refs = {r.policy_ref for r in report.verdict.reasons if r.rule_id == "CODE-EXECUTED-BY-LOADER"}
    assert {ref.rsplit(":", 1)[0].rsplit("/", 1)[-1] for ref in refs} == {"base.yaml", "child.yaml"}
