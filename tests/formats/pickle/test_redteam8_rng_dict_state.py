"""Red team 8: numpy bit generator state in dict form outside BUILD.

Round 7 judged MT19937 ``pos``/Philox ``buffer_pos`` in BUILD state and in the legacy ``('MT19937', key, pos,
...)`` tuple. ``np.random.set_state`` takes the dict form too (``{'bit_generator': 'MT19937', 'state': {'key':
..., 'pos': ...}, ...}``) and stores ``pos`` unchecked: with torch 2.13 + numpy 2.4.6 (throwaway venv) a
``rng_state.pth`` whose ``numpy`` entry is that dict with ``pos=10**7`` loads under ``torch.load(weights_only=True)``
and the ``np.random.set_state`` + one draw Hugging Face's Trainer performs segfault. As plain data the dict was
allowed. Nothing is unpickled here.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from scanner.findings import Severity
from tests.harness import inspect_bytes, rule_ids, worst

from .assembler import EMPTY_DICT, MARK, PROTO, SETITEM, STOP, U

KEY = list(range(624))


def _mt(pos: Any) -> dict[str, Any]:
    return {"bit_generator": "MT19937", "state": {"key": KEY, "pos": pos}, "has_gauss": 0, "gauss": 0.0}


def _philox(buffer_pos: Any) -> dict[str, Any]:
    return {
        "bit_generator": "Philox",
        "state": {"counter": [0, 0, 0, 0], "key": [1, 2]},
        "buffer": [0, 0, 0, 0],
        "buffer_pos": buffer_pos,
        "has_uint32": 0,
        "uinteger": 0,
    }


def _rules(obj: Any, protocol: int) -> set[str]:
    return rule_ids(
        inspect_bytes(pickle.dumps({"numpy": obj, "python": None}, protocol=protocol), "rng_state.pth")
    )


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("state", [_mt(10**7), _mt(-1), _mt(625), _philox(-(10**7)), _philox(5)])
def test_out_of_range_dict_state_is_flagged(state: dict[str, Any], protocol: int) -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _rules(state, protocol)


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("state", [_mt(0), _mt(624), _mt(17), _philox(0), _philox(4)])
def test_in_range_dict_state_is_data(state: dict[str, Any], protocol: int) -> None:
    assert "PICKLE-GADGET-ARGUMENT" not in _rules(state, protocol)


def test_dict_state_nested_in_a_list() -> None:
    assert "PICKLE-GADGET-ARGUMENT" in _rules([{"seed": 1}, [_mt(10**6)]], 4)


def test_pos_set_after_the_holder_was_built() -> None:
    """The inner state dict is memoized with pos=0, the holder completed, then GET + SETITEM rewrites pos."""
    key = b"]" + MARK + b"".join(b"K" + bytes([i % 256]) for i in range(8)) + b"e"
    inner = EMPTY_DICT + b"q\x01" + MARK + U("key") + key + U("pos") + b"K\x00" + b"u"
    outer = EMPTY_DICT + b"q\x00" + MARK + U("bit_generator") + U("MT19937") + U("state") + inner + b"u"
    late = b"h\x01" + U("pos") + b"J" + (10**7).to_bytes(4, "little") + SETITEM + b"0"
    fr = inspect_bytes(PROTO(2) + outer + late + STOP, "rng_state.pth")
    assert "PICKLE-GADGET-ARGUMENT" in rule_ids(fr)
    assert worst(fr) is not None and worst(fr).rank >= Severity.HIGH.rank
