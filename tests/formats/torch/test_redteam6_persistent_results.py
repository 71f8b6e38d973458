"""Red team 6: BUILD and container opcodes applied to a persistent-load result.

``torch.load`` resolves ``BINPERSID ('storage', FloatStorage, '0', 'cpu', 2)`` to a ``TypedStorage``, a plain
Python object: ``BUILD {'append': joblib.memory.Memory}`` stores the attribute on it and ``APPEND path`` then
calls ``Memory(path)`` (which creates the directory). Legacy ``torch.load`` resolves ``('module', obj, '', '')`` to
``obj`` itself, any object the pickle built. The walker pushed one opaque value for every persistent id and
ignored BUILD/APPEND/SETITEM on it, so each file was allowed. Confirmed with torch 2.13 (CPython 3.11, joblib 1.6):
``torch.load(f, weights_only=False)`` of each variant created the directory. Nothing is unpickled here.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest

from scanner.findings import Severity
from tests.formats.builders import DATA
from tests.formats.pickle.assembler import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    NONE,
    PROTO,
    REDUCE,
    SETITEM,
    STOP,
    TUPLE2,
    G,
    U,
)
from tests.harness import inspect_bytes, rule_ids, worst

MEMORY = G("joblib.memory", "Memory")  # allowlisted newobj-only: Memory(location) creates the directory
STORAGE = MARK + U("storage") + G("torch", "FloatStorage") + U("0") + U("cpu") + b"K\x0ct" + b"Q"
PATH = U("/tmp/mw-rt6-pid")


def _torch_zip(data_pkl: bytes) -> bytes:
    """The sample state dict with its data.pkl replaced (storage 0 holds 12 floats)."""
    src = zipfile.ZipFile(DATA / "state_dict.pt")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            body = data_pkl if info.filename.endswith("/data.pkl") else src.read(info.filename)
            z.writestr(info.filename, body)
    return out.getvalue()


def _legacy(data_pkl: bytes) -> bytes:
    """torch < 1.6 stacked format: magic, protocol, sys_info, the data pickle, an empty storage-key list."""
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return head + data_pkl + pickle.dumps([], protocol=2)


VARIANTS = {
    "zip-build-dict-then-append": _torch_zip(
        PROTO(2) + STORAGE + EMPTY_DICT + U("append") + MEMORY + SETITEM + BUILD + PATH + b"a" + STOP
    ),
    "zip-build-slots-then-append": _torch_zip(
        PROTO(2)
        + STORAGE
        + NONE
        + EMPTY_DICT
        + U("append")
        + MEMORY
        + SETITEM
        + TUPLE2
        + BUILD
        + PATH
        + b"a"
        + STOP
    ),
    "zip-planted-setstate-then-build": _torch_zip(
        PROTO(2) + STORAGE + EMPTY_DICT + U("__setstate__") + MEMORY + SETITEM + BUILD + PATH + BUILD + STOP
    ),
    "legacy-module-id-build-then-append": _legacy(
        PROTO(2)
        + MARK
        + U("module")
        + G("types", "SimpleNamespace")
        + EMPTY_TUPLE
        + REDUCE
        + U("")
        + U("")
        + b"tQ"
        + EMPTY_DICT
        + U("append")
        + MEMORY
        + SETITEM
        + BUILD
        + PATH
        + b"a"
        + STOP
    ),
}


@pytest.mark.parametrize("blob", list(VARIANTS.values()), ids=list(VARIANTS))
def test_hook_planted_on_a_persistent_load_result_blocks(blob: bytes) -> None:
    fr = inspect_bytes(blob, "model.pt")
    found = rule_ids(fr)
    assert worst(fr) is Severity.CRITICAL, found
    assert {"PICKLE-HOOK-PLANTED", "PICKLE-CONSTRAINT-VIOLATION"} <= found, [
        (f.rule_id, f.message) for f in fr.findings
    ]


def test_setitem_key_on_a_persistent_load_result_is_called() -> None:
    # legacy ('module', obj) may return a pandas frame, whose __setitem__ calls a callable key with itself
    body = MARK + U("module") + G("types", "SimpleNamespace") + EMPTY_TUPLE + REDUCE + U("") + U("") + b"tQ"
    body += MEMORY + U("v") + SETITEM
    fr = inspect_bytes(_legacy(PROTO(2) + body + STOP), "model.pt")
    assert "PICKLE-CONSTRAINT-VIOLATION" in rule_ids(fr), [(f.rule_id, f.message) for f in fr.findings]


def test_sample_state_dict_stays_allowed() -> None:
    fr = inspect_bytes((DATA / "state_dict.pt").read_bytes(), "model.pt")
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]
