"""Red team 8: what a differential run of the real unpicklers against the walker found.

A throwaway harness ran ``pickle._Unpickler`` and ``_pickle.Unpickler`` (``find_class`` recording and returning a
stub) over 3,000 mutants of ``fixtures/pickle`` and ``fixtures/pickle-loader`` and compared the globals they
resolved with the walker's imports. One shape escaped the walker's import list: INST with no MARK on the stack.
``pickle.py``'s ``load_inst`` calls ``find_class`` (importing the module) before it pops the MARK; ``_pickle.c``
looks for the MARK first. The walker modelled only the C order, so the import pickle.py performs (joblib's
NumpyUnpickler is pickle.py's) was never judged. Nothing is unpickled here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict

CASES = {
    # the minimised mutant (of fixtures/pickle/malicious/gadgets/inst_opcode.pkl), with a protocol header
    "after_a_string": b"\x80\x02S'touch /tmp/modelward-canary'\nios\nsystem\n.",
    "first_opcode": b"\x80\x02ios\nsystem\n.",
    "framed": b"\x80\x04\x95\x13\x00\x00\x00\x00\x00\x00\x00isubprocess\nPopen\n.",
    "after_a_dict": b"\x80\x02}q\x00iruntime\nrun\n.",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inst_without_mark_import_is_judged(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, CASES[name], "model.pkl")
    rules = rule_ids(fr)
    assert verdict(fr).value == "block", rules
    assert rules & {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-IMPORT-UNLISTED"}, rules


# The second shape: GLOBAL/INST whose name line is the unterminated end of the data. pickle.py's readline returns
# it and load_global/load_inst drop its last byte as if it were the newline, so ``cos\nsystemX`` imports os.system
# before the next read raises (_pickle.c refuses the line). The walker saw only a truncated line: no import, no
# pickle claimed (the minimised mutants were judged as text, verdict warn).
TAILS = {
    "global_no_header": b"cos\nsystemX",
    "global_after_proto": b"\x80\x02cos\nsystemX",
    "global_torch_load": b"ctorch\nloadX",
    "inst_after_mark": b'(S"x"\nisubprocess\nPopen_',
}


@pytest.mark.parametrize("name", sorted(TAILS))
def test_unterminated_name_line_import_is_judged(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, TAILS[name], "model.pkl")
    rules = rule_ids(fr)
    assert verdict(fr).value == "block", rules
    assert "PICKLE-DANGEROUS-GLOBAL" in rules, rules


def test_text_with_two_short_lines_is_not_newly_claimed(tmp_path: Path) -> None:
    """A name line of one byte is an empty name (getattr fails): nothing to judge, the file stays text."""
    fr = scan_on_disk(tmp_path, b"hello\nx", "notes.txt")
    assert verdict(fr).value != "block", rule_ids(fr)
