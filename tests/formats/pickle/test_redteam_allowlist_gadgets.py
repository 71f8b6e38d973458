"""Red team 2: gadgets made only of ALLOWLISTED globals (signatures/pickle/profiles).

Each pickle here uses nothing but profile entries, yet the real loader (numpy 2.4,
pandas 3.0, scikit-learn 1.9, scipy 1.17, torch 2.13, CPython 3.11) spends more
than 2 GB or 40 s on it (confirmed with pickle.load in a memory/time-capped child,
outside the test suite). The fixes are data: tighter audit constraints
(signatures/pickle/audit) and argument rules (signatures/pickle/gadgets.yaml),
plus two walker rules (a size computed at load time is unbounded; a negative
literal size counts by its magnitude). The shapes the libraries really write stay
allowed. Nothing here is unpickled.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Severity

from .assembler import BUILD, EMPTY_DICT, EMPTY_TUPLE, NEWOBJ, PROTO, STOP, B, G, U, call, scan, worst

BLOCKING = Severity.HIGH


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _int(n: int) -> bytes:
    """BININT / LONG1 literal."""
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _list_of(item: bytes, n: int) -> bytes:
    """A list of n references to one memoized item (2 bytes each)."""
    return b"](" + item + b"p0\n" + b"g0\n" * (n - 1) + b"e"


def _blocks(data: bytes, *expected: str) -> None:
    r = scan(data)
    found = {f.rule_id for f in r.findings}
    assert worst(r) is not None and worst(r) >= BLOCKING, found
    for rule in expected:
        assert rule in found, (rule, [(f.rule_id, f.message) for f in r.findings])


def _allowed(data: bytes) -> None:
    r = scan(data)
    bad = [(f.rule_id, f.message) for f in r.findings if f.severity >= BLOCKING]
    assert not bad, bad


def _range(start: int, stop: int) -> bytes:
    return call(G("builtins", "range"), _int(start), _int(stop))


def _decimal(s: str) -> bytes:
    return call(G("decimal", "Decimal"), U(s))


# -- computed sizes: int('3000000000') / numpy.int64(...) feed bytes(), bytearray(), ndarray shapes ----------


@pytest.mark.parametrize("sink", ["bytes", "bytearray"])
@pytest.mark.parametrize("source", [("builtins", "int"), ("numpy", "int64")])
def test_bytes_of_a_computed_size_blocks(sink: str, source: tuple[str, str]) -> None:
    # loader: bytes(int('3000000000')) asks for 3 GB of zero bytes (MemoryError under a +2 GiB cap)
    size = call(G(*source), U("3000000000"))
    _blocks(_p2(call(G("builtins", sink), size)), "PICKLE-GADGET-ARGUMENT")


def test_ndarray_shape_computed_at_load_time_blocks() -> None:
    shape = call(G("builtins", "int"), U("3000000000")) + b"\x85"  # (int('3000000000'),)
    data = _p2(call(G("numpy._core.multiarray", "_reconstruct"), G("numpy", "ndarray"), shape, B(b"b")))
    _blocks(data, "PICKLE-ALLOCATION-SIZE")


def test_bytearray_real_shapes_stay_allowed() -> None:
    _allowed(_p2(call(G("builtins", "bytearray"), B(b"\x00\x01abc"))))
    # protocol 2: bytearray(_codecs.encode('...', 'latin1'))
    enc = call(G("_codecs", "encode"), U("abcy"), U("latin1"))
    _allowed(_p2(call(G("builtins", "bytearray"), enc)))
    _allowed(_p2(call(G("builtins", "bytes"), U("abc"), U("latin-1"))))


# -- range: lazy, but every allowlisted container materialises it ------------------------------------------


@pytest.mark.parametrize(
    "consumer",
    [
        ("builtins", "list"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("collections", "deque"),
        ("collections", "Counter"),
        ("torch", "Size"),
    ],
)
def test_container_of_a_huge_range_blocks(consumer: tuple[str, str]) -> None:
    # loader: list(range(0, 400000000)) from a 47-byte pickle asks for > 14 GB
    _blocks(_p2(call(G(*consumer), _range(0, 400_000_000))), "PICKLE-ALLOCATION-SIZE")


def test_negative_range_start_blocks() -> None:
    _blocks(_p2(call(G("builtins", "list"), _range(-400_000_000, 0))), "PICKLE-ALLOCATION-SIZE")


def test_range_of_a_computed_bound_blocks() -> None:
    bound = call(G("builtins", "int"), U("400000000"))
    _blocks(_p2(call(G("builtins", "list"), call(G("builtins", "range"), bound))), "PICKLE-GADGET-ARGUMENT")


def test_small_range_stays_allowed() -> None:
    _allowed(_p2(call(G("builtins", "range"), _int(0), _int(10), _int(2))))
    _allowed(_p2(call(G("builtins", "set"), _range(0, 1000))))


# -- big-integer conversions: Fraction / int / numpy scalar types ---------------------------------------------


def test_fraction_with_an_exponent_blocks() -> None:
    # loader: Fraction('1e2000000000') computes 10**2000000000 (> 40 s)
    _blocks(_p2(call(G("fractions", "Fraction"), U("1e2000000000"))), "PICKLE-GADGET-ARGUMENT")


@pytest.mark.parametrize("sink", [("fractions", "Fraction"), ("builtins", "int"), ("numpy", "int64")])
def test_integer_conversion_of_a_huge_decimal_blocks(sink: tuple[str, str]) -> None:
    # loader: numpy.int64(Decimal('1e2000000000')) converts a 2e9-digit integer (> 40 s)
    _blocks(_p2(call(G(*sink), _decimal("1e2000000000"))), "PICKLE-GADGET-ARGUMENT")


@pytest.mark.parametrize("offset", ["Day", "Week"])
def test_pandas_offset_of_a_huge_decimal_blocks(offset: str) -> None:
    # loader: pandas validates n with int(n): Day(Decimal('1e2000000000')) runs > 40 s
    data = _p2(call(G("pandas._libs.tslibs.offsets", offset), _decimal("1e2000000000")))
    _blocks(data, "PICKLE-GADGET-ARGUMENT")


@pytest.mark.parametrize("text", ["1e2000000000", "1E+99999"])
def test_decimal_with_a_huge_exponent_blocks(text: str) -> None:
    _blocks(_p2(_decimal(text)), "PICKLE-GADGET-ARGUMENT")


def test_decimal_tuple_form_blocks() -> None:
    digits = b"K\x01\x85"  # (1,)
    tup = b"K\x00" + digits + _int(2_000_000_000) + b"\x87"  # (0, (1,), 2000000000)
    _blocks(_p2(call(G("decimal", "Decimal"), tup)), "PICKLE-GADGET-ARGUMENT")


def test_fraction_and_decimal_real_shapes_stay_allowed() -> None:
    _allowed(_p2(call(G("fractions", "Fraction"), _int(1), _int(3))))  # Python 3.11+
    _allowed(_p2(call(G("fractions", "Fraction"), U("-22/7"))))  # older Python: str(self)
    for text in ("1.25", "-0.000001", "1.2E+5", "0E-1000", "Infinity", "-NaN", "sNaN12"):
        _allowed(_p2(_decimal(text)))
    _allowed(_p2(call(G("numpy", "float64"), _int(3))))


def test_numpy_void_of_a_huge_size_blocks() -> None:
    _blocks(_p2(call(G("numpy", "void"), _int(2_000_000_000))), "PICKLE-ALLOCATION-SIZE")


# -- numpy ufuncs are stored values (FunctionTransformer.func), never called by the unpickler -----------------


def test_ufunc_broadcast_called_by_reduce_blocks() -> None:
    # loader: numpy.add(<40000 x [0]>, <40000 x 0>) broadcasts to 1.6e9 int64 from a 240 KB pickle
    col = _list_of(b"]K\x00a", 40_000)
    row = _list_of(b"K\x00", 40_000)
    _blocks(_p2(call(G("numpy", "add"), col, row)), "PICKLE-CONSTRAINT-VIOLATION")


def test_ufunc_on_big_ints_blocks() -> None:
    # loader: numpy.left_shift([2**70], [2e10]) builds a 2.5 GB object-dtype integer
    data = _p2(
        call(G("numpy", "left_shift"), b"]" + _int(1 << 70) + b"a", b"]" + _int(20_000_000_000) + b"a")
    )
    _blocks(data, "PICKLE-CONSTRAINT-VIOLATION")


def test_ufunc_stored_in_an_estimator_stays_allowed() -> None:
    cls = G("sklearn.preprocessing._function_transformer", "FunctionTransformer")
    state = (
        EMPTY_DICT + b"(" + U("func") + G("numpy", "log1p") + U("inverse_func") + G("numpy", "expm1") + b"u"
    )
    _allowed(_p2(cls + EMPTY_TUPLE + NEWOBJ + state + BUILD))


# -- constructors that materialise their arguments: only NEWOBJ + BUILD is the library's shape ---------------


def test_pandas_dataframe_called_by_reduce_blocks() -> None:
    # loader: DataFrame(0, RangeIndex(0, 60000), RangeIndex(0, 60000)) fills 3.6e9 cells
    idx = call(G("pandas", "RangeIndex"), _int(0), _int(60_000))
    _blocks(_p2(call(G("pandas", "DataFrame"), _int(0), idx, idx)), "PICKLE-CONSTRAINT-VIOLATION")


def test_pandas_series_called_by_reduce_blocks() -> None:
    idx = call(G("pandas", "RangeIndex"), _int(0), _int(400_000_000))
    _blocks(_p2(call(G("pandas", "Series"), _int(1), idx)), "PICKLE-CONSTRAINT-VIOLATION")


def test_pandas_dataframe_newobj_stays_allowed() -> None:
    _allowed(_p2(G("pandas", "DataFrame") + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + BUILD))


@pytest.mark.parametrize(
    ("dtype", "args"),
    [
        ("DatetimeTZDtype", (U("ns"), U("dateutil//tmp/modelward-tz"))),
        ("IntervalDtype", (U("datetime64[ns, dateutil//tmp/modelward-tz]"),)),
    ],
)
def test_pandas_dtype_parsing_a_tz_path_blocks(dtype: str, args: tuple[bytes, ...]) -> None:
    # loader: DatetimeTZDtype('ns', 'dateutil//tmp/x') opens and parses /tmp/x with dateutil.tz.tzfile
    _blocks(_p2(call(G("pandas", dtype), *args)), "PICKLE-CONSTRAINT-VIOLATION")


def test_pandas_dtype_newobj_stays_allowed() -> None:
    tz = call(G("datetime", "timezone"), call(G("datetime", "timedelta"), _int(0), _int(0), _int(0)))
    state = EMPTY_DICT + b"(" + U("unit") + U("ns") + U("tz") + tz + b"u"
    _allowed(_p2(G("pandas", "DatetimeTZDtype") + EMPTY_TUPLE + NEWOBJ + state + BUILD))


def test_sklearn_neighbors_heap_called_by_reduce_blocks() -> None:
    # loader: NeighborsHeap64(50000, 50000) fills a 20 GB array
    data = _p2(call(G("sklearn.neighbors._kd_tree", "NeighborsHeap64"), _int(50_000), _int(50_000)))
    _blocks(data, "PICKLE-CONSTRAINT-VIOLATION")


def test_sklearn_pyfunc_distance_called_by_reduce_blocks() -> None:
    data = _p2(call(G("sklearn.metrics._dist_metrics", "PyFuncDistance64"), G("joblib.memory", "Memory")))
    _blocks(data, "PICKLE-CONSTRAINT-VIOLATION")


def test_sklearn_newobj_helper_shape_stays_allowed() -> None:
    new = call(G("sklearn.neighbors._kd_tree", "newObj"), G("sklearn.neighbors._kd_tree", "KDTree64"))
    _allowed(_p2(new))


def test_scipy_lil_matrix_called_by_reduce_blocks() -> None:
    # loader: lil_matrix((40000000, 1)) builds 4e7 Python lists (> 2 GB)
    shape = _int(40_000_000) + b"K\x01\x86"
    _blocks(_p2(call(G("scipy.sparse._lil", "lil_matrix"), shape)), "PICKLE-CONSTRAINT-VIOLATION")


def test_scipy_sparse_newobj_stays_allowed() -> None:
    _allowed(_p2(G("scipy.sparse._csr", "csr_matrix") + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + BUILD))


# -- tensors of attacker data in a plain pickle: sparse indices that only torch.load validates -------------------


def _sparse_coo(indices: bytes, values: bytes) -> bytes:
    layout = call(G("torch.serialization", "_get_layout"), U("torch.sparse_coo"))
    data = b"(" + indices + values + b"K\x04\x85" + b"N" + b"t"  # (indices, values, (4,), None)
    return _p2(call(G("torch._utils", "_rebuild_sparse_tensor"), layout, data))


def test_sparse_tensor_from_fastai_tensorbase_blocks() -> None:
    # loader: pickle.load (no torch.load validation) then to_dense() writes index 50000000 of a 4-element tensor
    idx = call(G("fastai.torch_core", "TensorBase"), b"]]" + _int(50_000_000) + b"aa")
    vals = call(G("fastai.torch_core", "TensorBase"), b"]G" + struct.pack(">d", 7.0) + b"a")
    _blocks(_sparse_coo(idx, vals), "PICKLE-CONSTRAINT-VIOLATION")


def test_sparse_tensor_from_numpy_arrays_blocks() -> None:
    def tensor(arr: bytes) -> bytes:
        return call(
            G("torch._utils", "_rebuild_device_tensor_from_numpy"),
            arr,
            G("torch", "int64"),
            U("cpu"),
            b"\x89",
        )

    arr = call(G("numpy._core.multiarray", "_reconstruct"), G("numpy", "ndarray"), b"K\x00\x85", B(b"b"))
    # the device-tensor rebuild is allowed in torch.save's shape; its result as sparse indices is not
    _blocks(_sparse_coo(tensor(arr), tensor(arr)), "PICKLE-GADGET-ARGUMENT")


def test_fastai_tensorbase_as_new_type_stays_allowed() -> None:
    # fastai's shape: _rebuild_from_type_v2(func, TensorBase, args, state) applies TensorBase with as_subclass
    args = b"(" + G("torch", "float32") + b"K\x02\x85" + b"K\x01\x85" + b"\x89" + b"t"
    func = G("torch._utils", "_rebuild_meta_tensor_no_storage")
    data = call(
        G("torch._tensor", "_rebuild_from_type_v2"),
        func,
        G("fastai.torch_core", "TensorBase"),
        args,
        EMPTY_DICT,
    )
    _allowed(_p2(data))
