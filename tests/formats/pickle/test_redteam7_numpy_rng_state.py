"""Red team 7: numpy bit generator states whose buffer index the C state setter stores without a range check.

``MT19937.state = {...}`` stores ``pos`` and draws ``key[pos++]`` until ``pos == 624``; ``Philox`` reads
``buffer[buffer_pos]`` while ``buffer_pos < 4``. Both are set by BUILD when a ``MT19937``/``Philox``/
``Generator``/``RandomState`` is unpickled, and ``RandomState.set_state(('MT19937', key, pos, ...))`` stores the
legacy tuple the same way. With numpy 2.4.6 (throwaway venv): ``pickle.load`` then one draw segfaults for
``pos=10**7`` and ``buffer_pos=-10**7``, and ``pos=700`` silently returns heap memory as "random" numbers. A
Hugging Face ``rng_state.pth`` whose ``numpy`` tuple has ``pos=10**7`` crashed transformers 5.24 exactly as
``Trainer._load_rng_state`` restores it (``torch.load(weights_only=True)`` under its ``safe_globals``, then
``np.random.set_state``). Every pickle used only allowlisted globals and was allowed. Nothing is unpickled here.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from scanner.findings import Severity
from tests.formats.builders import Member, build_zip
from tests.harness import detect_bytes

from .assembler import MARK, PROTO, STOP, U, scan

np = pytest.importorskip("numpy")


def _mt(pos: int) -> Any:
    bg = np.random.MT19937(0)
    st = bg.state
    st["state"]["pos"] = pos
    bg.state = st  # stored, never drawn from
    return bg


def _philox(buffer_pos: int) -> Any:
    bg = np.random.Philox(0)
    st = bg.state
    st["buffer_pos"] = buffer_pos
    bg.state = st
    return bg


def _randomstate(pos: int) -> Any:
    rs = np.random.RandomState(0)
    st = rs._bit_generator.state
    st["state"]["pos"] = pos
    rs._bit_generator.state = st
    return rs


def _legacy(pos: int, n: int = 5) -> tuple[Any, ...]:
    st = np.random.RandomState(0).get_state()
    return (st[0], st[1], pos, st[3], st[4])[:n]


def _blocks(data: bytes, name: str = "sample.pkl") -> None:
    r = detect_bytes(data, name) if not name.endswith(".pkl") else scan(data, name)
    assert "PICKLE-GADGET-ARGUMENT" in {f.rule_id for f in r.findings}, [
        (f.rule_id, f.message) for f in r.findings
    ]
    assert max(f.severity for f in r.findings) >= Severity.HIGH


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(lambda: _mt(700), id="mt19937-pos-700"),
        pytest.param(lambda: _mt(-1), id="mt19937-pos-negative"),
        pytest.param(lambda: np.random.Generator(_mt(10**7)), id="generator"),
        pytest.param(lambda: _philox(-(10**7)), id="philox-negative"),
        pytest.param(lambda: _philox(5), id="philox-5"),
    ],
)
@pytest.mark.parametrize("protocol", [2, 4])
def test_bit_generator_index_out_of_range_blocks(obj: Any, protocol: int) -> None:
    _blocks(pickle.dumps({"rng": obj()}, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 5])
def test_randomstate_pos_out_of_range_blocks(protocol: int) -> None:
    _blocks(pickle.dumps(_randomstate(10**7), protocol=protocol))


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_legacy_state_tuple_blocks(n: int, protocol: int) -> None:
    """('MT19937', key, pos[, has_gauss, gauss]) as numpy.random.set_state takes it (TUPLE3 and MARK TUPLE)."""
    _blocks(pickle.dumps({"numpy": _legacy(10**7, n)}, protocol=protocol))


def test_hf_rng_state_pth_blocks() -> None:
    """The Hugging Face checkpoint layout: a torch zip whose data.pkl holds the legacy numpy tuple."""
    data = pickle.dumps({"python": (3, (1,) * 625, None), "numpy": _legacy(10**7)}, protocol=2)
    pth = build_zip([Member("archive/data.pkl", data), Member("archive/version", b"3\n")])
    _blocks(pth, "rng_state.pth")


def test_real_generator_states_stay_allowed() -> None:
    objs: list[Any] = []
    for draws in (0, 1, 623, 624, 1000):
        rs = np.random.RandomState(draws)
        rs.randint(0, 10, draws)
        objs += [rs, rs.get_state(), rs._bit_generator]
    for cls in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
        for draws in (0, 1, 3, 5):
            g = np.random.Generator(getattr(np.random, cls)(draws))
            g.integers(0, 10, draws)
            objs += [g, g.bit_generator]
    objs.append(np.random.default_rng(7))
    for protocol in (0, 2, 5):
        for obj in objs:
            r = scan(pickle.dumps(obj, protocol=protocol))
            bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= Severity.HIGH]
            assert not bad, (protocol, type(obj).__name__, bad)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_legacy_state_as_a_list_blocks(protocol: int) -> None:
    """numpy.random.set_state takes a list as well as a tuple (APPEND, APPENDS)."""
    _blocks(pickle.dumps({"numpy": list(_legacy(10**7))}, protocol=protocol))


def test_legacy_state_as_a_list_opcode_blocks() -> None:
    """MARK ... LIST (protocol 0/1 spelling) of ('MT19937', key, pos)."""
    data = PROTO(2) + MARK + U("MT19937") + b"]" + b"J" + (10**7).to_bytes(4, "little") + b"l" + STOP
    _blocks(data)
