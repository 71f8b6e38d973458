"""The verdict line of `check` names the per-model policy that blocked."""

from __future__ import annotations

import textwrap
from pathlib import Path


def test_per_model_policy_in_the_verdict_line(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    proj = tmp_path / "proj"
    (proj / "models" / "ok").mkdir(parents=True)
    (proj / "models" / "bad").mkdir(parents=True)
    (proj / "models" / "ok" / "config.json").write_text('{"a": 1}')
    (proj / "models" / "bad" / "evil.pkl").write_bytes(b"cos\nsystem\n(S'x'\ntR.")
    (proj / "modelward.toml").write_text(
        textwrap.dedent("""
        policy = "default"
        [models]
        ok = "models/ok"
        bad = { source = "models/bad", policy = "strict" }
    """)
    )
    assert cli("lock", "--project", str(proj)).exit_code == 0
    res = cli("check", "--project", str(proj))
    assert res.exit_code == 1
    assert "verdict: BLOCK (policy default; bad: strict)" in res.stdout
