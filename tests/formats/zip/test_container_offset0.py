"""The structure at offset 0 decides: a zip inside a tar member is that member, a zip outside the members is a polyglot."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from tests.harness import make_tar, make_zip, path_verdict, scan

CFG = b"target: nemo.collections.asr.models.EncDecCTCModel\n"
ZIP = make_zip({"archive/data.txt": b"hello", "archive/version": b"3\n"})


def _formats(path: Path) -> tuple[str, list[str]]:
    fr = scan(path).files[0]
    return fr.format, fr.formats


@pytest.mark.parametrize("layout", ["last", "middle", "only", "pax_long_name"])
def test_zip_inside_tar_member_is_a_member(tmp_path: Path, layout: str) -> None:
    members = {
        "last": [("./model_config.yaml", CFG), ("./weights.zip", ZIP)],
        "middle": [("a.txt", b"x" * 700), ("inner.zip", ZIP), ("z.txt", b"tail\n")],
        "only": [("inner.zip", ZIP)],
        "pax_long_name": [("d/" + "n" * 150 + ".zip", ZIP), ("readme.txt", b"hi\n")],
    }[layout]
    import tarfile

    data = make_tar(members, fmt=tarfile.PAX_FORMAT if layout == "pax_long_name" else tarfile.GNU_FORMAT)
    p = tmp_path / "m.tar"
    p.write_bytes(data)
    fmt, _ = _formats(p)
    assert fmt in ("tar-archive", "nemo-archive")
    decision, rules = path_verdict(p)
    assert decision == "allow", rules
    assert not {"ZIP-PREFIX-DATA", "ZIP-EXTRA-DATA", "ARCHIVE-MALFORMED"} & set(rules)


def test_gzipped_tar_with_trailing_zip_member(tmp_path: Path) -> None:
    p = tmp_path / "m.nemo"
    p.write_bytes(gzip.compress(make_tar([("./model_config.yaml", CFG), ("./weights.zip", ZIP)]), mtime=0))
    decision, rules = path_verdict(p)
    assert decision == "allow", rules
    assert "nemo-archive" in scan(p).files[0].formats


def test_zip_appended_after_tar_is_still_a_polyglot(tmp_path: Path) -> None:
    # the zip lies after the tar's end: zip readers see it, tar readers do not; both views are inspected
    payload = pickle.dumps(eval, protocol=2)  # noqa: S307 - only pickled (a reference to builtins.eval), never called
    p = tmp_path / "poly.tar"
    p.write_bytes(make_tar([("a.txt", b"x")]) + make_zip({"evil.pkl": payload}))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert any(r.startswith("PICKLE") for r in rules), rules


def test_zip_spanning_two_members_is_a_polyglot(tmp_path: Path) -> None:
    # local headers in one member, central directory in the next: not one member's content
    z = make_zip({"evil.pkl": pickle.dumps(eval, protocol=2)})  # noqa: S307 - pickled reference only
    cd = z.find(b"PK\x01\x02")
    p = tmp_path / "span.tar"
    p.write_bytes(make_tar([("part1", z[:cd]), ("part2", z[cd:])]))
    decision, rules = path_verdict(p)
    assert decision == "block"
