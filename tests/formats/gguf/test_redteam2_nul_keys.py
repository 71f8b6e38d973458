"""Red-team: GGUF keys as llama.cpp looks them up (C strings, cut at the first NUL).

``gguf_find_key`` strcmp()s ``key.c_str()``, so a key stored as ``tokenizer.chat_template\\x00x`` is found
as ``tokenizer.chat_template``, and when two keys agree up to a NUL the first wins. llama.cpp's duplicate-key
check compares whole std::strings and lets both through; gguf-py keeps the NUL in its key. The template a C
loader renders must be judged, and the disagreement itself is a finding.
"""

from __future__ import annotations

from scanner.findings import Severity
from tests.formats.gguf.test_gguf import gguf, kv_str
from tests.harness import inspect_bytes, rule_ids

SSTI = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
BENIGN = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def test_template_behind_a_nul_key_is_judged_even_before_a_benign_one() -> None:
    kvs = kv_str("tokenizer.chat_template\x00x", SSTI) + kv_str("tokenizer.chat_template", BENIGN)
    fr = inspect_bytes(gguf(kvs, 2), "m.gguf")
    assert "TEMPLATE-SSTI" in rule_ids(fr)
    assert "GGUF-INVALID" in rule_ids(fr)


def test_benign_template_behind_a_nul_key_still_blocks_on_the_key() -> None:
    fr = inspect_bytes(gguf(kv_str("tokenizer.chat_template\x00", BENIGN), 1), "m.gguf")
    bad = [f for f in fr.findings if f.rule_id == "GGUF-INVALID"]
    assert bad and bad[0].severity >= Severity.HIGH
    assert "NUL" in bad[0].message


def test_a_key_shadowed_up_to_a_nul_is_reported() -> None:
    kvs = kv_str("general.name\x00a", "x") + kv_str("general.name\x00b", "y")
    fr = inspect_bytes(gguf(kvs, 2), "m.gguf")
    assert any("repeats" in f.message for f in fr.findings if f.rule_id == "GGUF-INVALID")


def test_plain_template_keys_stay_clean() -> None:
    kvs = kv_str("general.architecture", "llama") + kv_str("tokenizer.chat_template", BENIGN)
    kvs += kv_str("tokenizer.chat_template.tool_use", BENIGN)
    fr = inspect_bytes(gguf(kvs, 3), "m.gguf")
    assert not rule_ids(fr) - {"GGUF-TEMPLATE-INFO"}, [f.message for f in fr.findings]


def test_template_key_of_another_type_is_not_silently_skipped() -> None:
    import struct

    from tests.formats.gguf.test_gguf import gs

    arr = gs("tokenizer.chat_template") + struct.pack("<IIQ", 9, 8, 1) + gs(SSTI)
    fr = inspect_bytes(gguf(arr, 1), "m.gguf")
    assert any("not a string" in f.message for f in fr.findings if f.rule_id == "GGUF-INVALID")
