"""Storage-less device tensors (XLA, MAIA/MTIA, DirectML ``privateuseone``) in the exact shapes torch.save writes.

``Tensor._reduce_ex_internal`` writes them as ``_rebuild_device_tensor_from_numpy(ndarray, dtype, str(device),
requires_grad)`` before torch 2.5 (torch < 1.12 under the name ``_rebuild_xla_tensor``, kept as an alias) and
``_rebuild_device_tensor_from_cpu_tensor(cpu_tensor, ...)`` since. Rule DB 2026.12.02.4 made the numpy form
data-only (a tensor of any ndarray is how a plain pickle hands ``_rebuild_sparse_tensor`` attacker indices), which
blocked every such checkpoint. The forms are allowed with their argument shapes, and the numpy form's result may
only be data or a Parameter's data; sparse/nested rebuilds take storage-backed tensors only. Nothing is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity

from .assembler import EMPTY_DICT, PROTO, STOP, B, G, U, call, rules, scan, worst


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _ndarray(values: tuple[float, ...] = (1.0, 2.0)) -> bytes:
    """numpy's pickle of a float32 array: _reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype, False, raw)."""
    dtype = (
        call(G("numpy", "dtype"), U("f4"), b"\x89\x88")
        + b"(K\x03"
        + U("<")
        + b"NNNJ\xff\xff\xff\xffK\x00K\x00tb"
    )
    raw = struct.pack(f"<{len(values)}f", *values)
    arr = call(G("numpy.core.multiarray", "_reconstruct"), G("numpy", "ndarray"), b"K\x00\x85", B(b"b"))
    state = b"(K\x01" + b"K" + bytes([len(values)]) + b"\x85" + dtype + b"\x89" + B(raw) + b"t"
    return arr + state + b"b"


def _device(
    fn: str = "_rebuild_device_tensor_from_numpy", device: bytes = U("xla:0"), dtype: bytes = b""
) -> bytes:
    return call(G("torch._utils", fn), _ndarray(), dtype or G("torch", "float32"), device, b"\x89")


def _ok(data: bytes) -> None:
    fr = scan(data)
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]


def _blocks(data: bytes, rule: str = "PICKLE-GADGET-ARGUMENT") -> None:
    fr = scan(data)
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH, [(f.rule_id, f.message) for f in fr.findings]
    assert rule in rules(fr), [(f.rule_id, f.message) for f in fr.findings]


@pytest.mark.parametrize("fn", ["_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor"])
@pytest.mark.parametrize("device", ["xla:0", "privateuseone:0", "mtia:1", "maia:0", "ort"])
def test_state_dict_of_device_tensors_is_allowed(fn: str, device: str) -> None:
    _ok(_p2(b"}(" + U("w") + _device(fn, U(device)) + U("b") + _device(fn, U(device)) + b"u"))


def test_device_parameter_is_allowed() -> None:
    hooks = call(G("collections", "OrderedDict"))
    _ok(_p2(call(G("torch._utils", "_rebuild_parameter"), _device(), b"\x88", hooks)))


def test_device_tensor_subclass_through_rebuild_from_type_is_allowed() -> None:
    """A Tensor subclass with Python state: the function is passed, the ndarray goes in the args tuple."""
    args = b"(" + _ndarray() + G("torch", "bfloat16") + U("xla:0") + b"\x89t"
    func = G("torch._utils", "_rebuild_device_tensor_from_numpy")
    _ok(_p2(call(G("torch._tensor", "_rebuild_from_type_v2"), func, G("torch", "Tensor"), args, EMPTY_DICT)))


def test_cpu_tensor_form_over_a_storage_is_allowed() -> None:
    storage = b"(" + U("storage") + G("torch", "FloatStorage") + U("0") + U("cpu") + b"K\x02tQ"
    cpu = call(
        G("torch._utils", "_rebuild_tensor_v2"), storage, b"K\x00", b"K\x02\x85", b"K\x01\x85", b"\x89"
    )
    data = _p2(
        call(
            G("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
            cpu,
            G("torch", "float16"),
            U("xla:0"),
            b"\x89",
        )
    )
    fr = scan(data)
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]


def test_numpy_device_tensor_as_sparse_indices_through_rebuild_from_type_blocks() -> None:
    layout = call(G("torch.serialization", "_get_layout"), U("torch.sparse_coo"))
    t = _device(device=U("cpu"))
    args = b"(" + layout + b"(" + t + t + b"K\x04\x85\x89t" + b"t"
    func = G("torch._utils", "_rebuild_sparse_tensor")
    _blocks(
        _p2(call(G("torch._tensor", "_rebuild_from_type_v2"), func, G("torch", "Tensor"), args, EMPTY_DICT))
    )


def test_numpy_device_tensor_as_nested_sizes_blocks() -> None:
    t = _device(device=U("cpu"))
    _blocks(_p2(call(G("torch._utils", "_rebuild_nested_tensor"), t, t, t, t)))


def test_non_dtype_global_as_dtype_blocks() -> None:
    _blocks(_p2(_device(dtype=G("collections", "OrderedDict"))))


def test_non_ndarray_data_blocks() -> None:
    data = call(
        G("torch._utils", "_rebuild_device_tensor_from_numpy"),
        b"]K\x01a",
        G("torch", "int64"),
        U("xla:0"),
        b"\x89",
    )
    _blocks(_p2(data))


def test_computed_device_string_blocks() -> None:
    device = call(G("_codecs", "encode"), U("xla:0"), U("latin1"))
    _blocks(_p2(_device(device=device)))


def test_sparse_tensor_from_storage_backed_tensors_stays_allowed() -> None:
    def tensor(key: str) -> bytes:
        storage = b"(" + U("storage") + G("torch", "LongStorage") + U(key) + U("cpu") + b"K\x04tQ"
        return call(
            G("torch._utils", "_rebuild_tensor_v2"), storage, b"K\x00", b"K\x04\x85", b"K\x01\x85", b"\x89"
        )

    layout = call(G("torch.serialization", "_get_layout"), U("torch.sparse_coo"))
    size = call(G("torch", "Size"), b"K\x04\x85")
    data = b"(" + tensor("0") + tensor("1") + size + b"\x89t"
    fr = scan(_p2(call(G("torch._utils", "_rebuild_sparse_tensor"), layout, data)))
    assert worst(fr) is None or worst(fr) < Severity.MEDIUM, [(f.rule_id, f.message) for f in fr.findings]


def test_numpy_device_tensor_made_through_rebuild_from_type_is_bound_too() -> None:
    """_rebuild_from_type_v2 applies the device rebuild: its argument rules and result binding hold there too."""
    args = b"(" + _ndarray() + G("torch", "int64") + U("cpu") + b"\x89t"
    func = G("torch._utils", "_rebuild_device_tensor_from_numpy")
    t = call(G("torch._tensor", "_rebuild_from_type_v2"), func, G("torch", "Tensor"), args, EMPTY_DICT)
    layout = call(G("torch.serialization", "_get_layout"), U("torch.sparse_coo"))
    sparse_args = b"(" + layout + b"(" + t + t + b"K\x04\x85\x89t" + b"t"
    sparse = G("torch._utils", "_rebuild_sparse_tensor")
    _blocks(
        _p2(
            call(
                G("torch._tensor", "_rebuild_from_type_v2"),
                sparse,
                G("torch", "Tensor"),
                sparse_args,
                EMPTY_DICT,
            )
        )
    )
    bad_args = b"(" + b"]K\x01a" + G("torch", "int64") + U("cpu") + b"\x89t"
    _blocks(
        _p2(
            call(
                G("torch._tensor", "_rebuild_from_type_v2"), func, G("torch", "Tensor"), bad_args, EMPTY_DICT
            )
        )
    )
