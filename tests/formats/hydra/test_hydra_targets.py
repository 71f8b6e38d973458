"""hydra/OmegaConf `_target_` and jsonargparse `class_path`: allowlisted targets pass, everything else blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.analysis.hydra_targets import judge_target, resolver_issues
from scanner.findings import Coverage, Severity
from scanner.rules import get_rule_db
from tests.harness import FIXTURES, inspect_bytes, rule_ids, scan

DB = get_rule_db()
BENIGN = sorted((FIXTURES / "hydra" / "benign").rglob("*.yaml"))


@pytest.mark.parametrize(
    "target",
    [
        "torch.optim.Adam",
        "torch.optim.lr_scheduler.CosineAnnealingLR",
        "torch.nn.Conv1d",
        "torch.float32",
        "nemo.collections.asr.modules.ConformerEncoder",
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "nemo.core.optim.lr_scheduler.CosineAnnealing",
    ],
)
def test_allowed_targets(target: str) -> None:
    assert judge_target(target, "_target_", DB) is None


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "posix.system",
        "subprocess.Popen",
        "subprocess.run",
        "builtins.eval",
        "builtins.exec",
        "builtins.__import__",
        "importlib.import_module",
        "runpy.run_path",
        "pickle.loads",
        "shutil.os.system",
        "hydra.utils.os.system",
        "nemo.collections.asr.modules.os.system",
        "torch.optim.Adam.__init__.__globals__",
        "torch.nn.functional.sys.modules",
        " os.system ",
        "${oc.select:x,os.system}",
        "torch.hub.load",
    ],
)
def test_dangerous_targets(target: str) -> None:
    issue = judge_target(target, "_target_", DB)
    assert issue is not None and issue.rule_id == "CONFIG-TARGET-DANGEROUS", (target, issue)


@pytest.mark.parametrize(
    "target",
    [
        "mypkg.models.Net",
        "AutoTokenizer",
        "torch.optim.lr_scheduler.some_function",
        "torch.optim.adam.os_system",
        "src.models.mnist_module.MNISTLitModule",
        "${model.target}",
        "torch.optim.Adam:x",
        "",
        None,  # a number imports nothing (test_non_string_targets.py); null and containers still block
        ["os.system"],
        "torch.optim.Adam.mro",
    ],
)
def test_unlisted_targets(target: object) -> None:
    issue = judge_target(target, "_target_", DB)
    assert issue is not None and issue.rule_id == "CONFIG-TARGET-UNLISTED", (target, issue)


def test_resolvers() -> None:
    assert [i.rule_id for i in resolver_issues("${oc.env:HF_TOKEN}")] == ["CONFIG-RESOLVER"]
    assert [i.rule_id for i in resolver_issues("${ eval: 1+1 }")] == ["CONFIG-TARGET-DANGEROUS"]
    assert resolver_issues("${model.hidden} ${oc.select:a,b}") == []
    low = resolver_issues("${multiply:2,3}")
    assert [(i.rule_id, i.severity) for i in low] == [("CONFIG-RESOLVER", Severity.LOW)]


@pytest.mark.parametrize("path", BENIGN, ids=[p.name for p in BENIGN])
def test_real_configs_are_clean(path: Path) -> None:
    fr = inspect_bytes(path.read_bytes(), path.name)
    assert [f for f in fr.findings if f.severity > Severity.LOW] == [], fr.findings


def _rules(data: bytes, name: str) -> list[tuple[str, str]]:
    fr = inspect_bytes(data, name)
    return [(f.rule_id, f.severity.value) for f in fr.findings]


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (
            b"a:\n  b:\n    - {x: 1}\n    - [{_target_: os.system, _args_: [id]}]\n",
            "cfg.yaml",
        ),  # deep in lists
        (b"base: &b {_target_: subprocess.Popen}\nmodel: {<<: *b, x: 1}\n", "cfg.yaml"),  # merge key
        (b"m: {_target_: torch.optim.Adam}\nm: {_target_: builtins.exec}\n", "cfg.yaml"),  # duplicate top key
        (b"m:\n  _target_: !!str os.system\n", "cfg.yaml"),  # explicit tag on the value
        (b"m:\n  _target_: !custom os.system\n", "cfg.yml"),  # unknown tag constructed as data
        (b"--- {x: 1}\n--- {_target_: os.system}\n", "cfg.yaml"),  # second document
        (b"m:\n  class_path: subprocess.Popen\n  init_args: {args: [id]}\n", "lightning.yaml"),
        (b"_target_: os.system\n", "notes.txt"),  # by content, any name
        (
            b'{"m": {"_target_": "torch.optim.Adam", "_target_": "os.system"}}',
            "config.json",
        ),  # JSON: last wins
        (
            b'{"m": {"_target_": "os.system", "_target_": "torch.optim.Adam"}}',
            "config.json",
        ),  # the shadowed one too
        (
            b'[{"_args_": [{"_target_": "builtins.eval", "_args_": ["1"]}], "_target_": "torch.nn.Sequential"}]',
            "c.json",
        ),
        (b"x: !!python/name:os.system ''\n", "cfg.yaml"),
    ],
)
def test_dangerous_variants_in_files(data: bytes, name: str) -> None:
    assert ("CONFIG-TARGET-DANGEROUS", "critical") in _rules(data, name)


def test_unparseable_or_oversized_config_fails_closed() -> None:
    fr = inspect_bytes(b"model:\n  _target_: [unclosed\n", "model_config.yaml")
    assert "CONFIG-TARGET-UNREADABLE" in {f.rule_id for f in fr.findings} and fr.coverage is Coverage.PARTIAL
    big = b"model:\n  _target_: torch.optim.Adam\n" + b"# padding\n" * (500 * 1024)
    fr = inspect_bytes(big, "model_config.yaml")
    assert "CONFIG-TARGET-UNREADABLE" in {f.rule_id for f in fr.findings} and fr.coverage is Coverage.PARTIAL


def test_alias_bomb_is_walked_once_per_node() -> None:
    lines = ["a0: &a0 {_target_: torch.optim.Adam}"] + [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)
    ]
    fr = inspect_bytes("\n".join(lines).encode(), "bomb.yaml")
    assert fr.coverage is Coverage.FULL and not [f for f in fr.findings if f.severity > Severity.LOW]


def test_repository_scan_blocks_on_a_config_target(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"backbone": {"_target_": "os.system", "_args_": ["id"]}})
    )
    (tmp_path / "README.md").write_text("# model\n")
    report = scan(tmp_path)
    assert "CONFIG-TARGET-DANGEROUS" in rule_ids(report)
    assert report.verdict.decision.value == "block"


@pytest.mark.parametrize("tree_cap", [10, 4 << 20])  # big JSON is scanned literal by literal: same verdicts
@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b'{"a": {"\\u005ftarget_": "os.system"}}', "CONFIG-TARGET-DANGEROUS"),  # escaped key
        (b'{"_target_": "torch.optim.Adam", "_target_": "os.system"}', "CONFIG-TARGET-DANGEROUS"),
        (b'{"_target_": ["os.system"]}', "CONFIG-TARGET-UNLISTED"),
        (b'{"m": {"_target_": "my.pkg.Net", "hidden": 3}}', "CONFIG-TARGET-UNLISTED"),
        (b'{"k": "${oc.env:HF_TOKEN}"}', "CONFIG-RESOLVER"),
    ],
)
def test_json_targets_small_and_big(
    monkeypatch: pytest.MonkeyPatch, tree_cap: int, data: bytes, rule: str
) -> None:
    from scanner.analysis import template_carriers

    monkeypatch.setattr(template_carriers, "MAX_JSON_TREE_BYTES", tree_cap)
    assert rule in {r for r, _ in _rules(data, "config.json")}
