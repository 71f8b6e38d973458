"""The plain-unpickler view of a joblib stream with an object array: exact where _pickle.c is exact.

pickle.load/torch.load on a joblib file run the object array's pickle inline,
with the outer stream's memo: its BINGETs then fetch the outer entries. That is
how a payload hides from joblib.load's view, and the view must keep finding it.
It also made every ``joblib.dump`` of an object array (OneHotEncoder, a frame
with string columns, a bare object array) a critical finding: the aliased
STACK_GLOBAL operand was the NumpyArrayWrapper instance, which _pickle.c
refuses ("STACK_GLOBAL requires str", an exact-str check) before importing
anything, while the view recorded a dynamic import. Nothing here is unpickled.
"""

from __future__ import annotations

from scanner.findings import Severity

from .assembler import CANARY, U, scan, worst

# joblib 1.6 / numpy 2.4: joblib.dump(np.array(['x', 1], dtype=object))
BARE_OBJECT_ARRAY = (
    b"\x80\x04\x95\xd1\x00\x00\x00\x00\x00\x00\x00\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper"
    b"\x94\x93\x94)\x81\x94}\x94(\x8c\x08subclass\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94\x8c\x05shape"
    b"\x94K\x02\x85\x94\x8c\x05order\x94\x8c\x01C\x94\x8c\x05dtype\x94h\x06\x8c\x05dtype\x94\x93\x94\x8c\x02O8"
    b"\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x8c\nallow_mmap"
    b"\x94\x89\x8c\x1bnumpy_array_alignment_bytes\x94K\x10ub\x80\x05\x95\x90\x00\x00\x00\x00\x00\x00\x00\x8c"
    b"\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93"
    b"\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94"
    b"\x89\x88\x87\x94R\x94(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94(\x8c\x01x"
    b"\x94K\x01et\x94b.."
)


def _wrapper() -> bytes:
    return (
        U("joblib.numpy_pickle")
        + U("NumpyArrayWrapper")
        + b"\x93)\x81}("
        + U("subclass")
        + U("numpy")
        + U("ndarray")
        + b"\x93"
        + U("shape")
        + b"K\x01\x85"
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


def test_benign_object_array_is_allowed() -> None:
    r = scan(BARE_OBJECT_ARRAY, "arr.joblib")
    assert worst(r) is None or worst(r) < Severity.HIGH, [(f.rule_id, f.message) for f in r.findings]


def test_memo_aliasing_payload_for_pickle_load_still_blocks() -> None:
    """joblib.load: builtins.set(cmd); pickle.load: the same BINGETs fetch 'os' and 'system' from the outer memo."""
    outer = b"\x80\x04" + U("os") + b"\x94" + U("system") + b"\x94" + b"00]\x94" + _wrapper()
    inner = (
        b"\x80\x04"
        + U("builtins")
        + b"\x94"
        + U("set")
        + b"\x94"
        + b"00h\x00h\x01\x93"
        + U(CANARY)
        + b"\x85R."
    )
    r = scan(outer + inner + b"a.", "model.joblib")
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" for f in r.findings)
    assert worst(r) is Severity.CRITICAL


def test_non_str_stack_global_operand_in_the_plain_view_stops_it() -> None:
    """The aliased operand is an instance (NEWOBJ result): _pickle.c raises there; nothing after it runs."""
    outer = b"\x80\x04]\x94" + _wrapper()
    # joblib view: numpy.ndarray via two memoized strings; plain view: BINGET 0 is the outer list
    inner = b"\x80\x04" + U("builtins") + b"\x94" + U("set") + b"\x94" + b"00h\x00h\x01\x93)R."
    r = scan(outer + inner + b"a.", "model.joblib")
    assert "PICKLE-DYNAMIC-IMPORT" not in {f.rule_id for f in r.findings}


def test_imported_object_as_aliased_operand_stops_the_plain_view() -> None:
    """A class (an allowlisted import) fetched by the aliased BINGET is not a str: _pickle.c raises there."""
    outer = b"\x80\x04" + U("builtins") + U("set") + b"\x93\x94" + U("x") + b"\x94" + b"00]\x94" + _wrapper()
    inner = b"\x80\x04" + U("builtins") + b"\x94" + U("set") + b"\x94" + b"00h\x00h\x01\x93)R."
    r = scan(outer + inner + b"a.", "model.joblib")
    assert "PICKLE-DYNAMIC-IMPORT" not in {f.rule_id for f in r.findings}
    assert worst(r) is None or worst(r) < Severity.HIGH


def test_unlisted_import_as_aliased_operand_still_blocks() -> None:
    """os.name is a str: the view stops at the STACK_GLOBAL, but the unlisted import itself was reported."""
    outer = b"\x80\x04" + U("os") + U("name") + b"\x93\x94" + U("system") + b"\x94" + b"00]\x94" + _wrapper()
    inner = (
        b"\x80\x04"
        + U("builtins")
        + b"\x94"
        + U("set")
        + b"\x94"
        + b"00h\x00h\x01\x93"
        + U(CANARY)
        + b"\x85R."
    )
    r = scan(outer + inner + b"a.", "model.joblib")
    assert worst(r) is not None and worst(r) >= Severity.HIGH
