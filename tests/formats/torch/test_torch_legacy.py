"""Legacy torch files: stacked pickles (all five analyzed) and the tar format."""

from __future__ import annotations

import io
import struct
import tarfile
import time

import pytest

from scanner.findings import Coverage, Decision, FileResult
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.formats.pickle import NOT_LITERAL, read_literal
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from scanner.rules import get_rule_db
from tests.formats.builders import data
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, rule_ids, scan_on_disk, verdict

MAGIC_PICKLE = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
PROTO_PICKLE = b"\x80\x02M\xe9\x03."


def _sys_info_end(blob: bytes) -> int:
    start = len(MAGIC_PICKLE) + len(PROTO_PICKLE)
    # sys_info is a dict pickle ending "uu." right before the data pickle's PROTO
    return blob.index(b"uu.\x80\x02", start) + 3


def test_real_legacy_file_is_clean_structurally(tmp_path):
    fr = scan_on_disk(tmp_path, data("legacy.pt"))
    assert fr.format == "pytorch-legacy"
    assert "TORCH-LEGACY-FORMAT" in rule_ids(fr)
    assert not findings(fr, "TORCH-STORAGE-INVALID")
    assert not findings(fr, "INSPECTOR-ERROR")
    assert fr.coverage is Coverage.FULL


@pytest.mark.parametrize("slot", ["magic", "protocol", "sys_info", "keys"])
def test_payload_in_any_of_the_leading_pickles(tmp_path, slot):
    blob = data("legacy.pt")
    m, p = len(MAGIC_PICKLE), len(MAGIC_PICKLE) + len(PROTO_PICKLE)
    s = _sys_info_end(blob)
    if slot == "magic":
        out = EVIL_PICKLE + blob[m:]
    elif slot == "protocol":
        out = blob[:m] + EVIL_PICKLE + blob[p:]
    elif slot == "sys_info":
        out = blob[:p] + EVIL_PICKLE + blob[s:]
    else:  # the storage-key list: put the payload between the data pickle and the keys
        data_end = blob.index(b"u.\x80\x02]", s) + 2
        out = blob[:data_end] + EVIL_PICKLE + blob[data_end:]
    fr = scan_on_disk(tmp_path, out)
    assert fr.format == "pytorch-legacy"
    assert blocked_for_payload(fr)
    assert verdict(fr) is Decision.BLOCK


def test_magic_computed_by_reduce_is_still_legacy(tmp_path):
    blob = data("legacy.pt")
    reduce_magic = b"\x80\x02cbuiltins\neval\nX\x16\x00\x00\x000x1950a86a20f9469cfc6c\x85R."
    fr = scan_on_disk(tmp_path, reduce_magic + blob[len(MAGIC_PICKLE) :])
    assert fr.format == "pytorch-legacy"
    assert any("eval" in f.message for f in fr.findings if f.rule_id.startswith("PICKLE"))
    assert verdict(fr) is Decision.BLOCK


def test_truncated_storage_section(tmp_path):
    blob = data("legacy.pt")
    fr = scan_on_disk(tmp_path, blob[:-10])
    assert "TORCH-STORAGE-INVALID" in rule_ids(fr)
    assert verdict(fr) is Decision.BLOCK


def test_trailing_payload_after_storages(tmp_path):
    fr = scan_on_disk(tmp_path, data("legacy.pt") + EVIL_PICKLE)
    assert "TORCH-UNEXPECTED-MEMBER" in rule_ids(fr)
    assert blocked_for_payload(fr)


def test_storage_count_mismatch(tmp_path):
    blob = bytearray(data("legacy.pt"))
    # first storage record: 8-byte count right after the keys pickle (ends with "e.")
    keys_end = blob.index(b"e.", _sys_info_end(bytes(blob))) + 2
    (numel,) = struct.unpack("<q", blob[keys_end : keys_end + 8])
    blob[keys_end : keys_end + 8] = struct.pack("<q", numel + 1000)
    fr = scan_on_disk(tmp_path, bytes(blob))
    assert "TORCH-STORAGE-INVALID" in rule_ids(fr)


def test_storage_key_literal_refuses_globals():
    # the legacy loader's key list and counts are read by the pickle walker, never by a second decoder
    keys = b"\x80\x02]q\x00(X\x01\x00\x00\x000q\x01X\x01\x00\x00\x001q\x02e."
    ctx = InspectContext(
        ScanState(
            get_rule_db(),
            Limits(),
            FileResult(path="k", size=0, format="pickle"),
            1 << 30,
            time.monotonic() + 60,
        ),
        "k",
        dispatch=inspect_with_detection,
    )
    assert read_literal(BytesReader(keys, "k"), ctx, 0, len(keys)) == ["0", "1"]
    assert read_literal(BytesReader(EVIL_PICKLE, "e"), ctx, 0, len(EVIL_PICKLE)) is NOT_LITERAL


# --------------------------------------------------------------------------- legacy tar

STORAGE_ARGS = b"\x80\x02X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\n\x87."
TENSOR_ARGS = b"\x80\x02X\x01\x00\x00\x00tK\x00ctorch\nFloatTensor\n\x87."
SYS_INFO = b"\x80\x02}q\x00X\x10\x00\x00\x00protocol_versionM\xe9\x03s."
MAIN = b"\x80\x02X\x01\x00\x00\x00t."


def legacy_tar(
    pickle_member: bytes = MAIN, storages: bytes | None = None, extra: dict[str, bytes] | None = None
) -> bytes:
    if storages is None:
        storages = b"\x80\x02K\x01." + STORAGE_ARGS + struct.pack("<q", 2) + b"\0" * 8
    tensors = (
        b"\x80\x02K\x01." + TENSOR_ARGS + struct.pack("<i", 1) + b"\0" * 4 + struct.pack("<qqq", 2, 1, 0)
    )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, body in [
            ("sys_info", SYS_INFO),
            ("pickle", pickle_member),
            ("storages", storages),
            ("tensors", tensors),
            *(extra or {}).items(),
        ]:
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    return buf.getvalue()


def test_legacy_tar_benign_walks_cleanly(tmp_path):
    fr = scan_on_disk(tmp_path, legacy_tar())
    assert fr.format == "pytorch-legacy-tar"
    assert "TORCH-LEGACY-TAR" in rule_ids(fr)
    assert not findings(fr, "TORCH-STORAGE-INVALID"), [f.message for f in fr.findings]
    assert not findings(fr, "INSPECTOR-ERROR")


def test_legacy_tar_with_malicious_pickle_member(tmp_path):
    fr = scan_on_disk(tmp_path, legacy_tar(pickle_member=EVIL_PICKLE))
    assert fr.format == "pytorch-legacy-tar"
    assert blocked_for_payload(fr)


def test_legacy_tar_payload_inside_storages_member(tmp_path):
    storages = b"\x80\x02K\x01." + EVIL_PICKLE + struct.pack("<q", 2) + b"\0" * 8
    fr = scan_on_disk(tmp_path, legacy_tar(storages=storages))
    assert blocked_for_payload(fr)


def test_legacy_tar_unexpected_member(tmp_path):
    fr = scan_on_disk(tmp_path, legacy_tar(extra={"notes": EVIL_PICKLE}))
    assert "TORCH-UNEXPECTED-MEMBER" in rule_ids(fr)
    assert blocked_for_payload(fr)
