"""scikit-learn's unchecked tree state: what ``sklearn.tree._tree.Tree.__setstate__`` trusts.

``Tree.__setstate__`` checks the node array's dtype and the value array's shape, then copies the node
records verbatim and takes ``node_count`` from the state dict. Nothing checks the records: ``apply``/``predict``
(``boundscheck=False``) follow ``left_child``/``right_child`` as indices into the node buffer and read
``X[i, feature]``. With scikit-learn 1.9.1 (throwaway venv) a pickled ``DecisionTreeClassifier`` whose root has
``left_child`` 10**7 or -5, or ``right_child`` 10**6, loads cleanly and segfaults in ``predict``; ``feature``
10**6 reads memory past each row and predicts from it. scikit-learn writes children after their parent
(every builder adds a node before its children), so a real record is a leaf (both children -1) or has both
children in ``(i, node_count)`` and ``0 <= feature < n_features``; ``node_count`` equals the array's rows.

The node bytes are a literal in the stream (plain pickle), a large literal read back from the file, or the raw
bytes joblib writes after a ``NumpyArrayWrapper``. Nothing here unpickles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ndarray_state import RECONSTRUCT, Problem, is_dtype
from .values import Blob, Call, Dct, Opaque, Seq

TREE_GLOBALS = frozenset({"sklearn.tree._tree:Tree"})
_FROMBUFFER = frozenset({"numpy._core.numeric:_frombuffer", "numpy.core.numeric:_frombuffer"})
_BYTEARRAY = frozenset({"builtins:bytearray"})
_BYTES_BLOBS = frozenset({"binbytes", "binbytes8", "short_binbytes", "bytearray8"})
_LEAF = -1
_CHUNK_ROWS = 8192
MAX_NODES = 50_000_000  # records walked per tree; a larger node array is judged unreadable


class ArrayBytes(Opaque):
    """The result of a joblib ``NumpyArrayWrapper``: the array's raw bytes lie in the file at ``offset``."""

    __slots__ = ("offset", "nbytes", "dtype")

    def __init__(self, offset: int, nbytes: int, dtype: Any) -> None:
        super().__init__("ndarray")
        self.offset, self.nbytes, self.dtype = offset, nbytes, dtype


def _problem(message: str, **evidence: Any) -> list[Problem]:
    return [
        (
            "gadget-argument",
            f"scikit-learn Tree state: {message}",
            {"class": "sklearn.tree._tree:Tree", **evidence},
        )
    ]


def _layout(dtype: Any) -> tuple[int, str, dict[str, int]] | None:
    """(itemsize, byte order, offsets of left_child/right_child/feature) of a node record dtype, when literal."""
    if not is_dtype(dtype) or not isinstance(dtype.state, Seq) or not dtype.state.complete:
        return None
    st = dtype.state.items
    if len(st) < 6 or not isinstance(st[4], Dct) or type(st[5]) is not int or st[5] <= 0:
        return None
    offsets: dict[str, int] = {}
    order = "<"
    for name in ("left_child", "right_child", "feature"):
        spec = st[4].get(name)
        if not (isinstance(spec, Seq) and spec.complete and len(spec.items) >= 2):
            return None
        sub, off = spec.items[0], spec.items[1]
        if type(off) is not int or off < 0 or off + 8 > st[5] or not is_dtype(sub):
            return None
        code = sub.args.items[0] if isinstance(sub.args, Seq) and sub.args.items else None
        if type(code) is not str or code.lstrip("<>=|") != "i8":
            return None
        sst: list[Any] = list(sub.state.items) if isinstance(sub.state, Seq) and sub.state.complete else []
        bo = sst[1] if len(sst) > 1 and type(sst[1]) is str else code[0] if code[0] in "<>" else "<"
        order = ">" if bo == ">" else "<"
        offsets[name] = off
    return st[5], order, offsets


def _source(nodes: Any) -> tuple[Any, Any] | None:
    """(dtype, bytes | (offset, length)) of the node array, when the walk kept where its bytes are."""
    if isinstance(nodes, ArrayBytes):
        return nodes.dtype, (nodes.offset, nodes.nbytes)
    if not (isinstance(nodes, Call) and getattr(nodes.func, "rec", None) is not None):
        return None
    path = nodes.func.rec.path
    if path in RECONSTRUCT:
        st = nodes.state
        if not (isinstance(st, Seq) and st.complete and len(st.items) == 5):
            return None
        dtype, raw = st.items[2], st.items[4]
    elif path in _FROMBUFFER:  # protocol 5: _frombuffer(buffer, dtype, shape, order)
        a = nodes.args
        if not (isinstance(a, Seq) and a.complete and len(a.items) >= 2):
            return None
        raw, dtype = a.items[0], a.items[1]
        if (
            isinstance(raw, Call)
            and getattr(raw.func, "rec", None) is not None
            and raw.func.rec.path in _BYTEARRAY
        ):
            ba: list[Any] = list(raw.args.items) if isinstance(raw.args, Seq) and raw.args.complete else []
            raw = ba[0] if len(ba) == 1 else None
    else:
        return None
    if type(raw) in (bytes, bytearray):
        return dtype, bytes(raw)
    if isinstance(raw, Blob) and raw.offset >= 0 and raw.kind in _BYTES_BLOBS:
        return dtype, (raw.offset, raw.length)
    if (  # protocol 2: _codecs.encode(<latin-1 text>, 'latin1')
        isinstance(raw, Call)
        and getattr(raw.func, "rec", None) is not None
        and raw.func.rec.path == "_codecs:encode"
        and isinstance(raw.args, Seq)
        and raw.args.items
        and type(raw.args.items[0]) is str
    ):
        try:
            return dtype, raw.args.items[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def tree_state_problems(tree: Call, state: Any, read: Callable[[int, int], bytes]) -> list[Problem]:
    """BUILD on a ``Tree(n_features, n_classes, n_outputs)`` result with its ``__getstate__`` dict."""
    if not isinstance(state, Dct):
        return []  # Tree.__setstate__ raises on anything but a dict
    if not (state.has("nodes") and state.has("node_count")):
        return []  # KeyError before anything is stored
    args = tree.args.items if isinstance(tree.args, Seq) and tree.args.complete else ()
    n_features = args[0] if args and type(args[0]) is int else None
    if n_features is None or n_features <= 0:
        return _problem("n_features is not a literal positive integer; feature indices cannot be checked")
    src = _source(state.get("nodes"))
    layout = _layout(src[0]) if src is not None else None
    if src is None or layout is None:
        return _problem(
            "the node array's bytes or record layout cannot be read statically; child and feature "
            "indices (used unchecked by predict) cannot be checked"
        )
    itemsize, order, off = layout
    data = src[1]
    total = len(data) if isinstance(data, bytes) else data[1]
    if total % itemsize:
        return _problem(f"node array of {total} bytes is not whole {itemsize}-byte records")
    rows = total // itemsize
    count = state.get("node_count")
    if type(count) is not int or count != rows:
        return _problem(
            f"node_count {str(count)[:30]} differs from the {rows} node records (predict and the "
            "children_* arrays read node_count records)",
            node_count=str(count)[:30],
            rows=rows,
        )
    if rows > MAX_NODES:
        return _problem(f"{rows} node records are more than the {MAX_NODES} checked")
    lo, ro, fo = off["left_child"], off["right_child"], off["feature"]
    for start in range(0, rows, _CHUNK_ROWS):
        n = min(_CHUNK_ROWS, rows - start)
        chunk = (
            data[start * itemsize : (start + n) * itemsize]
            if isinstance(data, bytes)
            else read(data[0] + start * itemsize, n * itemsize)
        )
        if len(chunk) != n * itemsize:
            return _problem("node array bytes end early")
        for k in range(n):
            base = k * itemsize
            left = int.from_bytes(
                chunk[base + lo : base + lo + 8], "little" if order == "<" else "big", signed=True
            )
            right = int.from_bytes(
                chunk[base + ro : base + ro + 8], "little" if order == "<" else "big", signed=True
            )
            i = start + k
            if left == _LEAF:
                if right != _LEAF:
                    return _bad(i, left, right, None)
                continue
            feat = int.from_bytes(
                chunk[base + fo : base + fo + 8], "little" if order == "<" else "big", signed=True
            )
            if not (i < left < rows and i < right < rows and 0 <= feat < n_features):
                return _bad(i, left, right, feat, rows, n_features)
    return []


def _bad(
    i: int, left: int, right: int, feat: int | None, rows: int = 0, n_features: int = 0
) -> list[Problem]:
    return _problem(
        f"node {i} has left_child={left}, right_child={right}, feature={feat}: predict follows children as "
        "unchecked indices into the node buffer and reads X[i, feature] (out-of-bounds read: crash or memory "
        f"disclosure); scikit-learn writes children after their parent, within {rows} records, and features "
        f"below n_features={n_features}",
        node=i,
    )
