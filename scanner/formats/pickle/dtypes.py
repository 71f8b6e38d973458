"""Static itemsize of a numpy dtype from its pickled form (``numpy.dtype(code, False, True)`` + BUILD state).

joblib inlines raw array bytes after a NumpyArrayWrapper; to skip them the
scanner must know ``prod(shape) * itemsize`` without importing numpy.
"""

from __future__ import annotations

import re

from .values import Call, Glob, Seq, is_lit

_CODE = re.compile(r"^([a-zA-Z?])(\d+)?(?:\[\w+\])?$")
_DTYPE_GLOBALS = {"numpy:dtype", "numpy.core.multiarray:dtype", "numpy._core.multiarray:dtype"}
#: one-letter type codes numpy accepts without a size (64-bit Linux/macOS sizes)
_CHAR_SIZE = {
    "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8, "p": 8, "P": 8,
    "n": 8, "N": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32, "?": 1,
    "O": 8, "M": 8, "m": 8, "c": 1, "S": 0, "U": 0, "V": 0, "a": 0,
}  # fmt: skip
#: kind letter + byte count numpy accepts ("f8", "b1", "c16"); others raise TypeError
_SIZED = {
    "b": {1},
    "i": {1, 2, 4, 8},
    "u": {1, 2, 4, 8},
    "f": {2, 4, 8, 16},
    "c": {8, 16, 32},
    "m": {8},
    "M": {8},
    "O": {8},
}
_FLEXIBLE = frozenset("SUVa")  # the only kinds whose itemsize comes from the pickled state
_HASOBJECT = 0x01  # NPY_ITEM_HASOBJECT in the pickled flags


def dtype_info(v: object) -> tuple[int, bool] | None:
    """(itemsize, has_object) as numpy's dtype.__setstate__ leaves them, or None when not statically known.

    numpy ignores the pickled elsize for fixed-size types and takes it verbatim
    for flexible ones (S/U/V); ``hasobject`` comes from the pickled flags, not
    from the type code, whenever a state is applied.
    """
    if not (isinstance(v, Call) and isinstance(v.func, Glob) and v.func.rec.path in _DTYPE_GLOBALS):
        return None
    if not (isinstance(v.args, Seq) and v.args.items and isinstance(v.args.items[0], str)):
        return None
    code = v.args.items[0]
    m = _CODE.match(code.lstrip("<>|=!"))
    if not m:
        return None
    kind, digits = m.group(1), m.group(2)
    flexible = kind in _FLEXIBLE or (kind == "c" and digits is None)  # bare "c" is S1
    if digits is None:
        size = _CHAR_SIZE.get(kind)
        if size is None:
            return None
    elif kind in _FLEXIBLE:
        size = int(digits) * (4 if kind == "U" else 1)
    elif int(digits) in _SIZED.get(kind, ()):
        size = int(digits)
    else:
        return None
    has_object = kind == "O"
    st = v.state
    if st is not None:
        if not (isinstance(st, Seq) and st.complete and len(st.items) >= 8):
            return None
        elsize, flags = st.items[5], st.items[7]
        if not (is_lit(flags) and type(flags) is int):
            return None
        has_object = bool(flags & _HASOBJECT)
        if flexible:
            if not (is_lit(elsize) and type(elsize) is int):
                return None
            size = elsize
    if size <= 0:
        return None  # numpy cannot read such an array (zero or negative itemsize): the loader fails
    return size, has_object
