"""Red team 8: a pickle kept as a plain bytes (or latin-1 text) literal inside a pickle.

ModelAudit's ``nested_pickle_raw.pkl`` stores ``b"\\x80\\x04...builtins.print...R."`` under a dict key: loading the
outer file yields bytes whose ``pickle.loads`` runs the call (confirmed with the real unpicklers, ``find_class``
recording). Base64, hex and zlib encodings of such a literal were analyzed as nested pickles, the raw bytes were
not, so the file was allowed. A raw literal is now analyzed when a walk of it imports a name made of identifiers
(or, without a protocol header, reaches STOP having done so); a data-only inner pickle, or bytes that only start
like one, stay data. Nothing is unpickled here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.harness import evil_pickle, rule_ids, scan_on_disk, verdict

from .assembler import EMPTY_DICT, PROTO, SETITEM, STOP, B, U

INNER_P0 = b"cposix\nsystem\n(Vtouch /tmp/modelward-canary\ntR."


def _outer(literal: bytes) -> bytes:
    """{'weights': [1, 2], 'blob': <literal>} with the literal as bytes (SHORT_BINBYTES/BINBYTES)."""
    return PROTO(4) + EMPTY_DICT + U("weights") + U("ok") + SETITEM + U("blob") + B(literal) + SETITEM + STOP


def _judge(tmp_path: Path, blob: bytes, name: str = "model.pkl") -> tuple[str, set[str]]:
    fr = scan_on_disk(tmp_path, blob, name)
    return verdict(fr).value, rule_ids(fr)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_raw_pickle_bytes_literal_blocks(tmp_path: Path, protocol: int) -> None:
    decision, rules = _judge(tmp_path, _outer(evil_pickle(protocol)))
    assert decision == "block", rules
    assert "PICKLE-NESTED" in rules and "PICKLE-DANGEROUS-GLOBAL" in rules


def test_peer_sample_shape_builtins_print(tmp_path: Path) -> None:
    """ModelAudit's sample: the inner pickle calls builtins.print."""
    inner = PROTO(4) + U("builtins") + U("print") + b"\x93" + U("MALICIOUS") + b"\x85R" + STOP
    decision, rules = _judge(tmp_path, _outer(inner))
    assert decision == "block", rules


def test_raw_protocol0_literal_blocks(tmp_path: Path) -> None:
    decision, rules = _judge(tmp_path, _outer(INNER_P0))
    assert decision == "block", rules


def test_raw_literal_without_stop_still_runs(tmp_path: Path) -> None:
    """pickle.loads raises at the missing STOP only after REDUCE ran."""
    decision, rules = _judge(tmp_path, _outer(evil_pickle(2)[:-1]))
    assert decision == "block", rules


def test_raw_literal_as_latin1_text(tmp_path: Path) -> None:
    inner = evil_pickle(2).decode("latin-1")
    blob = PROTO(4) + EMPTY_DICT + U("blob") + U(inner) + SETITEM + STOP
    decision, rules = _judge(tmp_path, blob)
    assert decision == "block", rules


def test_raw_literal_in_a_list_past_other_data(tmp_path: Path) -> None:
    blob = pickle.dumps([b"\x00" * 40, "x" * 100, {"k": evil_pickle(3)}], protocol=4)
    decision, rules = _judge(tmp_path, blob)
    assert decision == "block", rules


def test_data_only_inner_pickle_is_allowed(tmp_path: Path) -> None:
    inner = pickle.dumps({"tiny": "payload", "n": [1, 2, 3]}, protocol=4)
    decision, rules = _judge(tmp_path, _outer(inner))
    assert decision == "allow", rules


def test_allowlisted_inner_pickle_is_allowed(tmp_path: Path) -> None:
    import collections

    inner = pickle.dumps(collections.OrderedDict(a=1, b=2), protocol=2)
    decision, rules = _judge(tmp_path, _outer(inner))
    assert decision == "allow", rules


def test_bytes_that_only_start_like_a_pickle_are_data(tmp_path: Path) -> None:
    """int16 array bytes can begin 0x80 0x02; a vocabulary joined by newlines reads as GLOBAL lines."""
    arr = b"\x80\x02" + bytes(range(256)) * 2
    vocab = "cat\ndog\nfish\nbird\n" * 4
    blob = PROTO(4) + EMPTY_DICT + U("a") + B(arr) + SETITEM + U("v") + U(vocab) + SETITEM + STOP
    decision, rules = _judge(tmp_path, blob)
    assert decision == "allow", rules


def test_torch_zip_data_pkl_with_raw_literal(tmp_path: Path) -> None:
    from tests.formats.builders import Member, build_zip

    blob = build_zip([Member("archive/data.pkl", _outer(evil_pickle(2))), Member("archive/version", b"3\n")])
    decision, rules = _judge(tmp_path, blob, "model.pt")
    assert decision == "block", rules


# -- spaCy: unpickle_vocab(..., lex_attr_getters, ...) runs srsly.pickle_loads on its argument 4 --

SPACY_DOC = Path(__file__).resolve().parents[3] / "fixtures" / "ecosystem" / "spacy" / "doc.pkl"


def _spacy_with_blob(blob: bytes) -> bytes:
    """fixtures/ecosystem/spacy/doc.pkl with its lex_attr_getters pickle replaced (the FRAME length adjusted).

    With spacy 3.8.18 (throwaway venv) pickle.load of this file ran the replacement's os.system: the file was
    allowed, since the argument was judged as a container of hooks and the bytes hold none."""
    import pickletools
    import struct

    data = SPACY_DOC.read_bytes()
    for _op, arg, pos in pickletools.genops(data):
        if isinstance(arg, bytes) and len(arg) > 1000 and arg[:1] == b"\x80":
            assert data[pos : pos + 1] == b"B"
            out = data[:pos] + b"B" + struct.pack("<I", len(blob)) + blob + data[pos + 5 + len(arg) :]
            break
    else:
        raise AssertionError("no lex_attr_getters blob in the fixture")
    assert out[2:3] == b"\x95"  # one FRAME over the whole stream
    frame = struct.unpack("<Q", out[3:11])[0] + len(out) - len(data)
    return out[:3] + struct.pack("<Q", frame) + out[11:]


def test_spacy_lex_attr_getters_blob_is_judged(tmp_path: Path) -> None:
    decision, rules = _judge(tmp_path, _spacy_with_blob(evil_pickle(2)))
    assert decision == "block", rules
    assert "PICKLE-DANGEROUS-GLOBAL" in rules


def test_spacy_blob_allows_only_the_measured_getters(tmp_path: Path) -> None:
    """The gadget rule's list is for this blob only: a getter outside it, or the same names at top level, block."""
    inner = PROTO(4) + U("spacy.cli") + U("download") + b"\x93" + STOP
    decision, rules = _judge(tmp_path, _spacy_with_blob(inner))
    assert decision == "block", rules
    top = PROTO(4) + U("spacy.lang.lex_attrs") + U("lower") + b"\x93" + STOP
    decision, rules = _judge(tmp_path, top, "other.pkl")
    assert decision == "block", rules


def test_real_spacy_doc_is_allowed(tmp_path: Path) -> None:
    decision, rules = _judge(tmp_path, SPACY_DOC.read_bytes())
    assert decision == "allow", rules


def test_spacy_padded_blob_is_analyzed(tmp_path: Path) -> None:
    """A getters blob padded to megabytes (a payload first, then filler opcodes) is still walked."""
    big = evil_pickle(2)[:-1] + b"0" + b"N0" * 600_000 + b"N."
    decision, rules = _judge(tmp_path, _spacy_with_blob(big))
    assert decision == "block", rules
    assert "PICKLE-DANGEROUS-GLOBAL" in rules


def test_spacy_blob_that_is_not_a_literal_blocks(tmp_path: Path) -> None:
    """Argument 4 as a persistent-load result: nothing to analyze, so it cannot pass as data."""
    body = b"cspacy.vocab\nunpickle_vocab\n(NNNNPblob\nNNtR."
    decision, rules = _judge(tmp_path, PROTO(2) + body)
    assert decision == "block", rules
    assert "PICKLE-GADGET-ARGUMENT" in rules
