"""A pickled spaCy Language is allowed; the entries it needed cannot be turned into gadgets (issue #9).

``fixtures/ecosystem/spacy/blank_en.pkl`` needs the Cython helper
``spacy.pipeline.pipe.__pyx_unpickle_Pipe`` (instantiates its class argument),
``re._compile`` (compiles its pattern) with the bound ``search``/``finditer``/
``match`` of the result, and ``spacy.tokenizer.Tokenizer`` (calls the callables
it is handed at load). The variants below use each entry the way the library
does except for one argument or one opcode shape, and must block.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.harness import FIXTURES, rule_ids, scan

ORDER = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _call(target: bytes, *args: bytes) -> bytes:
    return target + b"(" + b"".join(args) + b"tR"


def _getattr(owner: bytes, attr: str) -> bytes:
    return _call(_glob("builtins", "getattr"), owner, _str(attr))


def _new(module: str, name: str) -> bytes:
    """cls.__new__(cls) + BUILD({}): the NEWOBJ shape spaCy writes for its classes."""
    return _glob(module, name) + b")\x81}b"


def _compiled(pattern: bytes = _str("^a"), *extra: bytes) -> bytes:
    return _call(_glob("re", "_compile"), pattern, b"K\x20", *extra)


VOCAB = _call(_glob("spacy.vocab", "unpickle_vocab"))
PIPE = ("spacy.pipeline.pipe", "__pyx_unpickle_Pipe")
SENTENCIZER = _glob("spacy.pipeline.sentencizer", "Sentencizer")
ODICT = _call(_glob("collections", "OrderedDict"))  # allowlisted, but a call result, not a literal


def _tokenizer(vocab: bytes = VOCAB, search: bytes | None = None) -> bytes:
    search = _getattr(_compiled(), "search") if search is None else search
    return _call(_glob("spacy.tokenizer", "Tokenizer"), vocab, b"}", search, search, b"N", b"N", b"N")


GOOD = {
    "bound_search": _getattr(_compiled(), "search"),
    "bound_finditer": _getattr(_compiled(), "finditer"),
    "pipe_sentencizer": _call(_glob(*PIPE), SENTENCIZER, b"J\x01\x00\x00\x00", b"N"),
    "tokenizer": _tokenizer(),
    "english_newobj": _new("spacy.lang.en", "English"),
    "config_newobj": _new("confection._config", "Config"),
}

BAD = {
    # __pyx_unpickle_Pipe instantiates whatever class it is given
    "pipe_other_allowlisted_class": (
        _call(_glob(*PIPE), _glob("collections", "OrderedDict"), b"J\x01\x00\x00\x00", b"N"),
        "PICKLE-GADGET-ARGUMENT",
    ),
    "pipe_unlisted_class": (
        _call(_glob(*PIPE), _glob("evilpkg.pipes", "Evil"), b"J\x01\x00\x00\x00", b"N"),
        "PICKLE-CALL-UNLISTED",
    ),
    "pipe_denylisted_callable": (
        _call(_glob(*PIPE), _glob("os", "system"), b"J\x01\x00\x00\x00", b"N"),
        "PICKLE-GADGET-ARGUMENT",
    ),
    "pipe_state_object": (
        _call(_glob(*PIPE), SENTENCIZER, b"J\x01\x00\x00\x00", ODICT),
        "PICKLE-GADGET-ARGUMENT",
    ),
    # re._compile takes a literal pattern and flags only
    "compile_call_result_pattern": (_compiled(ODICT), "PICKLE-GADGET-ARGUMENT"),
    "compile_class_pattern": (_compiled(_glob("collections", "OrderedDict")), "PICKLE-GADGET-ARGUMENT"),
    "compile_extra_argument": (_compiled(_str("^a"), ODICT), "PICKLE-GADGET-ARGUMENT"),
    # only the measured bound methods of a compiled pattern are listed
    "bound_sub": (_getattr(_compiled(), "sub"), "PICKLE-DYNAMIC-IMPORT"),
    "bound_search_of_non_literal": (_getattr(_compiled(ODICT), "search"), "PICKLE-GADGET-ARGUMENT"),
    # the Tokenizer calls its matcher arguments at load
    "tokenizer_os_system": (_tokenizer(search=_glob("os", "system")), "PICKLE-DANGEROUS-GLOBAL"),
    "tokenizer_unlisted_function": (
        _tokenizer(search=_glob("evilpkg.text", "split")),
        "PICKLE-CALL-UNLISTED",
    ),
    "tokenizer_foreign_vocab": (_tokenizer(vocab=ODICT), "PICKLE-GADGET-ARGUMENT"),
    # classes allowed only in the NEWOBJ + BUILD shape, stored functions never called
    "english_reduce": (_call(_glob("spacy.lang.en", "English")), "PICKLE-CONSTRAINT-VIOLATION"),
    "raise_error_called": (
        _call(_glob("spacy.util", "raise_error"), _str("x")),
        "PICKLE-CONSTRAINT-VIOLATION",
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_spacy_shapes_as_written_are_allowed(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(GOOD[name]))
    report = scan(path)
    assert report.verdict.decision.value == "allow", sorted(rule_ids(report))


@pytest.mark.parametrize("name", sorted(BAD))
def test_abusing_a_spacy_entry_blocks(tmp_path: Path, name: str) -> None:
    body, rule = BAD[name]
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(body))
    report = scan(path)
    assert report.verdict.decision.value == "block", sorted(rule_ids(report))
    assert rule in rule_ids(report), sorted(rule_ids(report))


def test_pickled_language_is_allowed_with_nothing_above_low() -> None:
    report = scan(FIXTURES / "ecosystem" / "spacy" / "blank_en.pkl")
    above = [f.rule_id for f in report.all_findings() if ORDER.index(f.severity) > ORDER.index(Severity.LOW)]
    assert not above
    assert report.verdict.decision.value == "allow"
