"""Red team 6: the element size of a legacy tar storage comes from the storage type its header returns.

torch's legacy tar branch reads ``key, location, storage_type = pickle.load(f)`` from the 'storages' member,
then an int64 element count and count x ``storage_type``'s element size raw bytes, then the next pickle. The
inspector took the element size of the first storage type the header pickle imported anywhere: a header that
imports ``torch.DoubleStorage`` (popped, or as the key) and returns ``torch.ByteStorage`` made the walk skip 8x
the bytes torch reads, so the storage-views pickle torch runs next (``os.system``) sat in what the walk took for
raw storage bytes: the file was allowed (TORCH-LEGACY-TAR info only). Confirmed with torch 2.13
``torch.load(f, weights_only=False)`` (the canary was created). Nothing is unpickled here.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity
from tests.harness import detect_bytes, rule_ids, worst

from ..pickle.assembler import U
from ..pickle.test_redteam_legacy_tar import tar

PAYLOAD = b"\x80\x02cos\nsystem\n" + U("touch /tmp/mw-rt6-tar") + b"\x85R0]."  # runs, returns [] (the views)
HEADERS = {
    "popped-double-storage": b"\x80\x02ctorch\nDoubleStorage\n0(X\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    b"ctorch\nByteStorage\nt.",
    "double-storage-as-key": b"\x80\x02(ctorch\nDoubleStorage\nX\x03\x00\x00\x00cpuctorch\nByteStorage\nt.",
}


def _storages(header: bytes, numel: int = 16) -> bytes:
    # torch reads numel bytes then the payload pickle; the old walk skipped numel * 8 bytes to a benign pickle
    body = b"\x00" * numel + PAYLOAD
    body += b"\x00" * (numel * 8 - len(body))
    return b"\x80\x02K\x01." + header + struct.pack("<q", numel) + body + b"\x80\x02]."


def _legacy_tar(storages: bytes) -> bytes:
    return tar(
        [
            (b"storages", storages),
            (b"tensors", b"\x80\x02K\x00."),
            (b"pickle", b"\x80\x02K\x01."),
            (b"sys_info", b"\x80\x02}."),
        ]
    )


@pytest.mark.parametrize("header", list(HEADERS.values()), ids=list(HEADERS))
def test_payload_after_a_storage_of_the_returned_type_blocks(header: bytes) -> None:
    r = detect_bytes(_legacy_tar(_storages(header)), "model.pt")
    assert worst(r) is Severity.CRITICAL, [(f.rule_id, f.message) for f in r.findings]
    assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(r)


def test_header_that_returns_no_storage_type_is_invalid() -> None:
    header = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01t."  # (key, location, 1)
    r = detect_bytes(
        _legacy_tar(b"\x80\x02K\x01." + header + struct.pack("<q", 0) + b"\x80\x02]."), "model.pt"
    )
    assert "TORCH-STORAGE-INVALID" in rule_ids(r)


def test_plain_legacy_tar_storage_stays_clean() -> None:
    header = b"\x80\x02(X\x01\x00\x00\x000X\x03\x00\x00\x00cpuctorch\nFloatStorage\nt."
    storages = b"\x80\x02K\x01." + header + struct.pack("<q", 2) + b"\x00" * 8 + b"\x80\x02]."
    r = detect_bytes(_legacy_tar(storages), "model.pt")
    assert worst(r) is None or worst(r) < Severity.MEDIUM, [(f.rule_id, f.message) for f in r.findings]
