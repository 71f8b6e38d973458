"""Hostile pickles must not exhaust memory: the walker's state is bounded, a forced overrun is a limit finding."""

from __future__ import annotations

import pickle
import struct
import time
import tracemalloc

from scanner.findings import Coverage, FileResult
from scanner.formats.pickle.cursor import Cursor
from scanner.formats.pickle.walker import Budget, Machine
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from tests.memory import peak_rss_rise

from .assembler import EMPTY_LIST, MARK, NONE, POP, PROTO, SG, STOP, TUPLE1, Evil, G, U, finding, rules, scan

CAP = 100 << 20  # bytes the scan may add to the process peak, whatever the input


_peak = peak_rss_rise


def _limited_or_complete(r: FileResult) -> None:
    """Either the pickle was fully judged, or a limit was reported and coverage is partial."""
    if "LIMIT-EXCEEDED" in rules(r):
        assert r.coverage is Coverage.PARTIAL
    else:
        assert r.coverage is Coverage.FULL, [(f.rule_id, f.message) for f in r.findings]


def test_five_million_element_list_is_counted_not_kept() -> None:
    batch = MARK + b"K\x07" * 5000 + b"e"  # APPENDS of 5000 BININT1
    data = PROTO(2) + EMPTY_LIST + batch * 1000 + STOP
    r, peak = _peak(lambda: scan(data))
    assert peak < CAP, peak
    assert (
        r.findings == [] and r.coverage is Coverage.FULL
    )  # plain data: walked to the end, nothing to report


def test_memo_heavy_stream_hits_a_limit_not_the_ram() -> None:
    # 1.5 million fresh one-item tuples, each kept alive by its own memo slot: past max_pickle_memo
    entry = NONE + TUPLE1 + b"r%s" + POP
    data = PROTO(2) + b"".join(entry % struct.pack("<I", i) for i in range(1_500_000)) + NONE + STOP
    r, peak = _peak(lambda: scan(data))
    assert peak < CAP, peak
    assert "LIMIT-EXCEEDED" in rules(r)
    assert finding(r, "LIMIT-EXCEEDED").evidence["limit"] in ("max_pickle_memory", "max_pickle_memo")
    _limited_or_complete(r)


def test_deep_tuple_nesting_is_bounded() -> None:
    data = PROTO(2) + NONE + TUPLE1 * 2_000_000 + STOP
    t = time.monotonic()
    r, peak = _peak(lambda: scan(data))
    assert peak < CAP, peak
    assert time.monotonic() - t < 10
    _limited_or_complete(r)


def test_memoized_big_literals_are_charged_before_reading() -> None:
    blob = b"B" + struct.pack("<I", 1 << 20) + b"\x00" * (1 << 20)  # BINBYTES of 1 MiB, each kept by the memo
    data = PROTO(3) + b"".join(blob + b"r" + struct.pack("<I", i) + POP for i in range(24)) + NONE + STOP
    m = Machine(
        Cursor(BytesReader(data, "b")), Limits(), Budget(1_000_000, weight=8 << 20), out_of_time=lambda: False
    )
    tracemalloc.start()
    try:
        res = m.run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.limit is not None and res.limit.what == "max_pickle_memory"
    assert peak < 12 << 20, peak


def test_payload_after_bulk_data_is_still_found() -> None:
    # bounding memory must not cost visibility: a call after a large data-only prefix is still traced
    bulk = pickle.dumps(list(range(200_000)), protocol=2)[2:-1] + POP
    r = scan(PROTO(2) + bulk + pickle.dumps(Evil(), protocol=2)[2:])
    assert "PICKLE-DANGEROUS-GLOBAL" in rules(r)


def test_callable_past_the_kept_items_is_still_passed() -> None:
    # an imported callable hidden after 1000 data items in the argument tuple still counts as passed to a call
    args = MARK + b"K\x01" * 1000 + SG("mypkg", "hook") + b"t"
    r = scan(PROTO(4) + SG("mypkg", "runner") + args + b"R" + STOP)
    msgs = [f.message for f in r.findings if f.rule_id == "PICKLE-CALL-UNLISTED"]
    assert any("mypkg.hook" in m for m in msgs), [(f.rule_id, f.message) for f in r.findings]


def _views_pickle(n: int) -> bytes:
    """torch.save's data.pkl shape for ``n`` one-row views over 64 shared storages (the benchmark's views.pt)."""
    out = bytearray(PROTO(2) + G("collections", "OrderedDict") + b"q\x00)R(")
    memo = 1

    def put() -> bytes:
        nonlocal memo
        memo += 1
        return b"r" + struct.pack("<I", memo - 1)

    out += G("torch._utils", "_rebuild_tensor_v2") + put()
    rebuild = memo - 1
    out += U("storage") + put() + G("torch", "FloatStorage") + put() + U("cpu") + put()
    storage, ftype, cpu = memo - 3, memo - 2, memo - 1
    out += b"0000"  # the four set-up values are only needed through the memo
    for v in range(n):
        get = lambda i: b"j" + struct.pack("<I", i)  # noqa: E731
        out += U(f"model.views.{v}") + put() + get(rebuild) + MARK + MARK + get(storage) + get(ftype)
        out += U(str(v % 64)) + put() + get(cpu) + b"J" + struct.pack("<i", 4096) + b"t" + put() + b"Q"
        out += (
            b"J"
            + struct.pack("<i", (v // 64) * 1024)
            + b"K\x01M\x00\x04\x86"
            + put()
            + b"M\x00\x04K\x01\x86"
            + put()
        )
        out += b"\x89h\x00)R" + put() + b"t" + put() + b"R" + put()
    return bytes(out + b"u.")


def test_torch_like_views_are_cheap_and_complete() -> None:
    data = _views_pickle(20_000)
    r, peak = _peak(lambda: scan(data, name="data.pkl"))
    assert r.format == "pickle"
    assert "LIMIT-EXCEEDED" not in rules(r) and r.coverage is Coverage.FULL
    assert peak < 24 << 20, peak  # ~20k tensors: a few MB of symbolic state, not hundreds
