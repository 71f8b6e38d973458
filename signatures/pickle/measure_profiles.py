"""Measure the globals benign libraries write into pickles (run in /work/genvenv).

Nothing is ever loaded: objects are created and *pickled*, and the resulting
bytes are listed offline with ``pickletools.genops`` (plain pickles) or by
recording what the pure-Python pickler writes (joblib, whose inline array bytes
stop a stock disassembler). The output is the raw material for the profiles in
``signatures/pickle/profiles/``.

    /work/genvenv/bin/python signatures/pickle/measure_profiles.py [--json]
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import sys
from collections.abc import Callable, Iterable


def globals_in(data: bytes) -> set[str]:
    """'module:name' of every GLOBAL/INST/STACK_GLOBAL in the first pickle of ``data``."""
    out: set[str] = set()
    memo: dict[int, object] = {}
    recent: list[object] = []
    for op, arg, _pos in pickletools.genops(data):
        name = op.name
        if name in ("GLOBAL", "INST"):
            mod, _, attr = str(arg).partition(" ")
            out.add(f"{mod}:{attr}")
            recent.append(None)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                      "SHORT_BINSTRING"):
            recent.append(arg)
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            recent.append(memo.get(int(arg)))
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = recent[-1] if recent else None
        elif name == "STACK_GLOBAL":
            out.add(f"{recent[-2]}:{recent[-1]}")
            recent.append(None)
        else:
            recent.append(None)
    return out


def recorded_globals(dump: Callable[[io.BytesIO], None]) -> set[str]:
    """Globals written by the pure-Python pickler (joblib's NumpyPickler subclasses it)."""
    seen: set[str] = set()
    orig = pickle._Pickler.save_global

    def spy(self, obj, name=None):  # type: ignore[no-untyped-def]
        mod = getattr(obj, "__module__", None)
        qual = name or getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if mod is None:
            mod = pickle.whichmodule(obj, qual)
        seen.add(f"{mod}:{qual}")
        return orig(self, obj, name)

    pickle._Pickler.save_global = spy
    try:
        dump(io.BytesIO())
    finally:
        pickle._Pickler.save_global = orig
    return seen


def torch_weights_only() -> dict[str, list[str]]:
    import torch
    from torch._weights_only_unpickler import _get_allowed_globals

    # keys are 'module.name' as the weights-only unpickler matches them; storage keys map to
    # StorageType objects, so the key (not the pickled value) is the spelling a checkpoint uses
    allowed: set[str] = set()
    respelled: list[str] = []
    for key, obj in _get_allowed_globals().items():
        module, _, name = key.rpartition(".")
        allowed.add(f"{module}:{name}")
        try:
            found = globals_in(pickle.dumps(obj, protocol=4))
        except Exception:
            found = set()
        if found and found != {f"{module}:{name}"}:
            respelled.append(f"{key} pickles as {sorted(found)}")
    # what real torch.save output contains (state dicts of each dtype, parameters, sparse, quantized)
    saved: set[str] = set()
    samples: list[object] = []
    for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32,
               torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128,
               torch.float8_e4m3fn, torch.float8_e5m2, torch.uint16, torch.uint32):
        samples.append({"w": torch.zeros(2, dtype=dt)})
    samples.append(torch.nn.Linear(2, 2).state_dict())
    samples.append(torch.nn.BatchNorm1d(2).state_dict())
    samples.append({"p": torch.nn.Parameter(torch.ones(2))})
    samples.append({"s": torch.zeros(3, 3).to_sparse(), "csr": torch.eye(3).to_sparse_csr()})
    samples.append({"q": torch.quantize_per_tensor(torch.ones(4), 0.1, 10, torch.quint8)})
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(lin.parameters())
    lin(torch.ones(1, 2)).sum().backward()
    opt.step()
    samples.append(opt.state_dict())
    samples.append(torch.optim.lr_scheduler.StepLR(opt, 1).state_dict())
    samples.append({"size": torch.Size([2]), "device": torch.device("cpu"), "dtype": torch.float32})
    for s in samples:
        buf = io.BytesIO()
        torch.save(s, buf, _use_new_zipfile_serialization=False)
        raw = buf.getvalue()
        # legacy format = 3 small pickles, then the main pickle; list every pickle in turn
        pos = 0
        for _ in range(4):
            sub = raw[pos:]
            saved |= globals_in(sub)
            pos += _pickle_len(sub)
    return {"allowlist": sorted(allowed), "respelled": sorted(respelled), "torch_save": sorted(saved),
            "version": [torch.__version__]}


def _pickle_len(data: bytes) -> int:
    last = 0
    for op, _arg, pos in pickletools.genops(data):
        last = pos
        if op.name == "STOP":
            break
    return last + 1


def numpy_profile() -> dict[str, list[str]]:
    import numpy as np

    objs: list[object] = []
    for dt in ("f2", "f4", "f8", "c8", "c16", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?", "M8[s]",
               "m8[s]", "U3", "S3", "V4", [("a", "f4"), ("b", "i8")]):
        arr = np.zeros(3, dtype=dt)
        objs += [arr, arr[0], np.dtype(dt), np.asfortranarray(np.zeros((2, 2), dtype=arr.dtype))]
    objs.append(np.random.get_state())
    objs.append(np.random.default_rng(0))
    objs.append(np.ma.masked_array([1, 2], mask=[0, 1]))
    found: set[str] = set()
    for o in objs:
        for proto in (2, 3, 4, 5):
            found |= globals_in(pickle.dumps(o, protocol=proto))
    return {"globals": sorted(found), "version": [np.__version__]}


def sklearn_profile() -> dict[str, list[str]]:
    import joblib
    import numpy as np
    import sklearn
    from sklearn import (
        cluster,
        decomposition,
        ensemble,
        feature_extraction,
        impute,
        linear_model,
        naive_bayes,
        neighbors,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.compose import ColumnTransformer

    rng = np.random.RandomState(0)
    x = rng.rand(40, 4)
    y = (x[:, 0] > 0.5).astype(int)
    yr = x[:, 1]
    texts = ["alpha beta", "beta gamma", "gamma delta", "delta alpha"] * 10
    models: list[tuple[object, object, object]] = [
        (preprocessing.StandardScaler(), x, None),
        (preprocessing.MinMaxScaler(), x, None),
        (preprocessing.OneHotEncoder(), (x * 3).astype(int), None),
        (preprocessing.LabelEncoder(), y, "y"),
        (preprocessing.PolynomialFeatures(), x, None),
        (impute.SimpleImputer(), x, None),
        (linear_model.LogisticRegression(), x, y),
        (linear_model.LinearRegression(), x, yr),
        (linear_model.Ridge(), x, yr),
        (linear_model.SGDClassifier(), x, y),
        (ensemble.RandomForestClassifier(n_estimators=3), x, y),
        (ensemble.RandomForestRegressor(n_estimators=3), x, yr),
        (ensemble.GradientBoostingClassifier(n_estimators=3), x, y),
        (ensemble.GradientBoostingRegressor(n_estimators=3), x, yr),
        (ensemble.HistGradientBoostingClassifier(max_iter=3), x, y),
        (ensemble.ExtraTreesClassifier(n_estimators=3), x, y),
        (ensemble.AdaBoostClassifier(n_estimators=3), x, y),
        (tree.DecisionTreeClassifier(), x, y),
        (tree.DecisionTreeRegressor(), x, yr),
        (svm.SVC(), x, y),
        (svm.SVR(), x, yr),
        (svm.LinearSVC(), x, y),
        (neighbors.KNeighborsClassifier(), x, y),
        (naive_bayes.GaussianNB(), x, y),
        (naive_bayes.MultinomialNB(), x, y),
        (cluster.KMeans(n_clusters=2, n_init=1), x, None),
        (decomposition.PCA(n_components=2), x, None),
        (decomposition.TruncatedSVD(n_components=2), x, None),
        (feature_extraction.text.TfidfVectorizer(), texts, None),
        (feature_extraction.text.CountVectorizer(), texts, None),
        (pipeline.Pipeline([("s", preprocessing.StandardScaler()), ("m", linear_model.LogisticRegression())]), x, y),
        (pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(), linear_model.LogisticRegression()),
         texts, [0, 1] * 20),
        (ColumnTransformer([("s", preprocessing.StandardScaler(), [0, 1])], remainder="passthrough"), x, None),
    ]
    plain: set[str] = set()
    jl: set[str] = set()
    for est, xx, yy in models:
        if isinstance(yy, str) or yy is None:
            est.fit(xx)
        else:
            est.fit(xx, yy)
        for proto in (2, 4, 5):
            plain |= globals_in(pickle.dumps(est, protocol=proto))
        jl |= recorded_globals(lambda f, est=est: joblib.dump(est, f))
    from sklearn.utils import all_estimators

    every = sorted(f"{cls.__module__}:{cls.__name__}" for _, cls in all_estimators())
    return {"pickle": sorted(plain), "joblib_extra": sorted(jl - plain), "all_estimators": every,
            "version": [sklearn.__version__, joblib.__version__]}


def joblib_profile() -> dict[str, list[str]]:
    import joblib
    import numpy as np

    objs: Iterable[object] = [np.zeros(3), {"a": np.ones((2, 2), dtype="f4")}, np.array(["x", 1], dtype=object)]
    found: set[str] = set()
    for o in objs:
        found |= recorded_globals(lambda f, o=o: joblib.dump(o, f))
    return {"globals": sorted(found), "version": [joblib.__version__]}


def hf_rng_state() -> dict[str, list[str]]:
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    found: set[str] = set()
    pos = 0
    for _ in range(4):
        found |= globals_in(raw[pos:])
        pos += _pickle_len(raw[pos:])
    return {"globals": sorted(found)}


def python_data() -> dict[str, list[str]]:
    import argparse
    import collections
    import datetime
    import decimal
    import fractions
    import pathlib
    import uuid

    objs = [
        {1, 2}, frozenset({1}), bytearray(b"x"), complex(1, 2), slice(1, 2), range(3),
        collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]), collections.deque([1]),
        collections.Counter("ab"), datetime.datetime(2024, 1, 1), datetime.date(2024, 1, 1),
        datetime.time(1, 2), datetime.timedelta(1), datetime.timezone.utc,
        datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        decimal.Decimal("1.5"), fractions.Fraction(1, 3), uuid.UUID(int=5), b"bytes", "str", 1.5, None,
        argparse.Namespace(lr=0.1), pathlib.PurePosixPath("a"), pathlib.PosixPath("a"), pathlib.PureWindowsPath("a"),
    ]
    found: set[str] = set()
    for o in objs:
        for proto in (0, 1, 2, 3, 4, 5):
            found |= globals_in(pickle.dumps(o, protocol=proto))
    return {"globals": sorted(found), "python": [sys.version.split()[0]]}


def enumerated() -> dict[str, list[str]]:
    """Classes a checkpoint of these libraries may name, enumerated from the installed modules."""
    import importlib

    import numpy as np

    def classes(modname: str) -> list[str]:
        mod = importlib.import_module(modname)
        return sorted(
            f"{modname}:{n}" for n, o in vars(mod).items() if isinstance(o, type) and o.__module__ == modname
        )

    scalar = sorted({f"{t.__module__}:{t.__name__}" for t in np.sctypeDict.values()})
    sk: list[str] = []
    for m in ("sklearn.metrics._dist_metrics", "sklearn._loss.loss", "sklearn._loss.link", "sklearn._loss._loss",
              "sklearn.linear_model._sgd_fast", "sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree",
              "sklearn.tree._tree", "sklearn.utils._bunch"):
        sk += classes(m)
    sp: list[str] = []
    for m in ("scipy.sparse._csr", "scipy.sparse._csc", "scipy.sparse._coo", "scipy.sparse._dia", "scipy.sparse._lil",
              "scipy.sparse._dok", "scipy.sparse._bsr"):
        sp += [c for c in classes(m) if c.endswith(("_matrix", "_array"))]
    return {"numpy_scalars": scalar, "sklearn_helpers": sk, "scipy_sparse": sp}


def main() -> None:
    results = {
        "torch": torch_weights_only(),
        "numpy": numpy_profile(),
        "sklearn": sklearn_profile(),
        "joblib": joblib_profile(),
        "hf_rng_state": hf_rng_state(),
        "python_data": python_data(),
        "enumerated": enumerated(),
    }
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))
        return
    for section, data in results.items():
        print(f"== {section}")
        for key, values in data.items():
            print(f"  -- {key} ({len(values)})")
            for v in values:
                print(f"     {v}")


if __name__ == "__main__":
    main()
