"""Bad input ends in one clear message or finding and the right exit code, never a traceback."""

from __future__ import annotations

import os

import pytest

from tests.harness import rule_ids, scan


def test_missing_path_is_exit_2_with_the_path_named(cli, tmp_path):
    missing = tmp_path / "nope.pt"
    res = cli("scan", str(missing))
    assert res.exit_code == 2
    assert str(missing) in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_unsupported_scheme_is_a_usage_error(cli):
    res = cli("scan", "s3x://bucket/model.pt")
    assert res.exit_code == 2
    assert "unsupported scheme" in res.stderr


def test_one_missing_target_among_good_ones_still_fails_closed(cli, tmp_path):
    good = tmp_path / "notes.txt"
    good.write_text("hello\n")
    res = cli("scan", str(good), str(tmp_path / "missing.bin"))
    assert res.exit_code == 2, "a target that could not be scanned must never yield exit 0"


def test_empty_file_is_listed_not_skipped(tmp_path):
    f = tmp_path / "weights.pkl"
    f.write_bytes(b"")
    report = scan(f)
    assert [fr.path for fr in report.files] == ["weights.pkl"]
    assert report.files[0].format == "empty"
    assert "FILE-EMPTY" in rule_ids(report)
    assert report.verdict.decision.value == "allow"


def test_unknown_binary_is_not_analyzable_and_blocks(cli, tmp_path):
    f = tmp_path / "blob.dat"
    f.write_bytes(os.urandom(64) + b"\x00")
    res = cli("scan", str(f))
    assert res.exit_code == 1
    report = scan(f)
    assert report.files[0].coverage.value == "none"
    assert "FORMAT-UNKNOWN" in rule_ids(report)


def test_symlink_loop_is_cut_and_reported(tmp_path):
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "readme.txt").write_text("x\n")
    os.symlink("..", d / "sub" / "loop")
    report = scan(d)
    assert "SYMLINK-LOOP" in rule_ids(report)
    assert sum(1 for fr in report.files if fr.path.endswith("readme.txt")) == 1


def test_symlink_out_of_tree_is_not_followed_and_blocks(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    d = tmp_path / "model"
    d.mkdir()
    os.symlink(outside, d / "weights.bin")
    report = scan(d)
    assert "SYMLINK-ESCAPE" in rule_ids(report)
    assert report.verdict.decision.value == "block"
    assert all(fr.bytes_read == 0 for fr in report.files)


def test_symlink_inside_tree_is_followed(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "a.txt").write_text("a\n")
    os.symlink("a.txt", d / "b.txt")
    report = scan(d)
    assert {fr.path for fr in report.files} == {"a.txt", "b.txt"}
    assert report.verdict.decision.value == "allow"


def test_hf_cache_snapshot_links_into_blobs_are_inside_the_tree(tmp_path):
    repo = tmp_path / "hub" / "models--org--m"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "blobs" / "abc").write_text("{}\n")
    os.symlink("../../blobs/abc", snap / "config.json")
    report = scan(snap)
    assert "SYMLINK-ESCAPE" not in rule_ids(report)
    assert report.files[0].format == "json"


def test_fifo_is_reported_not_read(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    os.mkfifo(d / "pipe")
    report = scan(d)
    assert "SPECIAL-FILE" in rule_ids(report)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of mode bits")
def test_unreadable_file_by_mode(tmp_path):
    f = tmp_path / "m.pkl"
    f.write_bytes(b"\x80\x04N.")
    f.chmod(0)
    report = scan(f)
    assert "FILE-UNREADABLE" in rule_ids(report)


def test_unreadable_file_open_error_is_a_finding(tmp_path, monkeypatch):
    """As root no mode bit denies a read, so the EACCES from open() is injected."""
    f = tmp_path / "m.pkl"
    f.write_bytes(b"\x80\x04N.")
    real_open = os.open

    def deny(path, *a, **k):
        if str(path) == str(f):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", deny)
    report = scan(f)
    assert "FILE-UNREADABLE" in rule_ids(report)
    assert report.files[0].coverage.value == "none"
    assert report.verdict.decision.value == "block"


def test_output_file_is_written_whole(cli, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x\n")
    out = tmp_path / "reports" / "r.json"
    res = cli("scan", "--format", "json", "--output", str(out), str(f))
    assert res.exit_code == 0
    assert out.read_text().lstrip().startswith("{")
    assert not list(out.parent.glob("*.part"))


def test_unwritable_output_is_a_clear_error(cli, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = cli("scan", "--output", str(blocker / "r.json"), str(f))
    assert res.exit_code == 2
    assert "cannot write report" in res.stderr


def test_console_report_states_coverage_and_verdict(cli, tmp_path):
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\x02\x03")
    res = cli("scan", str(tmp_path))
    assert res.exit_code == 1
    out = res.stdout
    assert "coverage: none" in out
    assert "1 full, 0 partial, 1 not analyzable" in out
    assert "verdict: BLOCK" in out


def test_paths_are_relative_to_the_scanned_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("a\n")
    report = scan(tmp_path)
    assert [fr.path for fr in report.files] == ["x/a.txt"]


def test_multiple_targets_are_qualified(tmp_path):
    a = tmp_path / "one"
    b = tmp_path / "two"
    for d in (a, b):
        d.mkdir()
        (d / "f.txt").write_text("x\n")
    report = scan(a, b)
    assert sorted(fr.path for fr in report.files) == sorted([f"{a}/f.txt", f"{b}/f.txt"])


def test_version_command(cli):
    res = cli("version")
    assert res.exit_code == 0
    assert "rule database" in res.stdout


def test_text_head_with_binary_tail_is_not_text(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello world\n" * 1000 + b"\x00\x01payload")
    report = scan(f)
    assert report.files[0].format != "text"


def test_name_claims_are_checked_against_content(tmp_path):
    f = tmp_path / "model.json"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    report = scan(f)
    assert "FORMAT-NAME-MISMATCH" in rule_ids(report)


def test_git_internals_are_listed_not_scanned(tmp_path):
    d = tmp_path / "repo"
    (d / ".git" / "objects").mkdir(parents=True)
    (d / ".git" / "objects" / "ab").write_bytes(b"\x78\x01garbage")
    (d / "config.json").write_text("{}")
    report = scan(d)
    assert [fr.path for fr in report.files if fr.path.startswith(".git")] == [".git/"]
    assert "VCS-METADATA" in rule_ids(report)
    assert report.verdict.decision.value == "allow"


def test_cache_makes_audits_incremental(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELWARD_CACHE_DIR", str(tmp_path / "cache"))
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "a.json").write_text('{"a": 1}')
    (zoo / "b.bin").write_bytes(b"\x00\x01\x02")
    import json as _json

    first = _json.loads(cli("scan", "--cache", "--format", "json", str(zoo)).stdout)
    assert not any(f["cached"] for f in first["files"])
    (zoo / "a.json").write_text('{"a": 2}')
    second = _json.loads(cli("scan", "--cache", "--format", "json", str(zoo)).stdout)
    cached = {f["path"]: f["cached"] for f in second["files"]}
    assert cached == {"a.json": False, "b.bin": True}
    blob = next(f for f in second["files"] if f["path"] == "b.bin")
    assert blob["coverage"] == "none" and blob["findings"][0]["rule_id"] == "FORMAT-UNKNOWN"


def test_every_command_renders_its_help(cli):
    from scanner.cli import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"scan", "sign", "verify", "lock", "check"} <= set(names)
    for name in names:
        res = cli(name, "--help")
        assert res.exit_code == 0, f"{name} --help failed: {res.output[-300:]}"
        assert "Usage" in res.output


def test_parallel_scan_matches_serial(cli, tmp_path):
    import json as _json
    import shutil

    from tests.harness import FIXTURES

    zoo = tmp_path / "zoo"
    shutil.copytree(FIXTURES / "pickle" / "malicious" / "raw", zoo / "raw")
    shutil.copytree(FIXTURES / "pickle" / "benign" / "torch", zoo / "torch")
    serial = cli("scan", "--format", "json", str(zoo))
    parallel = cli("scan", "--format", "json", "-j", "2", str(zoo))
    assert serial.exit_code == parallel.exit_code == 1

    def digest(out: str) -> list[tuple[str, str, list[str]]]:
        doc = _json.loads(out)
        return [(f["path"], f["coverage"], sorted(x["rule_id"] for x in f["findings"])) for f in doc["files"]]

    assert digest(serial.stdout) == digest(parallel.stdout)


def test_large_json_is_checked_as_text_without_parsing(tmp_path):
    f = tmp_path / "tokenizer.json"
    with f.open("w") as fh:
        fh.write('{"vocab": [')
        fh.write('"tok",' * (6 << 20))
        fh.write('"end"]}')
    report = scan(f)
    assert report.files[0].format == "json"
    assert "JSON-NOT-VALIDATED" in rule_ids(report)
    assert report.verdict.decision.value == "allow"
    with f.open("ab") as fh:
        fh.write(b"\x00binary tail")
    tainted = rule_ids(scan(f))
    assert "JSON-INVALID" in tainted and "JSON-NOT-VALIDATED" not in tainted


def test_a_crashing_sniffer_never_lets_a_file_pass_as_text(tmp_path, monkeypatch):
    """A protocol-0 pickle is ASCII: if the pickle sniffer crashed, the text sniffer would claim it."""
    import dataclasses

    from scanner.formats import detect

    def boom(head, reader):
        raise RuntimeError("sniffer bug")

    patched = tuple(
        dataclasses.replace(h, sniff=boom) if h.name == "pickle" else h for h in detect.handlers()
    )
    monkeypatch.setattr(detect, "handlers", lambda: patched)
    f = tmp_path / "notes.txt"
    f.write_bytes(b"cos\nsystem\n(S'touch /tmp/modelward-canary'\ntR.")
    report = scan(f)
    assert report.files[0].format == "text"
    assert "INSPECTOR-ERROR" in rule_ids(report)
    assert report.files[0].coverage.value == "partial"
    assert report.verdict.decision.value == "block"
