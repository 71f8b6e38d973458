"""Red team 8: scikit-learn ``Tree`` node records that ``Tree.__setstate__`` copies without checking.

``Tree.__setstate__`` checks the node dtype and the value shape, then trusts every record and ``node_count``;
``apply``/``predict`` (``boundscheck=False``) follow ``left_child``/``right_child`` as indices into the node
buffer and read ``X[i, feature]``. With scikit-learn 1.9.1 (throwaway venv): ``left_child`` 10**7 or -5 and
``right_child`` 10**6 load cleanly and segfault in ``predict``; ``right_child`` 0 (a cycle) loads and ``predict``
never returns; ``feature`` 10**6 reads past each row. Every such pickle (plain protocol 2/4/5 and joblib) used
only allowlisted globals and was allowed. Nothing is unpickled here: the files are written with
``pickle.dumps``/``joblib.dump`` of an object whose ``__reduce__`` returns the forged ``Tree`` state.
"""

from __future__ import annotations

import copy
import io
import pickle
from pathlib import Path
from typing import Any

import pytest

from tests.harness import rule_ids, scan_on_disk, verdict

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
joblib = pytest.importorskip("joblib")


def _fitted() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    x = np.random.RandomState(0).rand(80, 4)
    y = (x[:, 0] > 0.5).astype(int)
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)


class _Forged:
    def __init__(self, red: tuple[Any, ...], state: dict[str, Any]) -> None:
        self.red, self.state = red, state

    def __reduce__(self):  # type: ignore[no-untyped-def]  # pickled, never loaded
        return (self.red[0], self.red[1], self.state)


def _forge(field: str | None = None, value: int = 0, row: int = 0, node_count: int | None = None) -> Any:
    clf = _fitted()
    red = clf.tree_.__reduce__()
    state = dict(red[2])
    nodes = state["nodes"].copy()
    if field is not None:
        nodes[field][row] = value
    state["nodes"] = nodes
    if node_count is not None:
        state["node_count"] = node_count
    forged = copy.copy(clf)
    forged.__dict__ = dict(clf.__dict__)
    forged.__dict__["tree_"] = _Forged(red, state)
    return forged


def _dump(obj: Any, how: str) -> tuple[bytes, str]:
    if how == "joblib":
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        return buf.getvalue(), "model.joblib"
    return pickle.dumps(obj, protocol=int(how)), "model.pkl"


HOW = ["2", "4", "5", "joblib"]
BAD = [
    ("left_child", 10**7, 0),
    ("left_child", -5, 0),
    ("right_child", 10**6, 0),
    ("right_child", 0, 0),  # a cycle: predict never returns
    ("right_child", -1, 0),  # half a leaf
    ("feature", 10**6, 0),
    ("feature", -3, 0),
]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("field", "value", "row"), BAD)
def test_forged_node_records_block(tmp_path: Path, how: str, field: str, value: int, row: int) -> None:
    blob, name = _dump(_forge(field, value, row), how)
    fr = scan_on_disk(tmp_path, blob, name)
    assert verdict(fr).value == "block", rule_ids(fr)
    assert "PICKLE-GADGET-ARGUMENT" in rule_ids(fr)


@pytest.mark.parametrize("how", HOW)
def test_node_count_past_the_records_blocks(tmp_path: Path, how: str) -> None:
    blob, name = _dump(_forge(node_count=10**6), how)
    fr = scan_on_disk(tmp_path, blob, name)
    assert verdict(fr).value == "block", rule_ids(fr)


@pytest.mark.parametrize("how", HOW)
def test_real_trees_and_forests_are_allowed(tmp_path: Path, how: str) -> None:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    x = np.random.RandomState(1).rand(120, 5)
    y = (x[:, 1] + x[:, 2] > 1).astype(int)
    for est in (
        _fitted(),
        _forge(),  # the forging path itself with untouched records
        RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y),
        GradientBoostingClassifier(n_estimators=3, random_state=0).fit(x, y),
    ):
        blob, name = _dump(est, how)
        fr = scan_on_disk(tmp_path, blob, name)
        assert verdict(fr).value == "allow", (type(est).__name__, rule_ids(fr))


def test_compressed_joblib_is_checked(tmp_path: Path) -> None:
    buf = io.BytesIO()
    joblib.dump(_forge("left_child", 10**7), buf, compress=3)
    fr = scan_on_disk(tmp_path, buf.getvalue(), "model.joblib")
    assert verdict(fr).value == "block", rule_ids(fr)
