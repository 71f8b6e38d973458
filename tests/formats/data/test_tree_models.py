"""XGBoost, CatBoost and LightGBM models are data: recognized, allowed, and broken ones fail closed."""

from __future__ import annotations

import io
import pickletools
import random
import struct
from pathlib import Path

import pytest

from tests.harness import FIXTURES, path_verdict

TREES = FIXTURES / "carriers" / "trees"


@pytest.mark.parametrize("name", ["xgb.ubj", "model.bin", "xgb_legacy.model", "model.cbm", "lgb_model.txt"])
def test_real_tree_models_are_recognized_data(name: str) -> None:
    decision, rules = path_verdict(TREES / name)
    assert decision == "allow"
    assert "TREE-MODEL-DATA" in rules
    assert {r for r in rules} <= {"TREE-MODEL-DATA"}, rules


@pytest.mark.slow
def test_every_truncation_of_ubjson_fails_closed(tmp_path: Path) -> None:
    data = (TREES / "xgb.ubj").read_bytes()
    cuts = sorted({*range(16, len(data), max(1, len(data) // 60)), len(data) - 1})
    for n in cuts:
        p = tmp_path / f"cut{n}.ubj"
        p.write_bytes(data[:n])
        decision, rules = path_verdict(p)
        assert decision == "block", (n, rules)
        assert "TREE-MODEL-DATA" not in rules


def test_ubjson_mutations_never_pass_silently(tmp_path: Path) -> None:
    data = (TREES / "xgb.ubj").read_bytes()
    rnd = random.Random(7)
    for i in range(40):
        buf = bytearray(data)
        for _ in range(3):
            buf[rnd.randrange(12, len(buf))] = rnd.randrange(256)
        p = tmp_path / f"m{i}.ubj"
        p.write_bytes(bytes(buf))
        decision, rules = path_verdict(p)
        assert "INSPECTOR-ERROR" not in rules
        if decision == "allow":  # a mutation inside a number or string payload keeps the structure intact
            assert "TREE-MODEL-DATA" in rules


def _ubj_key(k: bytes) -> bytes:
    return b"L" + struct.pack(">q", len(k)) + k


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (
            b"{" + _ubj_key(b"learner") + b"{}" + _ubj_key(b"version") + b"[$L#i\x03" + b"\x00" * 24 + b"}",
            True,
        ),
        (b"{" + _ubj_key(b"learner") + b"{#i\x00" + _ubj_key(b"version") + b"[#i\x01i\x02}", True),
        (
            b"{"
            + _ubj_key(b"learner")
            + b"{}"
            + _ubj_key(b"version")
            + b"[$d#L"
            + struct.pack(">q", 1 << 40)
            + b"}",
            False,
        ),  # typed array larger than the file: never allocated, just refused
        (b"{" + _ubj_key(b"learner") + b"{}" + b"}", False),  # no version key: not an XGBoost model
        (
            b"{" + _ubj_key(b"learner") + b"{}" + _ubj_key(b"version") + b"[i\x01]" + b"}" + b"PK\x03\x04",
            False,
        ),
        (b"{" + _ubj_key(b"learner") + b"{}" + _ubj_key(b"version") + b"[Q]" + b"}", False),  # unknown marker
        (
            b"{" + _ubj_key(b"learner") + b"[" * 300 + b"]" * 300 + _ubj_key(b"version") + b"[]}",
            False,
        ),  # too deep
    ],
)
def test_ubjson_variants(tmp_path: Path, body: bytes, ok: bool) -> None:
    p = tmp_path / "m.ubj"
    p.write_bytes(body)
    decision, rules = path_verdict(p)
    assert (decision == "allow") is ok, rules
    assert ("TREE-MODEL-INVALID" in rules) is (not ok)


def test_catboost_broken_root(tmp_path: Path) -> None:
    data = bytearray((TREES / "model.cbm").read_bytes())
    data[8:12] = struct.pack("<I", 1 << 30)
    p = tmp_path / "m.cbm"
    p.write_bytes(bytes(data))
    decision, rules = path_verdict(p)
    assert decision == "block" and "TREE-MODEL-INVALID" in rules


def test_lightgbm_with_binary_tail_fails_closed(tmp_path: Path) -> None:
    p = tmp_path / "model.txt"
    p.write_bytes((TREES / "lgb_model.txt").read_bytes() + b"\x00\x80\x04\x95")
    decision, rules = path_verdict(p)
    assert decision == "block" and "TREE-MODEL-INVALID" in rules


def test_legacy_binary_needs_its_structure(tmp_path: Path) -> None:
    data = (TREES / "xgb_legacy.model").read_bytes()
    bad = data.replace(b"gbtree", b"gbtrex")
    p = tmp_path / "m.model"
    p.write_bytes(bad)
    _, rules = path_verdict(p)
    assert "TREE-MODEL-DATA" not in rules  # not recognized: falls to unknown and fails closed
    assert path_verdict(p)[0] == "block"


PAYLOAD_TAIL = b"0cposix\nsystem\n(S'touch /tmp/modelward-canary'\ntR."


@pytest.mark.parametrize("name", ["xgb_legacy.model", "model.cbm"])
def test_pickle_shaped_like_a_tree_model_is_a_pickle(tmp_path: Path, name: str) -> None:
    # 'C' (SHORT_BINBYTES) lets a pickle start with "CBM1"; a string operand can hold XGBoost's legacy header
    real = (TREES / name).read_bytes()[:512]
    if name.endswith(".cbm"):
        # "CBM1", a 60-byte core and root offset 8 that the CatBoost checks accept, then the payload
        body = b"C" + bytes([66]) + b"M1" + struct.pack("<II", 60, 8) + b"\x00" * 56 + PAYLOAD_TAIL
        assert body.startswith(b"CBM1")
    else:  # the header without its optional "binf" magic, the first 5 bytes turned into a BINSTRING opcode
        legacy = real[4:] if real.startswith(b"binf") else real
        end = 136 + 8 + 15 + 8 + 6  # parameters, "binary:logistic", "gbtree"
        assert legacy[144:159] == b"binary:logistic"
        body = b"T" + struct.pack("<i", end - 5) + legacy[5:end] + PAYLOAD_TAIL
        from scanner.formats.tree_models import _xgb_legacy_names

        assert _xgb_legacy_names(body) is not None  # the tree-model sniffer alone would claim it
    pickletools.dis(body, out=io.StringIO())  # a well-formed pickle: pickle.load would run the payload
    p = tmp_path / name
    p.write_bytes(body)
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "TREE-MODEL-DATA" not in rules
    assert "PICKLE-DANGEROUS-GLOBAL" in rules
