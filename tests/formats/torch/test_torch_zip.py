"""PyTorch zip checkpoints: real torch files plus hand-made malicious variants."""

from __future__ import annotations

import struct
import zlib

import pytest

from scanner.findings import Coverage, Decision
from scanner.limits import Limits
from tests.formats.builders import Member, build_zip, data, torch_members
from tests.harness import (
    BENIGN_PICKLE,
    EVIL_PICKLE,
    EVIL_PICKLE_P0,
    blocked_for_payload,
    findings,
    rule_ids,
    scan_on_disk,
    verdict,
)

STRUCTURAL = {"ZIP-", "ARCHIVE-", "TORCH-", "FORMAT-", "INSPECTOR-", "LIMIT-", "FILE-"}


def structural(fr) -> set[str]:
    return {r for r in rule_ids(fr) if any(r.startswith(p) for p in STRUCTURAL)}


def members(name: str = "state_dict.pt") -> list[Member]:
    return torch_members(data(name))


def _index(ms: list[Member], suffix: str) -> int:
    return next(i for i, m in enumerate(ms) if m.name.endswith(suffix))


def test_real_state_dict_is_structurally_clean(tmp_path):
    fr = scan_on_disk(tmp_path, data("state_dict.pt"))
    assert fr.format == "pytorch-zip"
    assert structural(fr) == set()
    assert fr.coverage is Coverage.FULL
    assert any(m.endswith("state_dict/data.pkl") for m in fr.members)
    assert not any("/data/" in m for m in fr.members), "raw storages must not be inspected as content"


def test_rebuilt_zip_is_equivalent(tmp_path):
    # sanity check of the test zip writer: the same members rebuilt scan clean too
    fr = scan_on_disk(tmp_path, build_zip(members()))
    assert fr.format == "pytorch-zip"
    assert structural(fr) == set()


@pytest.mark.parametrize("evil_first", [True, False])
def test_duplicate_data_pkl_both_copies_inspected(tmp_path, evil_first):
    ms = members()
    i = _index(ms, "/data.pkl")
    evil = Member(ms[i].name, EVIL_PICKLE)
    ms[i:i] = [evil] if evil_first else []
    if not evil_first:
        ms.append(evil)
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert "ZIP-DUPLICATE-NAME" in rule_ids(fr)
    assert blocked_for_payload(fr)
    assert verdict(fr) is Decision.BLOCK


def test_local_central_name_mismatch(tmp_path):
    ms = members()
    i = _index(ms, "/data.pkl")
    ms[i] = Member(ms[i].name, EVIL_PICKLE, local_name="state_dict/harmless.txt")
    fr = scan_on_disk(tmp_path, build_zip(ms))
    (f,) = findings(fr, "ZIP-NAME-MISMATCH")
    assert "name" in f.evidence["central_vs_local"]
    assert blocked_for_payload(fr)


def test_method_mismatch_is_reported(tmp_path):
    ms = members()
    ms[0].local_method = 8
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert "method" in findings(fr, "ZIP-NAME-MISMATCH")[0].evidence["central_vs_local"]


def test_crc_mismatch_still_inspected(tmp_path):
    ms = members()
    i = _index(ms, "/data.pkl")
    ms[i] = Member(ms[i].name, EVIL_PICKLE, crc=0xDEADBEEF)
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert "ZIP-CRC-MISMATCH" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_encrypted_member_before_data_pkl_does_not_hide_it(tmp_path):
    ms = members()
    i = _index(ms, "/data.pkl")
    ms[i] = Member(ms[i].name, EVIL_PICKLE)
    ms.insert(0, Member("state_dict/locked", b"secret", flags=0x1))
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert "ARCHIVE-ENCRYPTED" in rule_ids(fr)
    assert fr.coverage is Coverage.PARTIAL
    assert blocked_for_payload(fr)


@pytest.mark.parametrize(
    "name", ["state_dict/constants.bin", "state_dict/payload", "state_dict/data/extra/x"]
)
@pytest.mark.parametrize("payload", [EVIL_PICKLE, EVIL_PICKLE_P0])
def test_pickle_hidden_in_unexpected_member(tmp_path, name, payload):
    ms = members() + [Member(name, payload)]
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert any(name in f.message for f in findings(fr, "TORCH-UNEXPECTED-MEMBER"))
    assert blocked_for_payload(fr)


def test_deflated_hidden_member(tmp_path):
    ms = members() + [Member("state_dict/blob", EVIL_PICKLE, method=8)]
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert blocked_for_payload(fr)


@pytest.mark.parametrize("adjust", [False, True])
def test_pickle_prefix_polyglot(tmp_path, adjust):
    blob = build_zip(members(), prefix=EVIL_PICKLE, adjust_offsets=adjust)
    fr = scan_on_disk(tmp_path, blob)
    assert fr.format == "pytorch-zip"
    assert "ZIP-PREFIX-DATA" in rule_ids(fr)
    assert any(f.path.endswith("!<prefix>") for f in fr.findings if f.rule_id.startswith("PICKLE"))
    assert blocked_for_payload(fr)


def test_real_zip_with_prefix(tmp_path):
    fr = scan_on_disk(tmp_path, EVIL_PICKLE + data("state_dict.pt"))
    assert "ZIP-PREFIX-DATA" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_trailing_pickle_after_zip(tmp_path):
    fr = scan_on_disk(tmp_path, build_zip(members(), trailing=EVIL_PICKLE))
    assert "ZIP-EXTRA-DATA" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_storage_reference_to_missing_key(tmp_path):
    ms = members()
    i = _index(ms, "/data/0")
    ms[i].name = "state_dict/data/9"
    fr = scan_on_disk(tmp_path, build_zip(ms))
    msgs = [f.message for f in findings(fr, "TORCH-STORAGE-INVALID")]
    assert any("'0'" in m and "no data/0" in m for m in msgs)
    assert any("data/9" in f.message for f in findings(fr, "TORCH-UNEXPECTED-MEMBER"))
    assert verdict(fr) is Decision.BLOCK


def _patch_data_pkl(ms: list[Member], old: bytes, new: bytes) -> None:
    i = _index(ms, "/data.pkl")
    assert old in ms[i].data
    ms[i].data = ms[i].data.replace(old, new, 1)


def test_storage_numel_larger_than_record(tmp_path):
    ms = members()
    # storage '0' is FloatStorage with 12 elements (48 bytes); claim 200
    _patch_data_pkl(ms, b"cpuq\x07K\x0ct", b"cpuq\x07K\xc8t")
    fr = scan_on_disk(tmp_path, build_zip(ms))
    (f,) = findings(fr, "TORCH-STORAGE-INVALID")
    assert "200 x 4" in f.message
    assert verdict(fr) is Decision.BLOCK


def test_unknown_storage_type(tmp_path):
    ms = members()
    _patch_data_pkl(ms, b"torch\nFloatStorage\n", b"torch\nEvilxStorage\n")
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert any("unknown storage type" in f.message for f in findings(fr, "TORCH-STORAGE-INVALID"))


def test_payload_disguised_as_storage(tmp_path):
    ms = members()
    i = _index(ms, "/data/0")
    ms[i].data = EVIL_PICKLE.ljust(64, b"\0")
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert blocked_for_payload(fr)


def test_zip_disguised_as_storage_is_opened(tmp_path):
    ms = members()
    i = _index(ms, "/data/1")
    ms[i].data = build_zip([Member("inner.pkl", EVIL_PICKLE)])
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert blocked_for_payload(fr)


def test_overlapping_entries(tmp_path):
    blob = bytearray(build_zip(members()))
    # append a second central record pointing at the first local header (same bytes, new name)
    eocd = blob.rfind(b"PK\x05\x06")
    _, _, _, n, total, cd_size, cd_off, _ = struct.unpack("<4sHHHHIIH", blob[eocd : eocd + 22])
    first = bytes(blob[cd_off : cd_off + 46])
    nlen = struct.unpack("<H", first[28:30])[0]
    rec = bytearray(first + b"state_dict/alias.pkl")
    rec[28:30] = struct.pack("<H", len(b"state_dict/alias.pkl"))
    new_cd = bytes(blob[cd_off : cd_off + cd_size]) + bytes(rec)
    assert nlen > 0
    out = (
        bytes(blob[:cd_off])
        + new_cd
        + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n + 1, total + 1, len(new_cd), cd_off, 0)
    )
    fr = scan_on_disk(tmp_path, out)
    assert "ZIP-OVERLAP" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


def test_zip_bomb_stops_at_ratio(tmp_path):
    bomb = Member("state_dict/big", b"\0" * (40 << 20), method=8)
    fr = scan_on_disk(tmp_path, build_zip(members() + [bomb]))
    (f,) = findings(fr, "ARCHIVE-BOMB")
    assert f.evidence["stopped_at"] <= max(f.evidence["compressed_size"] * 200, 1 << 20) + 1
    assert fr.coverage is not Coverage.FULL


def test_too_many_members(tmp_path):
    ms = members() + [Member(f"state_dict/extra/{i}", b"x") for i in range(20)]
    fr = scan_on_disk(tmp_path, build_zip(ms), limits=Limits(max_members=8))
    assert "ARCHIVE-TOO-MANY-MEMBERS" in rule_ids(fr)
    assert fr.coverage is Coverage.PARTIAL


def test_path_traversal_and_symlink(tmp_path):
    ms = members() + [
        Member("../../etc/evil", b"x"),
        Member("C:\\evil.txt", b"x"),
        Member("state_dict/link", b"/etc/passwd", external_attr=(0o120777 << 16)),
    ]
    fr = scan_on_disk(tmp_path, build_zip(ms))
    names = [f.evidence["name"] for f in findings(fr, "ARCHIVE-PATH-TRAVERSAL")]
    assert "../../etc/evil" in names and "C:\\evil.txt" in names
    assert "ARCHIVE-SYMLINK" in rule_ids(fr)


def test_truncated_torch_zip_is_not_clean(tmp_path):
    blob = data("state_dict.pt")
    fr = scan_on_disk(tmp_path, blob[: len(blob) // 2])
    assert "ARCHIVE-MALFORMED" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


def test_truncated_zip_still_shows_payload(tmp_path):
    ms = members()
    i = _index(ms, "/data.pkl")
    ms[i] = Member(ms[i].name, EVIL_PICKLE)
    ms.insert(0, ms.pop(i))
    blob = build_zip(ms)
    fr = scan_on_disk(tmp_path, blob[: blob.find(b"PK\x01\x02") - 3])
    assert "ARCHIVE-MALFORMED" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_unsupported_method_fails_closed(tmp_path):
    ms = members()
    ms.append(Member("state_dict/odd", b"abc", method=93))
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert "ARCHIVE-UNSUPPORTED" in rule_ids(fr)
    assert fr.coverage is not Coverage.FULL


def test_two_central_directories_both_read(tmp_path):
    # miniz trusts the recorded CD offset, Python the recorded size: give each its own directory
    benign = build_zip(
        [Member("a/data.pkl", BENIGN_PICKLE), Member("a/version", b"3\n"), Member("a/extra/pad", b"p" * 300)]
    )
    eocd = benign.rfind(b"PK\x05\x06")
    cd_off = struct.unpack("<I", benign[eocd + 16 : eocd + 20])[0]
    body, cd_a = benign[:cd_off], benign[cd_off:eocd]
    evil_local = (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            0,
            0,
            0,
            0x21,
            zlib.crc32(EVIL_PICKLE),
            len(EVIL_PICKLE),
            len(EVIL_PICKLE),
            10,
            0,
        )
        + b"a/data.pkl"
        + EVIL_PICKLE
    )
    evil_pos = len(body) + len(cd_a)
    start_b = evil_pos + len(evil_local)
    concat = start_b - cd_off  # Python adds this to every recorded offset
    cd_b = (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            0x031E,
            20,
            0,
            0,
            0,
            0x21,
            zlib.crc32(EVIL_PICKLE),
            len(EVIL_PICKLE),
            len(EVIL_PICKLE),
            10,
            0,
            0,
            0,
            0,
            0,
            evil_pos - concat,
        )
        + b"a/data.pkl"
    )
    blob = (
        body
        + cd_a
        + evil_local
        + cd_b
        + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(cd_b), cd_off, 0)
    )
    fr = scan_on_disk(tmp_path, blob)
    assert any("two readable central directories" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))
    assert blocked_for_payload(fr)
