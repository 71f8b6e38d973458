"""Builds benign_zoo.skops with skops 0.16.0 (scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1, CPython 3.11).

Run in a venv that has skops: ``python make_benign_zoo.py``. One LogisticRegression whose extra attribute holds
a value of every loader that calls something (partial, defaultdict, numpy scalars of each kind, RandomState,
Generator, MaskedArray, dtypes, ZoneInfo, Decimal, Fraction, timezone, slices, bytes, sets, namedtuple-free
tuples, non-str dict keys, sparse and object arrays, ufuncs), a DecisionTree (TreeNode) and an SGD loss
(LossNode). Not collected by pytest; the test checks the file it wrote.
"""

import collections
import datetime
import decimal
import fractions
import functools
import zoneinfo
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import skops.io as sio
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

rng = np.random.RandomState(0)
X = rng.rand(40, 3)
y = (X[:, 0] > 0.5).astype(int)
lr = LogisticRegression().fit(X, y)
lr.zoo_ = {
    "partial": functools.partial(np.add, 1),
    "partial_kw": functools.partial(np.power, 2, dtype="float64"),
    "dd": collections.defaultdict(list, {"a": [1, 2]}),
    "dd_none": collections.defaultdict(None, {"b": 1}),
    "od": collections.OrderedDict([("x", 1), ("y", 2)]),
    "scalars": [np.float64(1.5), np.int64(7), np.uint8(3), np.bool_(True), np.float32(2.5), np.int32(-4)],
    "more_scalars": [np.complex128(1 + 2j), np.float16(0.5), np.str_("héllo"), np.bytes_(b"ab")],
    "times": [np.datetime64("2024-01-02"), np.timedelta64(5, "s")],
    "rs": np.random.RandomState(3),
    "gen": np.random.default_rng(4),
    "ma": np.ma.MaskedArray([1.0, 2.0], mask=[False, True]),
    "dt": np.dtype("float32"),
    "dt_struct": np.dtype([("a", "<i4"), ("b", "<f8")]),
    "zone": zoneinfo.ZoneInfo("Europe/Paris"),
    "dec": decimal.Decimal("3.14159"),
    "frac": fractions.Fraction(1, 3),
    "tz": datetime.timezone(datetime.timedelta(hours=2)),
    "td": datetime.timedelta(days=2),
    "date": datetime.date(2024, 1, 2),
    "sl": slice(1, 10, 2),
    "by": b"\x00\x01raw",
    "ba": bytearray(b"xyz"),
    "s": {1, 2, 3},
    "fs": frozenset({"a"}),
    "t": (1, "a", None),
    "rng": range(0, 10),
    "int_keys": {1: "a", 2: "b"},
    "float_keys": {1.5: 1},
    "np_keys": {np.int64(5): 1},
    "sparse": sp.csr_matrix(np.eye(2)),
    "obj": np.array([1, "a", None], dtype=object),
    "ufunc": np.log1p,
    "arr2d": rng.rand(2, 2),
    "nested": [[1, 2], {"k": (3, 4)}],
    "tree": DecisionTreeClassifier(max_depth=2).fit(X, y),
    "sgd": SGDClassifier(max_iter=5, tol=None).fit(X, y),
    "vocab": CountVectorizer().fit(["a b c", "b c d e", "the quick brown fox"]),
}
out = Path(__file__).with_name("benign_zoo.skops")
sio.dump(lr, out, compression=8)  # ZIP_DEFLATED
print(out, sio.get_untrusted_types(file=out))
print(type(sio.load(out, trusted=sio.get_untrusted_types(file=out)).zoo_["tree"]).__name__)
