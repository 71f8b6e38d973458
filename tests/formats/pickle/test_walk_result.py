"""The typed walk result, the independent checks that judge it, and literal values read by the walker."""

from __future__ import annotations

import pickle
import struct
import time

from scanner.findings import FileResult
from scanner.formats.detect import inspect_with_detection
from scanner.formats.interface import InspectContext, ScanState
from scanner.formats.pickle import NOT_LITERAL, analyze_pickle_stream, read_literal
from scanner.formats.pickle.checks import CHECKS, CheckContext, check_imports, run_checks
from scanner.formats.pickle.classify import Classifier
from scanner.formats.pickle.constraints import load_constraints
from scanner.formats.pickle.cursor import Cursor
from scanner.formats.pickle.gadgets import load_gadgets
from scanner.formats.pickle.records import CallSite, ImportRec, Mutation, UntracedCall
from scanner.formats.pickle.walker import Budget, Machine, WalkResult
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from scanner.rules import get_rule_db

from .assembler import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    PROTO,
    REDUCE,
    SETITEMS,
    STOP,
    TUPLE,
    B,
    Evil,
    G,
    U,
    call,
    rules,
    scan,
)


def _ctx() -> InspectContext:
    limits = Limits()
    state = ScanState(get_rule_db(), limits, FileResult(path="s", size=0, format="pickle"), 1 << 30,
                      time.monotonic() + 60)  # fmt: skip
    return InspectContext(state, "s", dispatch=inspect_with_detection)


def _walk(data: bytes) -> WalkResult:
    m = Machine(Cursor(BytesReader(data, "x")), Limits(), Budget(100_000), out_of_time=lambda: False,
                gadgets=load_gadgets(get_rule_db().root))  # fmt: skip
    return m.run()


# a stream that trips most checks at once: an unlisted call, a denylisted call, state planted on an
# import, an untraced call, a call of os.system
MIXED = (
    PROTO(2)
    + MARK
    + call(G("os", "system"), U("true"))
    + call(G("mypkg.mod", "Thing"))
    + G("collections", "OrderedDict") + EMPTY_DICT + BUILD
    + call(G("builtins", "len"), U("ab")) + EMPTY_TUPLE + REDUCE
    + TUPLE + STOP
)  # fmt: skip


def test_walk_result_is_typed_records() -> None:
    res = _walk(MIXED)
    assert res.end == len(MIXED) and res.error is None
    system = next(r for r in res.imports if r.path == "os:system")
    assert isinstance(system, ImportRec) and system.called == 1
    assert isinstance(system.first_call, CallSite) and system.first_call.opcode == "REDUCE"
    assert system.first_call.args == "('true',)"
    assert [type(m) for m in res.mutations] == [Mutation] and res.mutations[
        0
    ].target.path == "collections:OrderedDict"
    assert [type(u) for u in res.untraced] == [UntracedCall]
    assert res.untraced[0].callable.startswith("the result of calling builtins:len")
    assert res.value is NOT_LITERAL  # a tuple holding calls is no literal


def _check_context(ctx: InspectContext) -> CheckContext:
    db = ctx.state.rules
    return CheckContext(ctx, Classifier(db, None, []), load_constraints(db.root), Budget(100_000))


def test_checks_are_independent_and_together_give_the_full_analysis() -> None:
    full = _ctx()
    analyze_pickle_stream(BytesReader(MIXED, "s"), full)
    expected = {f.rule_id for f in full.state.result.findings}
    assert {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-CALL-UNLISTED", "PICKLE-BUILD-ON-CALLABLE"} <= expected
    assert "PICKLE-UNTRACED-CALL" in expected
    res = _walk(MIXED)
    union: set[str] = set()
    for check in CHECKS:
        ctx = _ctx()
        check(res, _check_context(ctx))  # each check alone, on the same result
        got = {f.rule_id for f in ctx.state.result.findings}
        assert not got & union, f"{check.__name__} repeats another check's findings: {got & union}"
        union |= got
    assert union == expected
    # the import check alone judges imports only
    ctx = _ctx()
    check_imports(res, _check_context(ctx))
    assert {f.rule_id for f in ctx.state.result.findings} == {
        "PICKLE-DANGEROUS-GLOBAL",
        "PICKLE-CALL-UNLISTED",
    }


def test_a_check_can_be_left_out() -> None:
    res = _walk(MIXED)
    ctx = _ctx()
    run_checks(res, _check_context(ctx), [c for c in CHECKS if c is not check_imports])
    got = {f.rule_id for f in ctx.state.result.findings}
    assert "PICKLE-DANGEROUS-GLOBAL" not in got and "PICKLE-BUILD-ON-CALLABLE" in got


def test_literal_values_at_stop() -> None:
    assert _walk(pickle.dumps(1001, protocol=2)).value == 1001
    assert _walk(pickle.dumps(["a", ("b", 2)], protocol=2)).value == ["a", ("b", 2)]
    assert _walk(pickle.dumps({"a": 1}, protocol=2)).value is NOT_LITERAL  # dicts are not read as literals
    assert _walk(pickle.dumps(Evil(), protocol=2)).value is NOT_LITERAL
    assert _walk(pickle.dumps([1, 2], protocol=2)[:-1]).value is NOT_LITERAL  # no STOP reached


def test_read_literal_keeps_a_long_list_whole() -> None:
    keys = [str(94_000_000 + i) for i in range(5000)]
    data = pickle.dumps(keys, protocol=2)
    ctx = _ctx()
    summary = analyze_pickle_stream(BytesReader(data, "k"), ctx)
    assert summary.values == [NOT_LITERAL]  # the analysis walk keeps 64 items of a container
    assert read_literal(BytesReader(data, "k"), ctx, 0, len(data)) == keys
    evil = pickle.dumps(["0", Evil()], protocol=2)
    assert read_literal(BytesReader(evil, "k"), ctx, 0, len(evil)) is NOT_LITERAL


def _storage_ref(key: str) -> bytes:
    pid = MARK + U("storage") + G("torch", "FloatStorage") + U(key) + U("cpu") + b"K\x01" + TUPLE
    return U(key) + pid + b"Q"  # BINPERSID: the dict maps the key to the storage persistent_load returns


def test_legacy_torch_with_many_storages_reads_every_key() -> None:
    # regression for replacing torch_legacy's own literal decoder: 300 keys is more than one container keeps
    keys = [str(1000 + i) for i in range(300)]
    magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
    proto = b"\x80\x02M\xe9\x03."
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    data = PROTO(2) + EMPTY_DICT + MARK + b"".join(_storage_ref(k) for k in keys) + SETITEMS + STOP
    key_list = pickle.dumps(keys, protocol=2)
    raw = b"".join(struct.pack("<q", 1) + b"\0\0\0\0" for _ in keys)
    blob = magic + proto + sys_info + data + key_list + raw
    r = scan(blob, name="legacy.pt")
    assert r.format == "pytorch-legacy"
    assert "TORCH-STORAGE-INVALID" not in rules(r), [f.message for f in r.findings]


def test_nested_payload_check_follows_loader_arguments() -> None:
    inner = pickle.dumps(Evil(), protocol=2)
    outer = PROTO(2) + call(G("pickle", "loads"), B(inner)) + STOP
    r = scan(outer)
    assert {"PICKLE-NESTED", "PICKLE-DANGEROUS-GLOBAL"} <= rules(r)
    assert any(f.path.endswith("<nested@2>") or "!<nested@" in f.path for f in r.findings)


def _memo_tree(depth: int) -> bytes:
    """L0 = [0]; L(k) = [L(k-1)] * 64 through memo references: a few hundred bytes, 64**depth leaves."""
    out = PROTO(2) + b"]K\x00a" + b"q\x00"
    for k in range(1, depth + 1):
        out += b"](" + (b"h" + bytes([k - 1])) * 64 + b"e" + b"q" + bytes([k])
    return out


def test_values_built_from_memo_references_stay_bounded() -> None:
    # 64**6 leaves: converting the persistent id or the STOP value must not expand the tree (no repr on failure)
    t = time.monotonic()
    res = _walk(_memo_tree(6) + b"Q" + _memo_tree(6)[2:] + STOP)
    assert time.monotonic() - t < 5
    assert res.end > 0 and len(res.persistent_ids) == 1
    shared = isinstance(res.value, list) and len(res.value) == 64 and res.value[0] is res.value[63]
    assert shared  # converted once per container and shared, as the loader shares it (never expanded)
    assert _walk(_memo_tree(1) + STOP).value == [[0]] * 64
