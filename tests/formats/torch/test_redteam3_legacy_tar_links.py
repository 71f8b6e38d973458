"""Red team 3: links in a legacy torch tar are read as the member they name.

torch's legacy tar branch does ``tar.extract("storages")``, ``tar.extract("tensors")`` and
``tar.extractfile("pickle")``. ``tarfile`` reads a link as its target (``_find_link_target``):
``extractfile`` follows symlinks (relative to the link's folder, searched in the whole archive) and hard
links (an archive path among the members *before* the link), and ``extract`` of a hard link whose target
is not on disk copies the target's content. So a hard link named ``storages`` to a member ``x`` makes
torch walk ``x`` as the storages stream: count pickle, header pickle, raw bytes, next header pickle...
The inspector used to report the link (ARCHIVE-SYMLINK) and judge ``x`` only as unexpected content,
where the walk stops at the first raw bytes and never reaches the payload torch runs. Each shape here
was checked to run its payload with torch 2.13.0 (``weights_only=False``); nothing here is unpickled.

A link name longer than 100 bytes is a GNU long-link record, which the walk ignored.

After the storages torch also unpickles the storage-views pickle from the same member; it used to be
reported as unexplained bytes.
"""

from __future__ import annotations

import io
import struct
import tarfile

from scanner.formats.torch_legacy import TarMember, link_index, link_target
from tests.harness import blocked_for_payload, detect_bytes, evil_pickle, findings, rule_ids

EVIL = evil_pickle(2)
STORAGE_HEADER = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."
EMPTY_STORAGES = b"\x80\x02K\x00.\x80\x02]."  # no storages, then an empty storage-views list
EMPTY_TENSORS = b"\x80\x02K\x00."


def storages_with_payload_after_raw_bytes() -> bytes:
    """2 storages: raw bytes after the first end a generic pickle walk; the second header is the payload."""
    return b"\x80\x02K\x02." + STORAGE_HEADER + struct.pack("<q", 1) + b"\x04\x00\x00\x00" + EVIL


def tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """(name, 'f'|'s'|'h', content or link target) members, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, kind, val in entries:
            ti = tarfile.TarInfo(name)
            if kind == "f":
                assert isinstance(val, bytes)
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val))
            else:
                assert isinstance(val, str)
                ti.type = tarfile.SYMTYPE if kind == "s" else tarfile.LNKTYPE
                ti.linkname = val
                t.addfile(ti)
    return buf.getvalue()


def _payload_through_link(data: bytes) -> bool:
    fr = detect_bytes(data, "model.pt")
    assert fr.format == "pytorch-legacy-tar", fr.format
    assert blocked_for_payload(fr), sorted(rule_ids(fr))
    return any("->" in f.path for f in fr.findings if f.rule_id == "PICKLE-DANGEROUS-GLOBAL")


def test_hard_link_storages_is_walked_as_storages() -> None:
    data = tar([("x", "f", storages_with_payload_after_raw_bytes()), ("storages", "h", "x")])
    assert _payload_through_link(data)


def test_hard_link_tensors_is_walked_as_tensors() -> None:
    data = tar(
        [
            ("storages", "f", EMPTY_STORAGES),
            ("x", "f", b"\x80\x02K\x01." + EVIL),
            ("tensors", "h", "x"),
            ("pickle", "f", b"N."),
        ]
    )
    assert _payload_through_link(data)


def test_symlink_pickle_in_a_folder() -> None:
    data = tar(
        [
            ("storages", "f", EMPTY_STORAGES),
            ("tensors", "f", EMPTY_TENSORS),
            ("dir/x", "f", EVIL),
            ("pickle", "s", "dir/x"),
        ]
    )
    assert _payload_through_link(data)


def test_link_chains_relative_symlink_and_dot_slash_hard_link() -> None:
    rel = tar(
        [
            ("storages", "f", EMPTY_STORAGES),
            ("tensors", "f", EMPTY_TENSORS),
            ("a/x", "f", EVIL),
            ("a/b", "s", "x"),  # relative to a/
            ("pickle", "h", "a/b"),
        ]
    )
    assert _payload_through_link(rel)
    dot = tar(
        [
            ("storages", "f", EMPTY_STORAGES),
            ("tensors", "f", EMPTY_TENSORS),
            ("x", "f", EVIL),
            ("y", "h", "x"),
            ("pickle", "h", "./y"),
        ]
    )
    assert _payload_through_link(dot)


def _m(name: str, kind: bytes, link: str = "") -> TarMember:
    return TarMember(name, kind, 0, 0, link)


def test_link_resolution_follows_tarfile() -> None:
    members = [
        _m("x", b"0"),
        _m("fwd", b"1", "later"),  # a hard link only sees earlier members
        _m("later", b"0"),
        _m("sym", b"2", "later"),  # a symlink sees the whole archive
        _m("loop", b"2", "loop"),
        _m("d", b"5"),
        _m("todir", b"2", "d"),
        _m("x", b"0"),  # a second 'x': the last match wins
        _m("hx", b"1", "x"),
    ]
    index = link_index(members)
    assert link_target(members, 1, index) is None
    assert link_target(members, 3, index) is members[2]
    assert link_target(members, 4, index) is None
    assert link_target(members, 6, index) is None
    assert link_target(members, 8, index) is members[7]


def test_storage_views_pickle_is_read_not_reported_as_trailing() -> None:
    benign = tar([("storages", "f", EMPTY_STORAGES), ("tensors", "f", EMPTY_TENSORS), ("pickle", "f", b"N.")])
    fr = detect_bytes(benign, "model.pt")
    assert "TORCH-STORAGE-INVALID" not in rule_ids(fr)
    evil_views = tar(
        [("storages", "f", b"\x80\x02K\x00." + EVIL), ("tensors", "f", EMPTY_TENSORS), ("pickle", "f", b"N.")]
    )
    fr = detect_bytes(evil_views, "model.pt")
    assert blocked_for_payload(fr)
    assert not findings(fr, "TORCH-STORAGE-INVALID")


def test_gnu_long_link_name_is_the_target_not_the_truncated_header_field() -> None:
    """tarfile writes a link name over 100 bytes as a GNU 'K' record and reads the link by it; the header's
    own (truncated) field names a decoy here, whose benign storages would be judged instead."""
    long_path = "d/" * 60 + "x"
    decoy = long_path[:100]
    data = tar(
        [
            (long_path, "f", storages_with_payload_after_raw_bytes()),
            (decoy, "f", EMPTY_STORAGES),
            ("storages", "h", long_path),
        ]
    )
    assert _payload_through_link(data)
