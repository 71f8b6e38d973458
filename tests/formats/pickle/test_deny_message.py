"""A denylisted global's finding says why it is dangerous (the denylist note) and the only way to allow it."""

from __future__ import annotations

from .assembler import scan


def _global_call(module: str, name: str) -> bytes:
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."


def test_numba_rebuild_names_the_bytecode_and_the_digest_exception() -> None:
    fr = scan(_global_call("numba.core.serialize", "_rebuild_function"))
    hits = [f for f in fr.findings if f.rule_id == "PICKLE-CODE-OBJECT"]
    assert hits, [f.rule_id for f in fr.findings]
    assert "serialized bytecode" in hits[0].message
    assert "sha256" in hits[0].message


def test_denylisted_entry_without_note_still_gets_the_hint() -> None:
    fr = scan(_global_call("os", "system"))
    hits = [f for f in fr.findings if f.rule_id == "PICKLE-DANGEROUS-GLOBAL"]
    assert len(hits) == 1
    assert hits[0].message.startswith("os.system (command-execution) is called")
    assert "policy exception pinned to its sha256" in hits[0].message
