"""Red team: a protocol-0/1 pickle whose opening opcodes run past the sniffer's bounds is still a pickle.

The content sniffer walks the first bytes of a file with small limits (4 KiB
text lines, 2 000 stack entries and memo slots). A pickle that opens with a
longer STRING/UNICODE line, deeper MARK nesting or a literal longer than the
head used to stop the sniff walk on a limit, so the file was not recognized as
a pickle at all (judged as text, medium at most) while pickle.load ran the
os.system call placed after the prefix. Nothing here is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity
from scanner.formats.pickle.handler import sniff
from scanner.io.reader import BytesReader
from tests.harness import blocked_for_payload

from .assembler import CANARY, S0, scan, worst

PAYLOAD = b"cos\nsystem\n(" + S0(CANARY) + b"tR."

PREFIXES = {
    "long_string_line": S0("A" * 6000) + b"0",
    "long_unicode_line": b"V" + b"A" * 6000 + b"\n0",
    "very_long_string_line": S0("A" * 200_000) + b"0",
    "deep_marks": b"(" * 2500 + b"1" * 2500,  # MARK x2500, POP_MARK x2500
    "big_binstring": b"T" + struct.pack("<i", 70_000) + b"A" * 70_000 + b"0",
    "big_memo": b"N" + b"".join(b"p%d\n" % i for i in range(2100)) + b"0",
}


@pytest.mark.parametrize("name", sorted(PREFIXES))
@pytest.mark.parametrize("filename", ["model.bin", "model.pkl", "weights"])
def test_payload_after_a_prefix_past_the_sniff_bounds_blocks(name: str, filename: str) -> None:
    data = PREFIXES[name] + PAYLOAD
    assert sniff(data[:4096], BytesReader(data, filename))
    r = scan(data, name=filename)
    assert r.format == "pickle"
    assert blocked_for_payload(r)
    assert worst(r) is Severity.CRITICAL


def test_long_text_lines_are_not_claimed() -> None:
    """Text that only looks like an opcode for its first long line is still not a pickle."""
    for data in (
        b"V" + b"word " * 2000 + b"\nThe second line is prose.\n",
        b"S" + b"x" * 9000 + b"\nmore\n",
        b"(" * 3000 + b"\nnot a pickle\n",
    ):
        assert not sniff(data[:4096], BytesReader(data, "notes.txt"))
