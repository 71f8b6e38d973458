"""A whole spaCy pipeline folder as ``nlp.to_disk`` writes it (spaCy 3.8, ``spacy.blank("en")`` + sentencizer) is
blocked: ``tokenizer`` (a msgpack map keyed by names: prefix_search, suffix_search, ...) and ``vocab/key2row`` /
``vocab/lookups.bin`` (one byte, ``0x80``: msgpack's empty map) match no known format (FORMAT-UNKNOWN, high).
spacy.load reads them with srsly.msgpack_loads, which decodes numpy arrays with np.frombuffer and never
unpickles. The msgpack sniffer now claims them (whitespace exception keys, a whole-file empty map).
"""

from __future__ import annotations

from tests.harness import fixture, path_verdict


def test_spacy_pipeline_as_written_allowed() -> None:
    decision, found = path_verdict(fixture("carriers/spacy/full_blank_sentencizer"))
    assert decision == "allow", sorted(found)
