"""gzip members after zero padding: Python's gzip (joblib, ``gzip.open`` + pickle) skips the zeros and reads on.

``gzip._GzipReader._read_eof`` consumes every zero byte after a member's trailer and starts the next member
at the first non-zero byte. The scanner ended the stream at the zeros and judged the rest as unknown bytes,
so the pickle the loader actually reads (the members joined) was never analyzed; ``pickle.load(gzip.open())``
ran the payload of the blob below.
"""

from __future__ import annotations

import gzip
import pickle

from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, scan_on_disk


def _joined(first: bytes, second: bytes, zeros: int = 100) -> bytes:
    return gzip.compress(first) + b"\0" * zeros + gzip.compress(second)


def test_member_after_zero_padding_is_part_of_the_stream(tmp_path):
    blob = _joined(b"", EVIL_PICKLE)
    assert gzip.decompress(blob) == EVIL_PICKLE  # the reader the loaders use joins them
    fr = scan_on_disk(tmp_path, blob, name="model.pkl.gz")
    assert blocked_for_payload(fr)
    assert any("zero bytes between gzip members" in f.message for f in findings(fr, "ARCHIVE-MALFORMED"))


def test_pickle_split_across_padded_members_is_analyzed_joined(tmp_path):
    # the first member holds the pickle's start, the second its dangerous end: only the join is a pickle
    blob = _joined(EVIL_PICKLE[:3], EVIL_PICKLE[3:], zeros=4096)
    assert gzip.decompress(blob) == EVIL_PICKLE
    fr = scan_on_disk(tmp_path, blob, name="model.joblib")
    assert blocked_for_payload(fr)


def test_benign_pickle_across_padded_members_is_not_a_payload(tmp_path):
    data = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)
    fr = scan_on_disk(tmp_path, _joined(data[:10], data[10:]), name="model.pkl.gz")
    assert not blocked_for_payload(fr)
    assert not [f for f in fr.findings if f.rule_id.startswith("PICKLE") and f.severity.rank >= 3]
