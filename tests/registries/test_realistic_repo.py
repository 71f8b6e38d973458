"""No false alarms on a repository laid out like a real Hugging Face model repo, locally and over hf://.

Every file is a benign fixture of the corpus: a false alarm on an ordinary repo is
as serious a bug as a miss, so nothing above low may come out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scanner.findings import Severity
from scanner.pipeline import ScanOptions, scan_targets
from scanner.policy.default import decide
from tests.harness import FIXTURES

from .servers.hf_hub_server import HubServer

LAYOUT = {
    "": FIXTURES / "hf-repo" / "benign_repo",  # config, tokenizer_config (chat template), safetensors, README
    "tokenizer.model": FIXTURES / "sentencepiece" / "tokenizer.model",
    "flax_model.msgpack": FIXTURES / "msgpack" / "flax_model.msgpack",
    "pytorch_model.bin": FIXTURES / "pickle" / "benign" / "hf" / "pytorch_model.bin",
    "checkpoint-500/rng_state.pth": FIXTURES / "pickle" / "benign" / "hf" / "rng_state.pth",
    "checkpoint-500/optimizer.pt": FIXTURES / "pickle" / "benign" / "torch" / "optimizer_adam.pt",
    "checkpoint-500/scheduler.pt": FIXTURES / "pickle" / "benign" / "torch" / "lr_scheduler.pt",
    "sharded": FIXTURES / "safetensors" / "sharded_ok",
    "onnx/model.onnx": FIXTURES / "onnx" / "benign_padding_mask.onnx",
    "openvino": FIXTURES / "openvino" / "benign_ir",
    "tf_saved": FIXTURES / "tensorflow" / "benign_savedmodel",
    "tf_model.h5": FIXTURES / "keras" / "benign_conv_dense.h5",
    "model.gguf": FIXTURES / "gguf" / "benign_chatml.gguf",
    "sklearn/classifier.joblib": FIXTURES
    / "pickle"
    / "benign"
    / "sklearn"
    / "pipeline_scaler_logreg_compressed.joblib",
}


def build_repo(root: Path) -> Path:
    for rel, src in LAYOUT.items():
        dst = root / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    (root / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (root / "special_tokens_map.json").write_text('{"eos_token": "</s>"}')
    (root / "merges.txt").write_text("#version: 0.2\nT h\n")
    return root


def _assert_clean(report) -> None:
    noisy = [
        f"{f.path}: {f.severity.value} {f.rule_id} {f.message[:100]}"
        for f in report.all_findings()
        if f.severity > Severity.LOW
    ]
    gaps = [
        f"{fr.path}: {fr.coverage.value} {fr.coverage_notes}"
        for fr in report.files
        if fr.coverage.value != "full"
    ]
    assert not noisy and not gaps, "\n".join(noisy + gaps)
    assert report.verdict.decision.value == "allow"


def test_local_repo_is_clean(tmp_path: Path):
    repo = build_repo(tmp_path / "org--model")
    report = scan_targets([str(repo)])
    report.verdict = decide(report)
    _assert_clean(report)
    assert len(report.files) >= 20


@pytest.mark.usefixtures("hf_env")
def test_remote_repo_is_clean_and_cheap(hub: HubServer, tmp_path: Path):
    repo = build_repo(tmp_path / "src")
    hub.add_repo("acme/realistic", {str(p.relative_to(repo)): p for p in repo.rglob("*") if p.is_file()})
    report = scan_targets(["hf://acme/realistic"], ScanOptions())
    report.verdict = decide(report)
    _assert_clean(report)
