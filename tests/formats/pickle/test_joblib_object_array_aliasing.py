"""joblib object arrays after outer memo entries: exact in both loaders' views.

joblib.load reads an object array's pickle with a fresh unpickler (joblib 1.6 ``NumpyArrayWrapper.read_array``:
``Unpickler(file_handle)`` with the outer ``find_class``; older joblib ``pickle.load(file_handle)``), so the
array pickle's GETs see its own memo. pickle.load/torch.load run the same bytes inline with the outer memo: the
array pickle's ``BINGET 3`` (where numpy stored 'numpy' for ``numpy.dtype``) fetches the outer stream's fourth
entry instead: 'NumpyArrayWrapper' after one dict key, a key or class name otherwise. Every
``joblib.dump({"a": <object array>, ...})`` was blocked for that import (``NumpyArrayWrapper.dtype``, unlisted).
Such an import, neither allowlisted nor denylisted, is where pickle.load fails; the plain view ends there on
record (low), while allowlisted and denylisted aliased imports are judged as before. Nothing is unpickled.
"""

from __future__ import annotations

import pickle

import pytest

from scanner.findings import Severity
from tests.harness import FIXTURES

from .assembler import CANARY, Evil, U, rules, scan, worst

JOBLIB = FIXTURES / "ecosystem" / "joblib"

# joblib 1.6 / numpy 2.4: the array pickle joblib.dump writes for np.array(['x', None], dtype=object)
ARRAY_PICKLE = (
    b"\x80\x05\x95\x8f\x00\x00\x00\x00\x00\x00\x00\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94"
    b"\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85"
    b"\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff"
    b"\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(\x8c\x01x\x94Net\x94b."
)


def _wrapper() -> bytes:
    """NumpyArrayWrapper NEWOBJ + BUILD for a one-dimensional object array (as joblib writes it)."""
    return (
        U("joblib.numpy_pickle")
        + b"\x94"
        + U("NumpyArrayWrapper")
        + b"\x94\x93\x94)\x81\x94}\x94("
        + U("subclass")
        + U("numpy")
        + U("ndarray")
        + b"\x93"
        + U("shape")
        + b"K\x02\x85"
        + U("order")
        + U("C")
        + U("dtype")
        + U("numpy")
        + U("dtype")
        + b"\x93"
        + U("O8")
        + b"\x89\x88\x87R(K\x03"
        + U("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
        + U("allow_mmap")
        + b"\x89"
        + U("numpy_array_alignment_bytes")
        + b"K\x10ub"
    )


def _dict_with(key_memos: bytes, array_pickle: bytes) -> bytes:
    """``{<keys>: <object array>}`` as joblib.dump frames it: outer dict, wrapper, the array's own pickle."""
    return b"\x80\x04}\x94(" + key_memos + _wrapper() + array_pickle + b"u."


def _findings(fr):  # type: ignore[no-untyped-def]
    return [(f.severity.value, f.rule_id, f.message[:120]) for f in fr.findings]


@pytest.mark.parametrize("name", ["dict_object_array.joblib", "records_object_arrays.joblib"])
def test_real_joblib_dicts_with_object_arrays_are_allowed(name: str) -> None:
    data = (JOBLIB / name).read_bytes()
    fr = scan(data, name)
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, _findings(fr)
    assert "PICKLE-ALIASED-IMPORT" in rules(fr)  # the plain view ended where pickle.load fails, on record


def test_the_array_pickle_reaches_the_aliased_import_under_pickle_load() -> None:
    """The fixture really has the shape: outer memo 3 is 'NumpyArrayWrapper', the array pickle does BINGET 3."""
    data = (JOBLIB / "dict_object_array.joblib").read_bytes()
    fr = scan(data, "d.joblib")
    msg = next(f.message for f in fr.findings if f.rule_id == "PICKLE-ALIASED-IMPORT")
    assert "NumpyArrayWrapper.dtype" in msg


def test_handmade_dict_key_alias_is_allowed() -> None:
    fr = scan(_dict_with(U("a") + b"\x94", ARRAY_PICKLE), "d.joblib")
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, _findings(fr)


def test_payload_inside_the_object_array_blocks() -> None:
    """joblib.load runs the array pickle: a REDUCE of os.system in it is what joblib's view must report."""
    fr = scan(_dict_with(U("a") + b"\x94", pickle.dumps(Evil(), protocol=5)), "d.joblib")
    assert worst(fr) is Severity.CRITICAL
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(fr)


def test_payload_after_the_aliased_import_still_blocks() -> None:
    """The plain view ends at the aliased import; joblib's view of the same bytes goes on to the payload."""
    inner = (
        b"\x80\x04"
        + U("numpy")
        + b"\x94"
        + U("numpy")
        + b"\x94h\x01"
        + U("dtype")
        + b"\x93\x94"  # joblib: numpy.dtype; pickle.load: a.dtype (outer memo 1 is the key 'a')
        + b"0"
        + U("os")
        + U("system")
        + b"\x93"
        + U(CANARY)
        + b"\x85R."
    )
    fr = scan(_dict_with(U("a") + b"\x94", inner), "d.joblib")
    assert worst(fr) is Severity.CRITICAL
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" and "os.system" in f.message for f in fr.findings)


def test_allowlisted_aliased_import_keeps_the_plain_view_going() -> None:
    """Outer memo 1/2/3 are 'numpy', 'os', 'system': pickle.load imports numpy.dtype (allowlisted, the view goes
    on) and then os.system from the outer memo, while joblib's view sees numpy.dtype and builtins.set."""
    keys = U("numpy") + b"\x94" + U("os") + b"\x94" + U("system") + b"\x94" + b"000"  # outer memo 1-3
    inner = (
        b"\x80\x04"
        + U("numpy")
        + b"\x94"  # joblib 0
        + U("numpy")
        + b"\x94"  # joblib 1
        + U("builtins")
        + b"\x94"  # joblib 2
        + U("set")
        + b"\x94"  # joblib 3
        + b"h\x01"
        + U("dtype")
        + b"\x93"
        + b"0"
        + b"h\x02h\x03\x93"
        + U(CANARY)
        + b"\x85R."
    )
    # the outer dict needs an even number of items under its MARK: the three keys were popped again
    fr = scan(b"\x80\x04}\x94(" + keys + U("k") + _wrapper() + inner + b"u.", "d.joblib")
    assert worst(fr) is Severity.CRITICAL
    plain = [f for f in fr.findings if f.rule_id == "PICKLE-DANGEROUS-GLOBAL"]
    assert plain and all("plain unpickler" in f.message for f in plain)
    assert "PICKLE-ALIASED-IMPORT" not in rules(fr)


def test_unlisted_module_from_the_outer_memo_ends_the_view_not_the_joblib_view() -> None:
    """An aliased import nobody allowlists or denies ends only the plain view: joblib's view has it as numpy.dtype."""
    fr = scan(_dict_with(U("classes") + b"\x94", ARRAY_PICKLE), "d.joblib")
    assert rules(fr) & {"PICKLE-CALL-UNLISTED", "PICKLE-IMPORT-UNLISTED"} == set()
    assert "PICKLE-ALIASED-IMPORT" in rules(fr)


def _numeric_wrapper(n: int) -> bytes:
    """A uint8 array wrapper as joblib < 1.2 wrote it (no alignment byte): n raw bytes follow its BUILD."""
    return (
        U("joblib.numpy_pickle")
        + U("NumpyArrayWrapper")
        + b"\x93)\x81}("
        + U("subclass")
        + U("numpy")
        + U("ndarray")
        + b"\x93"
        + U("shape")
        + b"K"
        + bytes([n])
        + b"\x85"
        + U("order")
        + U("C")
        + U("dtype")
        + U("numpy")
        + U("dtype")
        + b"\x93"
        + U("u1")
        + b"\x89\x88\x87R(K\x03"
        + U("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + U("allow_mmap")
        + b"\x89ub"
    )


def test_aliased_import_in_raw_array_bytes_is_judged_in_full() -> None:
    """Raw numeric array bytes are opcodes only to pickle.load: an import they assemble from the outer memo is not
    an object array's pickle reading its own memo, so it is judged like any import (unlisted: blocks)."""
    raw = b"h\x01h\x02\x93" + U("x") + b"\x85R0"
    data = (
        b"\x80\x04}\x94("
        + U("somepkg")
        + b"\x94"
        + U("gadget")
        + b"\x94"
        + b"00"
        + U("k")
        + _numeric_wrapper(len(raw))
        + raw
        + b"u."
    )
    fr = scan(data, "d.joblib")
    assert "PICKLE-CALL-UNLISTED" in rules(fr), _findings(fr)
    assert "PICKLE-ALIASED-IMPORT" not in rules(fr)
