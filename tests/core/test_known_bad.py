"""A digest on the known-malicious list is critical, for local bytes and for a registry's claimed digest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from scanner.engine import ScanOptions, inspect_artifact
from scanner.io.reader import BytesReader
from scanner.rules import load_rule_db
from scanner.sources.base import Artifact
from tests.harness import REPO, rule_ids, scan


def _db_with(tmp_path: Path, digest: str) -> Path:
    root = tmp_path / "sig"
    shutil.copytree(REPO / "signatures", root)
    (root / "known_bad_sha256.yaml").write_text(
        f"digests:\n  - sha256: {digest}\n    name: test-sample\n    reference: https://example.invalid/advisory\n"
    )
    return root


def test_local_file_on_the_list_is_blocked(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("looks harmless\n")
    root = _db_with(tmp_path, hashlib.sha256(f.read_bytes()).hexdigest())
    report = scan(f, rules_root=root)
    assert "KNOWN-MALICIOUS-HASH" in rule_ids(report)
    assert report.verdict.decision.value == "block"
    assert "KNOWN-MALICIOUS-HASH" not in rule_ids(scan(f))


def test_claimed_digest_is_checked_before_download(tmp_path):
    digest = "ab" * 32
    rules = load_rule_db(_db_with(tmp_path, digest))
    art = Artifact(
        path="remote.bin", size=4, opener=lambda: BytesReader(b"text", "remote.bin"), claimed_sha256=digest
    )
    result = inspect_artifact(art, rules, ScanOptions())
    assert "KNOWN-MALICIOUS-HASH" in {f.rule_id for f in result.findings}
