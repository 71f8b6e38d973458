"""Extended tar headers applied the way Python's tarfile applies them, not the way they read.

tarfile resolves a member recursively: its own header first (the data it skips is that header's size, and
the global PAX records are applied after: a global ``size`` changes how much it reads, not where the next
header is), then each extended header from the last one before the member out to the first, so the first
one wins; an ``x`` header carrying ``size`` also moves the next header. The scanner let the last one win
and moved on by a global size, so a second ``x`` header (or a global ``size``) made it read one big
benign-looking member where tarfile (torch's legacy tar loader, NeMo) reads a second, evil one. Each blob
here ran its payload under the real loader (torch 2.13 ``torch.load``; ``tarfile`` + ``pickle.load``).
"""

from __future__ import annotations

import pickle
import tarfile

import pytest

from scanner.findings import Decision
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, scan_on_disk, verdict

BLOCK = 512
BENIGN = pickle.dumps({"protocol_version": 1001}, protocol=2)


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % BLOCK)


def _header(name: str, size: int, typ: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = typ
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _pax(records: dict[str, str], typ: bytes = tarfile.XHDTYPE) -> bytes:
    body = b""
    for key, value in records.items():
        rec = f" {key}={value}\n"
        n = len(rec) + len(str(len(rec)))
        n += len(str(n)) - len(str(len(rec)))
        body += f"{n}{rec}".encode()
    return _header("././@PaxHeader", len(body), typ) + _pad(body)


def _member(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + _pad(data)


def _stacked_x(first_size: int, second_size: int, name: str, content: bytes) -> bytes:
    return (
        _pax({"size": str(first_size)}) + _pax({"size": str(second_size)}) + _header(name, 0) + _pad(content)
    )


def legacy_two_x(with_pickle_member: bool = False) -> bytes:
    """torch legacy tar: tarfile reads 'sys_info' with the first x header's size, then 'storages' (evil)."""
    evil = _member("storages", EVIL_PICKLE)
    blob = _stacked_x(len(BENIGN), len(_pad(BENIGN)) + len(evil), "sys_info", BENIGN) + evil
    if with_pickle_member:
        blob += _member("pickle", BENIGN)
    return blob + b"\0" * 1024


def global_size() -> bytes:
    """A global PAX size: tarfile reads 'a.pkl' with it but finds 'b.pkl' (evil) at a.pkl's header size."""
    evil = _member("b.pkl", EVIL_PICKLE)
    big = len(_pad(BENIGN)) + len(evil)
    return _pax({"size": str(big)}, tarfile.XGLTYPE) + _member("a.pkl", BENIGN) + evil + b"\0" * (big + 1024)


def _tarfile_view(blob: bytes) -> list[tuple[str, int]]:
    import io

    with tarfile.open(fileobj=io.BytesIO(blob)) as t:
        return [(m.name, m.size) for m in t.getmembers()]


def test_tarfile_applies_the_first_extended_header():
    # the model the fixes follow, checked against the tarfile these tests run on
    assert _tarfile_view(legacy_two_x()) == [("sys_info", len(BENIGN)), ("storages", len(EVIL_PICKLE))]
    big = len(_pad(BENIGN)) + len(_member("b.pkl", EVIL_PICKLE))
    assert _tarfile_view(global_size()) == [("a.pkl", big), ("b.pkl", big)]


def test_second_pax_size_does_not_hide_the_next_member(tmp_path):
    fr = scan_on_disk(tmp_path, legacy_two_x(), name="model.tar")
    assert fr.format == "pytorch-legacy-tar"  # tarfile's reading holds 'storages': torch's legacy tar branch
    assert blocked_for_payload(fr)
    assert "model.tar!storages@0" in fr.members  # the legacy handler walks the storages stream it unpickles
    assert any(
        "extended headers set the member's size" in f.message for f in findings(fr, "ARCHIVE-MALFORMED")
    )


def test_global_pax_size_does_not_move_the_next_header(tmp_path):
    fr = scan_on_disk(tmp_path, global_size(), name="weights.tar")
    assert blocked_for_payload(fr)
    assert "weights.tar!b.pkl" in fr.members
    assert verdict(fr) is Decision.BLOCK


def test_gnu_long_name_before_pax_path_wins(tmp_path):
    name = b"from_long_name"
    long_name = _header("././@LongLink", len(name) + 1, tarfile.GNUTYPE_LONGNAME) + _pad(name + b"\0")
    blob = long_name + _pax({"path": "from_pax"}) + _member("f", b"abc") + b"\0" * 1024
    assert [n for n, _ in _tarfile_view(blob)] == ["from_long_name"]
    fr = scan_on_disk(tmp_path, blob, name="x.tar")
    assert fr.members == ["x.tar!from_long_name"]
    assert findings(fr, "ARCHIVE-MALFORMED")


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_real_tar_writers_are_clean(tmp_path, fmt):
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers={"comment": "abc"}) as t:
        for name, data in (("dir/" + "n" * 90 + "/" + "m" * 60 + ".json", b"{}\n"), ("a.txt", b"hello\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    fr = scan_on_disk(tmp_path, buf.getvalue(), name="x.tar")
    assert not findings(fr, "ARCHIVE-MALFORMED")
    assert verdict(fr) is Decision.ALLOW


def test_legacy_torch_tar_walk_follows_tarfile(tmp_path):
    # torch.load ran the 'storages' pickle; the legacy tar handler judged only sys_info and pickle
    fr = scan_on_disk(tmp_path, legacy_two_x(with_pickle_member=True), name="model.pt")
    assert blocked_for_payload(fr)
