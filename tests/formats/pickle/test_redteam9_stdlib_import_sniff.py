"""Red team 9 (differential run): a headerless pickle that imports a standard-library module and then fails.

``cthis\\nx\\n1`` is GLOBAL this.x then POP_MARK with no MARK: ``pickle.load`` (C and Python), ``torch.load``
(weights_only=False, torch 2.13) and ``joblib.load`` (1.6) all import ``this`` (its module code prints the Zen of
Python) before they fail, the same for ``antigravity`` (opens a web browser) or ``idlelib.idle`` (starts IDLE). The
pickle sniffer claimed a protocol 0/1 stream only when the import was followed by more pickle work, so these bytes
were sniffed as text: a ``.pkl`` named file got a medium FORMAT-NAME-MISMATCH (warn), never a block. An import of a
standard-library module is now enough to claim the content as a pickle, which the analysis then blocks. Text that
only reads like an import of a name no standard module has ("cat\\ndog\\n...") stays text. Nothing is unpickled here.
"""

from __future__ import annotations

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes

PAYLOADS = {
    "pop_mark_after_global": b"cthis\nx\n1",
    "inside_a_dict": b"(dcthis\nx\n1p0\nVhello\np1\nI1\ns.",
    "antigravity": b"cantigravity\nfly\n1",
    "idle": b"cidlelib.idle\nx\n1",
    "bad_opcode_after_global": b"cthis\nx\n\xff",
    "inst_without_mark": b"iantigravity\nfly\n1",
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_stdlib_import_then_failure_is_a_pickle_and_blocks(name: str) -> None:
    fr = inspect_bytes(PAYLOADS[name], "model.pkl")
    assert fr.format == "pickle", fr.format
    assert any(f.severity >= Severity.HIGH and f.rule_id.startswith("PICKLE-") for f in fr.findings), [
        (f.rule_id, f.message) for f in fr.findings
    ]


@pytest.mark.parametrize("text", [b"cat\ndog\nfish\n", b"cwd\nfolder\nmore text\n", b"hello world\n"])
def test_text_that_names_no_standard_module_stays_text(text: bytes) -> None:
    fr = inspect_bytes(text, "notes.txt")
    assert fr.format == "text"
    assert not [f for f in fr.findings if f.severity >= Severity.MEDIUM]
