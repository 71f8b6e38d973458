"""Static itemsize of a numpy dtype from its pickled form (``numpy.dtype(code, False, True)`` + BUILD state).

joblib inlines raw array bytes after a NumpyArrayWrapper; to skip them the
scanner must know ``prod(shape) * itemsize`` without importing numpy.
"""

from __future__ import annotations

import re

from .values import Call, Glob, Seq, is_lit

_CODE = re.compile(r"^([biufcmMOSUV])(\d+)?(?:\[\w+\])?$")
_DTYPE_GLOBALS = {"numpy:dtype", "numpy.core.multiarray:dtype", "numpy._core.multiarray:dtype"}


def dtype_info(v: object) -> tuple[int, bool] | None:
    """(itemsize, has_object) or None when not statically known."""
    if not (isinstance(v, Call) and isinstance(v.func, Glob) and v.func.rec.path in _DTYPE_GLOBALS):
        return None
    if not (isinstance(v.args, Seq) and v.args.items and isinstance(v.args.items[0], str)):
        return None
    code = v.args.items[0]
    m = _CODE.match(code.lstrip("<>|=!"))
    if not m:
        return None
    kind, digits = m.group(1), m.group(2)
    elsize = flags = None
    st = v.state
    if isinstance(st, Seq) and st.complete and len(st.items) >= 8:
        e, f = st.items[5], st.items[7]
        if is_lit(e) and isinstance(e, int):
            elsize = e
        if is_lit(f) and isinstance(f, int):
            flags = f
    elif st is not None:
        return None
    has_object = kind == "O" or bool(flags is not None and flags & 1)
    if elsize is not None and elsize > 0:
        return elsize, has_object
    if kind in "SUV" and (elsize is None or elsize <= 0):
        if digits is None:
            return None
        size = int(digits) * (4 if kind == "U" else 1)
        return size, has_object
    if digits is None:
        return (8, has_object) if kind in "mMO" else None
    return int(digits), has_object
