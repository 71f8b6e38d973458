"""Every published pickle-scanner bypass class (PEERS.md §5 A and B) must be caught."""

from __future__ import annotations

import base64
import pickle
import zlib

import pytest

from scanner.findings import Coverage, Severity

from .assembler import (
    BUILD,
    CANARY,
    EMPTY_DICT,
    GET,
    INT,
    MARK,
    MEMOIZE,
    NEWOBJ,
    NONE,
    OBJ,
    POP,
    PROTO,
    PUT,
    REDUCE,
    S0,
    SETITEM,
    SG,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    TUPLE1,
    TUPLE2,
    B,
    Evil,
    G,
    U,
    call,
    finding,
    rules,
    scan,
)

CRIT = Severity.CRITICAL


def _cmd() -> bytes:
    return U(CANARY)


@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
def test_classic_reduce_every_protocol(proto: int) -> None:
    r = scan(pickle.dumps({"w": Evil()}, protocol=proto))
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert f.severity is CRIT
    assert f.evidence["callable"] in ("posix.system", "nt.system")
    assert CANARY in f.evidence["args"]
    assert r.coverage is Coverage.FULL


def test_decompiled_evidence_on_blocked_pickle() -> None:
    r = scan(pickle.dumps(Evil(), protocol=4))
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert "system" in f.evidence.get("decompiled", "")
    assert len(f.evidence["decompiled"]) <= 4000


def test_memo_indirection_and_reput_overwrite() -> None:
    # 'collections' stored in slot 0, overwritten by 'os'; the GET must resolve to 'os'
    data = (
        PROTO(4)
        + U("collections")
        + PUT(0)
        + POP
        + U("os")
        + PUT(0)
        + POP
        + U("system")
        + PUT(1)
        + POP
        + GET(0)
        + GET(1)
        + STACK_GLOBAL
        + _cmd()
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert f.evidence["global"] == "os:system"
    assert "collections" not in str(f.evidence)


def test_memoize_indirection_padded_with_literals() -> None:
    data = (
        PROTO(4)
        + U("os")
        + MEMOIZE
        + U("junk1")
        + MEMOIZE
        + U("system")
        + MEMOIZE
        + U("junk2")
        + MEMOIZE
        + POP
        + POP
        + POP
        + POP
        + GET(0)
        + GET(2)
        + STACK_GLOBAL
        + _cmd()
        + TUPLE1
        + REDUCE
        + STOP
    )
    assert finding(scan(data), "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "os:system"


@pytest.mark.parametrize("opcode", ["GLOBAL", "STACK_GLOBAL"])
def test_dotted_name_reaching_os_system_through_torch(opcode: str) -> None:
    imp = (
        G("torch", "serialization.os.system")
        if opcode == "GLOBAL"
        else SG("torch", "serialization.os.system")
    )
    r = scan(PROTO(4) + imp + _cmd() + TUPLE1 + REDUCE + STOP)
    assert r.max_severity is CRIT
    assert rules(r) & {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-DYNAMIC-IMPORT"}


def test_dotted_name_on_innocent_module_is_dynamic() -> None:
    r = scan(PROTO(4) + SG("collections", "OrderedDict.fromkeys") + U("ab") + TUPLE1 + REDUCE + STOP)
    assert finding(r, "PICKLE-DYNAMIC-IMPORT").severity is CRIT


def test_stack_global_with_non_literal_operands() -> None:
    # module name computed by a call (_codecs.encode is allowlisted; its result is not a literal)
    mod = call(SG("_codecs", "encode"), U("os"), U("latin1"))
    r = scan(PROTO(4) + mod + U("system") + STACK_GLOBAL + _cmd() + TUPLE1 + REDUCE + STOP)
    f = finding(r, "PICKLE-DYNAMIC-IMPORT")
    assert "not string literals" in f.evidence["reason"]


@pytest.mark.parametrize("ext", [b"\x82\x01", b"\x83\x01\x02", b"\x84\x01\x00\x00\x00"])
def test_extension_codes_end_the_load_and_block(ext: bytes) -> None:
    """copyreg's extension registry is empty in every loader: EXT raises ValueError there. The stream is
    malformed from that point (blocking, partial), and nothing after it is taken as what the loader runs."""
    r = scan(PROTO(2) + ext + _cmd() + TUPLE1 + REDUCE + STOP)
    f = finding(r, "PICKLE-MALFORMED")
    assert "unregistered extension code" in f.message and f.severity.rank >= Severity.HIGH.rank
    assert all(x.rule_id != "PICKLE-DYNAMIC-IMPORT" for x in r.findings)


def test_numpy_builtins_build_trick_modelscan_330() -> None:
    # BUILD on numpy.size planting .shape = numpy.__builtins__, then numpy.size(numpy.size, 'eval')(code)
    data = (
        PROTO(4)
        + SG("numpy", "size")
        + MEMOIZE
        + NONE
        + EMPTY_DICT
        + U("shape")
        + SG("numpy", "__builtins__")
        + SETITEM
        + TUPLE2
        + BUILD
        + POP
        + GET(0)
        + GET(0)
        + U("eval")
        + TUPLE2
        + REDUCE
        + U("__import__('os').system('" + CANARY + "')")
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert finding(r, "PICKLE-BUILD-ON-CALLABLE").severity is CRIT
    assert finding(r, "PICKLE-UNTRACED-CALL").severity is CRIT
    assert r.max_severity is CRIT


def test_attribute_planting_and_memo_confusion_modelscan_85() -> None:
    data = (
        PROTO(4)
        + SG("numpy", "prod")
        + NONE
        + EMPTY_DICT
        + U("a")
        + U("os")
        + SETITEM
        + U("b")
        + U("system")
        + SETITEM
        + TUPLE2
        + BUILD
        + POP
        + G("numpy", "prod.a")
        + PUT(5)
        + POP
        + G("numpy", "prod.b")
        + PUT(6)
        + POP
        + GET(5)
        + GET(6)
        + STACK_GLOBAL
        + _cmd()
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert {"PICKLE-BUILD-ON-CALLABLE", "PICKLE-DYNAMIC-IMPORT"} <= rules(r)


def test_get_of_never_put_slot_is_malformed_but_keeps_earlier_payload() -> None:
    data = PROTO(4) + call(SG("os", "system"), _cmd()) + POP + GET(7) + GET(8) + STACK_GLOBAL + STOP
    r = scan(data)
    assert {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-MALFORMED"} <= rules(r)
    assert "never stored" in finding(r, "PICKLE-MALFORMED").message
    assert r.coverage is Coverage.PARTIAL


def test_non_string_memo_value_for_stack_global() -> None:
    r = scan(PROTO(4) + INT(5) + PUT(0) + GET(0) + U("system") + STACK_GLOBAL + STOP)
    assert "PICKLE-MALFORMED" in rules(r)


def test_stack_global_with_protocol0_string_operands() -> None:
    r = scan(PROTO(4) + S0("os") + S0("system") + STACK_GLOBAL + _cmd() + TUPLE1 + REDUCE + STOP)
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "os:system"


def test_string_as_very_first_opcode() -> None:
    r = scan(U("os") + U("system") + STACK_GLOBAL + _cmd() + TUPLE1 + REDUCE + STOP, name="x.bin")
    assert r.format == "pickle"
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r)


def _inner() -> bytes:
    return pickle.dumps(Evil(), protocol=2)


@pytest.mark.parametrize(
    "loader",
    [("pickle", "loads"), ("_pickle", "loads"), ("dill", "loads"), ("torch.storage", "_load_from_bytes")],
)
def test_nested_pickle_loads_is_analyzed(loader: tuple[str, str]) -> None:
    r = scan(PROTO(4) + call(SG(*loader), B(_inner())) + STOP)
    nested = [f for f in r.findings if "!<nested@" in f.path]
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" and "system" in f.evidence["global"] for f in nested)
    assert "PICKLE-NESTED" in rules(r)


def test_nested_torch_load_of_bytesio() -> None:
    bio = call(SG("io", "BytesIO"), B(_inner()))
    r = scan(PROTO(4) + SG("torch", "load") + bio + TUPLE1 + REDUCE + STOP)
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" and "!<nested@" in f.path for f in r.findings)


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: b.hex(),
        lambda b: base64.b64encode(zlib.compress(b)).decode(),
        lambda b: zlib.compress(b),
    ],
    ids=["base64", "hex", "base64+zlib", "zlib"],
)
def test_encoded_inner_pickle_literal(encode) -> None:  # type: ignore[no-untyped-def]
    lit = encode(_inner())
    data = PROTO(4) + (U(lit) if isinstance(lit, str) else B(lit)) + STOP
    r = scan(data)
    assert finding(r, "PICKLE-ENCODED-PAYLOAD").severity is Severity.HIGH
    assert any(f.rule_id == "PICKLE-DANGEROUS-GLOBAL" and "!<nested@" in f.path for f in r.findings)


def test_plain_long_base64_text_is_not_a_payload() -> None:
    lit = base64.b64encode(bytes(range(256)) * 4).decode()
    r = scan(pickle.dumps({"blob": lit, "hexish": "deadbeef" * 10}, protocol=4))
    assert r.findings == []


def test_reduce_then_build_stdlib_call() -> None:
    # GHSA-mhc9-48gj-9gp3: a call whose result is BUILT must still be judged by its callable
    data = PROTO(4) + call(SG("socketserver", "TCPServer"), U("0.0.0.0"), INT(80)) + EMPTY_DICT + BUILD + STOP
    r = scan(data)
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "socketserver:TCPServer"


def test_call_followed_by_pop() -> None:
    data = PROTO(4) + call(SG("os", "system"), _cmd()) + POP + NONE + STOP
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(scan(data))


def test_inst_and_obj_calls() -> None:
    inst = b"(" + S0(CANARY) + b"ios\nsystem\n" + STOP
    obj = PROTO(2) + MARK + SG("pty", "spawn") + U("/bin/sh") + OBJ + STOP
    assert finding(scan(inst), "PICKLE-DANGEROUS-GLOBAL").evidence["opcode"] == "INST"
    assert finding(scan(obj), "PICKLE-DANGEROUS-GLOBAL").evidence["global"] == "pty:spawn"


@pytest.mark.parametrize(
    "module,name",
    [
        ("pip", "main"),
        ("pkgutil", "resolve_name"),
        ("importlib", "import_module"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("pydoc", "locate"),
        ("multiprocessing.util", "spawnv_passfds"),
        ("torch.utils.collect_env", "run"),
        ("torch.hub", "load"),
        ("asyncio.unix_events", "_UnixSubprocessTransport"),
        ("uuid", "_get_command_stdout"),
        ("imaplib", "IMAP4_stream"),
        ("test.support.script_helper", "assert_python_ok"),
        ("cProfile", "run"),
        ("numpy.testing._private.utils", "runstring"),
        ("operator", "attrgetter"),
        ("webbrowser", "open"),
        ("urllib.request", "urlopen"),
        ("logging", "FileHandler"),
        ("_io", "FileIO"),
        ("weakref", "finalize"),
        ("runpy", "run_path"),
        ("ctypes", "CDLL"),
        ("subprocess", "Popen"),
    ],
)
def test_denylisted_callables(module: str, name: str) -> None:
    r = scan(PROTO(4) + call(SG(module, name), _cmd()) + STOP)
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert f.severity is CRIT and f.evidence["called"] == 1


def test_denied_global_imported_but_never_called_is_still_critical() -> None:
    r = scan(PROTO(4) + SG("os", "system") + STOP)
    assert finding(r, "PICKLE-DANGEROUS-GLOBAL").severity is CRIT


def test_resolver_plus_getattr_chain_is_untraced() -> None:
    mod = call(SG("importlib", "import_module"), U("os"))
    fn = SG("builtins", "getattr") + mod + U("system") + TUPLE2 + REDUCE
    r = scan(PROTO(4) + fn + _cmd() + TUPLE1 + REDUCE + STOP)
    # getattr with a literal name is resolved statically: the fetched attribute is judged as an import
    found = {f.evidence.get("global") for f in r.findings if f.rule_id == "PICKLE-DANGEROUS-GLOBAL"}
    assert {"importlib:import_module", "importlib:import_module().system"} <= found
    assert all(f.severity is CRIT for f in r.findings if f.evidence.get("global", "").startswith("importlib"))


def test_python2_builtin_spelling_maps_to_builtins() -> None:
    r = scan(PROTO(2) + G("__builtin__", "eval") + _cmd() + TUPLE1 + REDUCE + STOP)
    f = finding(r, "PICKLE-DANGEROUS-GLOBAL")
    assert f.evidence["global"] == "builtins:eval" and f.evidence["as_written"] == "__builtin__:eval"


def test_code_object_and_scanner_tampering() -> None:
    code = scan(PROTO(4) + call(SG("types", "CodeType"), INT(0)) + STOP)
    assert finding(code, "PICKLE-CODE-OBJECT").severity is CRIT
    tamper = scan(PROTO(4) + SG("fickling", "hook") + STOP)
    assert finding(tamper, "PICKLE-SCANNER-TAMPERING").severity is CRIT


def test_joblib_legacy_wrapper() -> None:
    data = PROTO(2) + SG("joblib.numpy_pickle_compat", "NDArrayWrapper") + MARK + TUPLE + NEWOBJ + STOP
    assert finding(scan(data), "JOBLIB-LEGACY-WRAPPER").severity is Severity.HIGH


def test_setitem_on_imported_object_is_state_planting() -> None:
    data = PROTO(4) + SG("copyreg", "_reconstructor") + U("x") + U("y") + SETITEM + STOP
    assert "PICKLE-BUILD-ON-CALLABLE" in rules(scan(data))


def test_unlisted_import_and_call_severities() -> None:
    only = scan(PROTO(4) + SG("mypkg.models", "Net") + STOP)
    assert finding(only, "PICKLE-IMPORT-UNLISTED").severity is Severity.HIGH
    called = scan(PROTO(4) + call(SG("mypkg.models", "Net"), INT(1)) + STOP)
    f = finding(called, "PICKLE-CALL-UNLISTED")
    assert f.severity is Severity.HIGH and f.evidence["args"] == "(1,)"


def test_policy_extra_globals_and_profile_selection() -> None:
    data = PROTO(4) + call(SG("mypkg.models", "Net"), INT(1)) + STOP
    assert scan(data, extra=["mypkg.models:Net"]).findings == []
    torch_only = PROTO(2) + call(G("torch._utils", "_rebuild_tensor_v2"), INT(1)) + STOP
    assert scan(torch_only).findings == []
    assert "PICKLE-CALL-UNLISTED" in rules(scan(torch_only, profiles=["python-data"]))
    # the denylist wins over an allowlist extension: it only raises severity
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(scan(pickle.dumps(Evil(), protocol=4), extra=["posix:system"]))
