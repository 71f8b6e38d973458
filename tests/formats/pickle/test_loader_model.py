"""The walker models what the real loaders do (issue #9): calls into objects, factories, lenient parsing, joblib.

Payload variants are assembled from raw opcodes. Where a test says "runs", a
subprocess loads the bytes with the real ``pickle.loads`` (harmless canary: it
touches a file in a temporary directory) to prove the variant is a live one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scanner.findings import Severity

from .assembler import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    INT,
    MARK,
    MEMOIZE,
    NEWOBJ,
    NONE,
    POP,
    PROTO,
    REDUCE,
    S0,
    SETITEM,
    SG,
    STOP,
    TUPLE,
    TUPLE1,
    TUPLE2,
    G,
    U,
    call,
    finding,
    rules,
    scan,
)

CRIT = Severity.CRITICAL
APPEND, APPENDS, ADDITEMS, EMPTY_SET, BINPERSID = b"a", b"e", b"\x90", b"\x8f", b"Q"


def _runs(data: bytes, tmp: Path, stub_joblib: bool = False) -> bool:
    """Load ``data`` with the real pickle.loads in a subprocess; True when the canary file appeared."""
    (tmp / "payload.pkl").write_bytes(data)
    env_path = ""
    if stub_joblib:  # plain pickle.load only needs the class to exist: a bare class is joblib's wrapper to it
        pkg = tmp / "stub" / "joblib"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "numpy_pickle.py").write_text("class NumpyArrayWrapper:\n    pass\n")
        env_path = str(tmp / "stub")
    script = (
        "import pickle, sys\n"
        f"sys.path.insert(0, {env_path!r})\n"
        "try:\n    pickle.loads(open(sys.argv[1], 'rb').read())\nexcept Exception:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp / "payload.pkl")], cwd=tmp, timeout=60, check=False)
    return (tmp / "ran").exists()


def _cmd(tmp: Path) -> str:
    return f"touch {tmp / 'ran'}"


# -- class 2: calls the unpickler makes into objects ---------------------------------------------

NS = (
    SG("argparse", "Namespace") + EMPTY_TUPLE + REDUCE
)  # allowlisted (python-data), has a __dict__, no __setstate__
NS_NEWOBJ = SG("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ


def _plant(key: str, value: bytes, slots: bool = False) -> bytes:
    d = EMPTY_DICT + U(key) + value + SETITEM
    return (NONE + d + TUPLE2 if slots else d) + BUILD


def _hook_variants(tmp: Path, target: bytes) -> dict[str, bytes]:
    system, cmd = SG("os", "system"), U(_cmd(tmp))
    return {
        "setstate": target + _plant("__setstate__", system) + cmd + BUILD,
        "setstate-slots": target + _plant("__setstate__", system, slots=True) + cmd + BUILD,
        "append": target + _plant("append", system) + cmd + APPEND,
        "extend": target
        + _plant("extend", SG("subprocess", "call"))
        + MARK
        + U("touch")
        + U(str(tmp / "ran"))
        + APPENDS,
        "add": target + _plant("add", system) + MARK + cmd + ADDITEMS,
        "memo": target + MEMOIZE + POP + NONE + POP + b"h\x00" + _plant("append", system) + cmd + APPEND,
    }


@pytest.mark.parametrize("target", [NS, NS_NEWOBJ], ids=["reduce", "newobj"])
@pytest.mark.parametrize("variant", ["setstate", "setstate-slots", "append", "extend", "add", "memo"])
def test_planted_hook_is_a_call(variant: str, target: bytes, tmp_path: Path) -> None:
    data = PROTO(4) + _hook_variants(tmp_path, target)[variant] + STOP
    assert _runs(data, tmp_path), "the variant must really run under pickle.loads"
    r = scan(data)
    assert finding(r, "PICKLE-HOOK-PLANTED").severity is CRIT
    dangerous = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert dangerous.evidence.get("called", 0) >= 1, dangerous.evidence


@pytest.mark.parametrize("key", ["__setstate__", "append", "extend", "add"])
def test_planted_unlisted_global_is_judged_called(key: str) -> None:
    data = PROTO(4) + NS + _plant(key, SG("mypkg.evil", "run")) + STOP
    r = scan(data)
    assert "PICKLE-CALL-UNLISTED" in rules(r) and "PICKLE-IMPORT-UNLISTED" not in rules(r)
    assert "PICKLE-HOOK-PLANTED" in rules(r)


def test_class_swap_through_slot_state() -> None:
    data = PROTO(4) + NS + _plant("__class__", SG("mypkg.evil", "Gadget"), slots=True) + STOP
    r = scan(data)
    assert "PICKLE-HOOK-PLANTED" in rules(r) and "PICKLE-CALL-UNLISTED" in rules(r)


def test_ordinary_instance_state_is_not_a_hook() -> None:
    # attributes named like hooks holding data, and callables under ordinary names, are plain state
    data = (
        PROTO(4)
        + NS
        + EMPTY_DICT
        + U("append")
        + INT(1)
        + SETITEM
        + U("fn")
        + SG("collections", "OrderedDict")
        + SETITEM
    )
    data += BUILD + STOP
    assert scan(data).findings == []


def test_persistent_id_hands_its_imports_to_persistent_load() -> None:
    data = PROTO(2) + MARK + S0("storage") + G("mypkg.store", "Thing") + TUPLE + BINPERSID + STOP
    f = finding(scan(data), "PICKLE-CALL-UNLISTED")
    assert f.evidence["global"] == "mypkg.store:Thing"


# -- class 3: unlisted blocks; the denylist matches every spelling ----------------------------------


def test_unlisted_global_blocks_even_when_only_imported() -> None:
    r = scan(PROTO(4) + SG("mypkg.models", "Net") + STOP)
    f = finding(r, "PICKLE-IMPORT-UNLISTED")
    assert f.severity is Severity.HIGH and "policy" in f.message


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sqlite3.dbapi2", "connect"),
        ("_sqlite3", "connect"),
        ("posix", "system"),
        ("nt", "system"),
        ("_io", "open"),
        ("typing", "get_type_hints"),
        ("typing_extensions", "get_type_hints"),
        ("typing", "_eval_type"),
        ("typing", "ForwardRef"),
        ("sympy", "sympify"),
        ("sympy.parsing.sympy_parser", "parse_expr"),
        ("pandas", "eval"),
        ("pandas.core.computation.eval", "eval"),
        ("numpy.f2py", "compile"),
        ("code", "InteractiveInterpreter"),
        ("timeit", "timeit"),
        ("cProfile", "run"),
        ("pdb", "run"),
        ("runpy", "run_module"),
        ("pydoc", "locate"),
        ("operator", "methodcaller"),
        ("_operator", "attrgetter"),
        ("functools", "reduce"),
        ("builtins", "compile"),
        ("asyncio.subprocess", "create_subprocess_shell"),
        ("webbrowser", "open"),
        ("huggingface_hub.file_download", "hf_hub_download"),
        ("torch.serialization", "os.system"),
    ],
)
def test_denylist_matches_every_spelling(module: str, name: str) -> None:
    r = scan(PROTO(4) + call(SG(module, name), U("x")) + STOP)
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").severity is CRIT


def test_typing_forward_ref_evaluation_really_runs(tmp_path: Path) -> None:
    # typing.get_type_hints evaluates annotation strings: a dict subclass-free gadget via a class-like object
    ns = SG("argparse", "Namespace") + EMPTY_TUPLE + REDUCE
    ann = EMPTY_DICT + U("x") + U(f"__import__('os').system({_cmd(tmp_path)!r})") + SETITEM
    data = (
        PROTO(4)
        + SG("typing", "get_type_hints")
        + ns
        + EMPTY_DICT
        + U("__annotations__")
        + ann
        + SETITEM
        + BUILD
    )
    data += TUPLE1 + REDUCE + STOP
    assert _runs(data, tmp_path)
    assert finding(scan(data), "PICKLE-DANGEROUS-GLOBAL").evidence["called"] == 1


# -- class 4: factories and apply helpers judge their arguments ------------------------------------


def test_reconstructor_base_must_be_a_builtin() -> None:
    ok = (
        PROTO(2)
        + call(G("copyreg", "_reconstructor"), G("argparse", "Namespace"), G("builtins", "object"), NONE)
        + STOP
    )
    assert scan(ok).findings == []
    bad = PROTO(2) + call(
        G("copyreg", "_reconstructor"), G("argparse", "Namespace"), G("argparse", "Namespace"), NONE
    )
    assert finding(scan(bad + STOP), "PICKLE-GADGET-ARGUMENT").evidence["position"] == 1


def test_factory_class_argument_is_called() -> None:
    data = PROTO(2) + call(
        G("copyreg", "_reconstructor"), G("mypkg.evil", "Gadget"), G("builtins", "object"), NONE
    )
    f = finding(scan(data + STOP), "PICKLE-CALL-UNLISTED")
    assert f.evidence["global"] == "mypkg.evil:Gadget" and f.evidence["called"] == 1


def test_numpy_generator_ctor_calls_its_second_argument(tmp_path: Path) -> None:
    data = (
        PROTO(4)
        + call(SG("numpy.random._pickle", "__generator_ctor"), U(_cmd(tmp_path)), SG("os", "system"))
        + STOP
    )
    assert _runs(data, tmp_path)
    r = scan(data)
    assert {"PICKLE-GADGET-ARGUMENT", "PICKLE-DANGEROUS-GLOBAL"} <= rules(r)
    unlisted = (
        PROTO(4) + call(SG("numpy.random._pickle", "__generator_ctor"), U("x"), SG("mypkg", "f")) + STOP
    )
    assert {"PICKLE-GADGET-ARGUMENT", "PICKLE-CALL-UNLISTED"} <= rules(scan(unlisted))


def test_numpy_bit_generator_ctor_instantiates_only_bit_generators() -> None:
    ok = (
        PROTO(4)
        + call(SG("numpy.random._pickle", "__bit_generator_ctor"), SG("numpy.random._pcg64", "PCG64"))
        + STOP
    )
    assert "PICKLE-GADGET-ARGUMENT" not in rules(scan(ok))
    bad = (
        PROTO(4)
        + call(SG("numpy.random._pickle", "__bit_generator_ctor"), SG("argparse", "Namespace"))
        + STOP
    )
    assert "PICKLE-GADGET-ARGUMENT" in rules(scan(bad))


def test_defaultdict_factory_is_called() -> None:
    data = PROTO(4) + call(SG("collections", "defaultdict"), SG("mypkg", "factory")) + STOP
    assert finding(scan(data), "PICKLE-CALL-UNLISTED").evidence["called"] == 1
    fine = PROTO(4) + call(SG("collections", "defaultdict"), SG("builtins", "list")) + STOP
    assert scan(fine).findings == []


def test_torch_rebuild_from_type_calls_func_and_setattrs_state() -> None:
    state = EMPTY_DICT + U("__class__") + SG("mypkg", "Sub") + SETITEM
    data = (
        PROTO(2)
        + call(
            G("torch._utils", "_rebuild_from_type_v2"),
            G("mypkg", "func"),
            G("torch.nn.parameter", "Parameter"),
            EMPTY_TUPLE,
            state,
        )
        + STOP
    )
    r = scan(data)
    called = {f.evidence["global"] for f in r.findings if f.rule_id == "PICKLE-CALL-UNLISTED"}
    assert {"mypkg:func", "mypkg:Sub"} <= called
    assert "PICKLE-HOOK-PLANTED" in rules(r)


def test_torch_backward_hooks_are_called() -> None:
    hooks = SG("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + INT(0) + SG("mypkg", "hook") + SETITEM
    args = [B_STORAGE, INT(0), INT(1) + TUPLE1, INT(1) + TUPLE1, b"\x89", hooks]
    data = PROTO(4) + call(SG("torch._utils", "_rebuild_tensor_v2"), *args) + STOP
    assert finding(scan(data), "PICKLE-CALL-UNLISTED").evidence["called"] == 1


B_STORAGE = NONE


@pytest.mark.parametrize(
    "alloc",
    [
        call(SG("builtins", "bytes"), b"\x8a\x05" + (1 << 36).to_bytes(5, "little")),
        call(SG("builtins", "bytearray"), b"\x8a\x05" + (1 << 36).to_bytes(5, "little")),
        call(
            SG("numpy._core.multiarray", "_reconstruct"),
            SG("numpy", "ndarray"),
            b"J\x00\xca\x9a\x3b" + b"J\x00\xca\x9a\x3b" + TUPLE2,
            U("b"),
        ),
    ],
)
def test_huge_allocation_is_a_finding(alloc: bytes) -> None:
    assert "PICKLE-ALLOCATION-SIZE" in rules(scan(PROTO(4) + alloc + STOP))


def test_small_allocation_is_fine() -> None:
    assert scan(PROTO(4) + call(SG("builtins", "bytes"), INT(100)) + STOP).findings == []


# -- lenient argument forms the C unpickler accepts must not end the walk ---------------------------


@pytest.mark.parametrize("arg", [b"I0x1f\n", b"I1_000\n", b"I 7 \n", b"I010\n", b"L0x10L\n", b"L-0b101\n"])
def test_lenient_int_forms_do_not_hide_the_payload(arg: bytes, tmp_path: Path) -> None:
    data = arg + POP + G("os", "system") + MARK + S0(_cmd(tmp_path)) + TUPLE + REDUCE + STOP
    assert _runs(data, tmp_path)
    r = scan(data)
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r) and "PICKLE-MALFORMED" not in rules(r)
    assert "PICKLE-LENIENT-OPCODE" in rules(r)


def test_plain_decimal_ints_are_not_lenient() -> None:
    r = scan(b"I12\n0I-3\n0I00\n0L5L\n0N.")
    assert "PICKLE-LENIENT-OPCODE" not in rules(r)


# -- class 1: joblib framing and the plain unpickler both analyzed, with full state ---------------

_U1 = SG("numpy", "dtype") + U("u1") + b"\x89\x88" + b"\x87" + REDUCE


def _dtype(code: str, elsize: int = -1, flags: int = 0) -> bytes:
    st = MARK + INT(3) + U("|") + NONE + NONE + NONE + _i(elsize) + _i(-1) + INT(flags) + TUPLE
    return SG("numpy", "dtype") + U(code) + b"\x89\x88" + b"\x87" + REDUCE + st + BUILD


def _i(n: int) -> bytes:
    return b"J" + n.to_bytes(4, "little", signed=True)


def _state(dtype: bytes, n: int) -> bytes:
    return (
        EMPTY_DICT
        + U("subclass")
        + SG("numpy", "ndarray")
        + SETITEM
        + U("shape")
        + INT(n)
        + TUPLE1
        + SETITEM
        + U("order")
        + U("C")
        + SETITEM
        + U("dtype")
        + dtype
        + SETITEM
        + U("allow_mmap")
        + b"\x89"
        + SETITEM
    )


_WRAPPER = SG("joblib.numpy_pickle", "NumpyArrayWrapper")
# memo 0 = 'os', memo 1 = 'system': harmless strings in the outer pickle
_PRELUDE = (
    EMPTY_DICT + U("k1") + U("os") + MEMOIZE + SETITEM + U("k2") + U("system") + MEMOIZE + SETITEM + U("arr")
)


def _ctx_payload(cmd: str) -> bytes:
    """Uses the outer memo: only a walk that kept the stream's state sees os.system here."""
    return b"h\x00h\x01\x93" + U(cmd) + TUPLE1 + REDUCE + POP


def test_array_bytes_run_by_plain_pickle_load_with_outer_state(tmp_path: Path) -> None:
    raw = _ctx_payload(_cmd(tmp_path))
    data = (
        PROTO(4)
        + _PRELUDE
        + _WRAPPER
        + EMPTY_TUPLE
        + NEWOBJ
        + _state(_U1, len(raw))
        + BUILD
        + raw
        + SETITEM
        + STOP
    )
    assert _runs(data, tmp_path, stub_joblib=True)
    r = scan(data, name="model.joblib")
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert f.evidence["global"] == "os:system" and "plain unpickler" in f.evidence["view"]


def _after_array(wrapper: bytes, data_len: int, dtype: bytes = _U1, junk: bytes = b"") -> bytes:
    raw = junk or (b"." + b"\xff" * (data_len - 1))  # a plain load stops here; joblib skips it
    return PROTO(4) + _PRELUDE + wrapper + raw + _ctx_payload("touch x") + SETITEM + STOP


_JUNK16 = b"." + b"\xff" * 15


@pytest.mark.parametrize(
    ("wrapper", "junk"),
    [
        (_WRAPPER + EMPTY_TUPLE + NEWOBJ + _state(_U1, 16) + BUILD, _JUNK16),
        (call(SG("copyreg", "__newobj__"), _WRAPPER) + _state(_U1, 16) + BUILD, _JUNK16),
        (
            call(SG("copyreg", "_reconstructor"), _WRAPPER, SG("builtins", "object"), NONE)
            + _state(_U1, 16)
            + BUILD,
            _JUNK16,
        ),
        # __init__'s default alignment: a padding-length byte (0), then 15 array bytes
        (
            call(_WRAPPER, SG("numpy", "ndarray"), INT(15) + TUPLE1, U("C"), _U1) + EMPTY_DICT + BUILD,
            b"\x00" + _JUNK16[1:],
        ),
    ],
    ids=["newobj", "copyreg-newobj", "reconstructor", "init-args"],
)
def test_wrapper_recognized_however_built(wrapper: bytes, junk: bytes) -> None:
    r = scan(_after_array(wrapper, 16, junk=junk), name="m.joblib")
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "os:system"


def test_fixed_size_dtype_ignores_pickled_elsize() -> None:
    # f8 with a pickled elsize of 1: numpy (and joblib) read 2 * 8 bytes, not 2 * 1
    wrapper = _WRAPPER + EMPTY_TUPLE + NEWOBJ + _state(_dtype("f8", elsize=1), 2) + BUILD
    r = scan(_after_array(wrapper, 16), name="m.joblib")
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "os:system"


def test_object_flag_comes_from_the_pickled_flags() -> None:
    # 'f8' with the object flag set in the pickled dtype state: joblib pickle.load()s a nested pickle
    inner = PROTO(2) + G("os", "system") + MARK + S0("touch y") + TUPLE + REDUCE + STOP
    wrapper = _WRAPPER + EMPTY_TUPLE + NEWOBJ + _state(_dtype("f8", flags=63), 1) + BUILD
    r = scan(PROTO(4) + _PRELUDE + wrapper + inner + SETITEM + STOP, name="m.joblib")
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r) and "PICKLE-MALFORMED" not in rules(r)


def test_empty_object_array_still_reads_a_nested_pickle() -> None:
    # joblib 1.6 reads the nested pickle of an object array whatever its element count
    inner = PROTO(2) + G("os", "system") + MARK + S0("touch z") + TUPLE + REDUCE + STOP
    wrapper = _WRAPPER + EMPTY_TUPLE + NEWOBJ + _state(_dtype("O8", flags=63), 0) + BUILD
    r = scan(PROTO(4) + _PRELUDE + wrapper + inner + SETITEM + STOP, name="m.joblib")
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r) and "PICKLE-MALFORMED" not in rules(r)


def test_plain_view_ignores_garbage_imports_in_array_data() -> None:
    # array bytes that look like a GLOBAL of names no module can have: the plain loader fails there
    raw = b"c\xff\xfe\n\x01\x02\n" + b"\x00" * 9
    data = (
        PROTO(4)
        + _PRELUDE
        + _WRAPPER
        + EMPTY_TUPLE
        + NEWOBJ
        + _state(_U1, len(raw))
        + BUILD
        + raw
        + SETITEM
        + STOP
    )
    assert scan(data, name="m.joblib").findings == []


def test_wrapper_made_by_class_swap_uses_attributes_of_earlier_builds() -> None:
    # a Namespace gets the wrapper's attributes, then BUILD slot state swaps its class to NumpyArrayWrapper:
    # joblib's isinstance test after that BUILD reads 16 array bytes
    swap = NONE + EMPTY_DICT + U("__class__") + _WRAPPER + SETITEM + TUPLE2 + BUILD
    wrapper = SG("argparse", "Namespace") + EMPTY_TUPLE + NEWOBJ + _state(_U1, 16) + BUILD + swap
    r = scan(_after_array(wrapper, 16), name="m.joblib")
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "os:system"
    assert "PICKLE-HOOK-PLANTED" in rules(r)


# -- audit constraints (signatures/pickle/audit): side-effect classes only rebuilt with cls.__new__ -------------

_MEMORY = SG("joblib.memory", "Memory")  # audit: newobj-only (its __init__ creates a cache directory)


@pytest.mark.parametrize(
    "rebuilt",
    [
        _MEMORY + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + BUILD,
        call(SG("copyreg", "__newobj__"), _MEMORY) + EMPTY_DICT + BUILD,
        call(SG("copyreg", "_reconstructor"), _MEMORY, SG("builtins", "object"), NONE),
    ],
    ids=["newobj", "copyreg-newobj", "reconstructor"],
)
def test_newobj_only_class_rebuilt_is_fine(rebuilt: bytes) -> None:
    assert "PICKLE-CONSTRAINT-VIOLATION" not in rules(scan(PROTO(4) + rebuilt + STOP))


@pytest.mark.parametrize(
    "called",
    [
        call(_MEMORY, U("/tmp/modelward-memory")),
        MARK + _MEMORY + U("/tmp/modelward-memory") + b"o",
        call(SG("collections", "defaultdict"), _MEMORY),
        call(SG("numpy.random._pickle", "__bit_generator_ctor"), _MEMORY),
    ],
    ids=["reduce", "obj", "defaultdict-factory", "apply-helper"],
)
def test_newobj_only_class_called_is_a_violation(called: bytes) -> None:
    f = finding(scan(PROTO(4) + called + STOP), "PICKLE-CONSTRAINT-VIOLATION")
    assert f.severity is Severity.HIGH and f.evidence["constraint"] == "newobj-only"


@pytest.mark.parametrize(
    "mapping",
    [
        SG("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + U("__setstate__")
        + SG("os", "system")
        + SETITEM,
        call(SG("builtins", "dict"), b"]" + U("__setstate__") + SG("os", "system") + TUPLE2 + b"a"),
    ],
    ids=["ordereddict-setitem", "dict-of-pairs"],
)
def test_hook_planted_through_a_constructed_mapping(mapping: bytes, tmp_path: Path) -> None:
    data = PROTO(4) + NS + mapping + BUILD + U(_cmd(tmp_path)) + BUILD + STOP
    assert _runs(data, tmp_path)
    r = scan(data)
    assert "PICKLE-HOOK-PLANTED" in rules(r)
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence.get("called", 0) >= 1
