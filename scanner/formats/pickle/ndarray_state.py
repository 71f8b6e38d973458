"""numpy's own unchecked state: what ``dtype.__setstate__`` and ``ndarray.__setstate__`` trust.

Both are reached by BUILD on allowlisted numpy results, and neither validates what it is given:

- ``ndarray.__setstate__((ver, shape, dtype, is_fortran, rawdata))`` of an object array copies
  ``prod(shape)`` items out of the ``rawdata`` list with ``PyList_GET_ITEM`` and never compares
  lengths: a list shorter than the shape reads pointers past its end (numpy 1.26 and 2.4 crash in
  ``pickle.load``; the bytes there are whatever the heap held).
- ``dtype.__setstate__`` takes the object flags (``NPY_ITEM_REFCOUNT``, ``NPY_LIST_PICKLE``, ...)
  verbatim for structured and void dtypes: a dtype whose fields hold ``object`` but whose flags say
  "no objects" makes numpy copy raw pickled bytes into object slots (``frombuffer``, ``scalar``,
  ``ndarray.__setstate__`` accept them), and reading the field dereferences an attacker-chosen pointer.
- a dtype whose itemsize is 0 (``V0``, ``[]``, or any void dtype whose pickled elsize is 0) holds
  ``prod(shape)`` elements in 0 bytes: a pickled array of 10**12 elements loads instantly and every
  consumer that iterates it (``list``, ``deque``, ``tolist``) runs out of memory or time.

Real numpy writes a literal shape, a list exactly as long as the array for object dtypes, bytes of
``nbytes`` otherwise, and flags that agree with the fields (measured: numpy 1.26.4 and 2.4.6).
"""

from __future__ import annotations

from typing import Any

from .records import AnomalyKind
from .values import KEEP_ITEMS, Blob, Call, Dct, Glob, Opaque, Seq, is_lit

DTYPE_GLOBALS = frozenset({"numpy:dtype", "numpy.core.multiarray:dtype", "numpy._core.multiarray:dtype"})
RECONSTRUCT = frozenset(
    {
        "numpy._core.multiarray:_reconstruct",
        "numpy.core.multiarray:_reconstruct",
        "numpy.ma.core:_mareconstruct",
    }
)
_RECORD = frozenset(
    {"numpy:record", "numpy.rec:record", "numpy._core.records:record", "numpy.core.records:record"}
)
#: ml_dtypes scalar types (registered legacy user dtypes) numpy.dtype accepts as its spec (gadgets.yaml numpy:dtype), with
#: their itemsize. dtype(<type>, align, copy) returns the process-wide registered descriptor (copy is ignored for user
#: dtypes) and dtype.__setstate__ takes elsize, alignment and flags verbatim for user dtypes: any state but the one numpy
#: writes corrupts every array of that type in the process (flags 1 make raw bytes object pointers). Measured: ml_dtypes
#: 0.7.0, numpy 2.4.6 write (3, '<', None, None, None, n, n, 64); ml_dtypes 0.3.2-0.5.1 on numpy 1.26.4 write flags 80
#: (NPY_USE_SETITEM | NPY_NEEDS_PYAPI): neither has an object bit.
ML_DTYPES = {
    "ml_dtypes:bfloat16": 2,
    **{
        f"ml_dtypes:{n}": 1
        for n in (
            "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz",
            "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "int2", "int4",
            "uint2", "uint4",
        )
    },
}  # fmt: skip
ML_DTYPE_FLAGS = frozenset({64, 80})
#: NPY_ITEM_REFCOUNT | NPY_LIST_PICKLE: the flags every object-holding dtype pickles (63 for 'O8', 27 for fields)
OBJECT_FLAGS = 0x03
#: NPY_ITEM_REFCOUNT, NPY_LIST_PICKLE, NPY_ITEM_IS_POINTER, NPY_USE_GETITEM, NPY_USE_SETITEM: items are PyObject*
POINTER_FLAGS = 0x67
#: bytes a consumer spends per element it materialises (a list slot and a numpy scalar), as for range()
ELEMENT_COST = 128

Problem = tuple[AnomalyKind, str, dict[str, Any]]  # (anomaly kind, message, evidence)


def _text(v: Any) -> str | None:
    if type(v) is str:
        return v
    if type(v) is bytes:
        return v.decode("latin-1")
    return None


def is_dtype(v: Any) -> bool:
    return isinstance(v, Call) and isinstance(v.func, Glob) and v.func.rec.path in DTYPE_GLOBALS


def spec_objectness(args: Any) -> bool | None:
    """Whether ``numpy.dtype(spec, ...)`` holds objects: True/False from a literal spec or numpy.record, None when the
    spec is not static (another class, a call result)."""
    spec = args.items[0] if isinstance(args, Seq) and args.items else None
    s = _text(spec)
    if s is not None:
        return "O" in s or "object" in s.lower()
    if isinstance(spec, Glob) and (spec.rec.path in _RECORD or spec.rec.path in ML_DTYPES):
        return False  # an ml_dtypes spec: dtype_state_problems admits only its own non-object state
    return None


def _user_dtype_problems(dt: Call, state: Any) -> list[Problem] | None:
    """BUILD on dtype(<ml_dtypes type>, ...): the state must be the one numpy writes (see ML_DTYPES); None when the
    spec is not an ml_dtypes type."""
    spec = dt.args.items[0] if isinstance(dt.args, Seq) and dt.args.items else None
    if not isinstance(spec, Glob):
        return None
    size = ML_DTYPES.get(spec.rec.path)
    if size is None:
        return None
    want = (3, "<", None, None, None, size, size)
    if (
        isinstance(state, Seq)
        and state.complete
        and len(state.items) == len(want) + 1
        and all(type(a) is type(b) and a == b for a, b in zip(state.items, want, strict=False))
        and type(state.items[7]) is int
        and state.items[7] in ML_DTYPE_FLAGS
    ):
        return []
    return [
        (
            "gadget-argument",
            f"numpy dtype state on the registered {spec.rec.path.replace(':', '.')} descriptor is not the one numpy "
            f"writes {(*want, 64)}: dtype.__setstate__ rewrites the process-wide descriptor's itemsize, alignment "
            "and flags",
            {"state": "dtype", "spec": spec.rec.path},
        )
    ]


def _flags(state: Any) -> int | None:
    if isinstance(state, Seq) and state.complete and len(state.items) >= 8:
        f = state.items[7]
        if is_lit(f) and type(f) is int:
            return f & 0xFF  # numpy 1.x pickles the flags as a signed char (-112 for an aligned struct)
    if isinstance(state, Seq) and state.complete and len(state.items) == 7:
        # (version, endian, subarray, names, fields, elsize, alignment): no flags pickled. numpy >= 2.4 recomputes
        # them for versions < 3 and leaves 0 for version 3+, even over object fields (measured)
        v = state.items[0]
        if type(v) is int and v < 3:
            return OBJECT_FLAGS if _fields_objectness(state)[0] else 0
        return 0
    return None


def objectness(v: Any) -> bool | None:
    """Whether a dtype value holds objects as numpy will treat it (its last pickled flags win), None if unknown."""
    if not is_dtype(v):
        return None
    if v.state is not None:
        f = _flags(v.state)
        return None if f is None else bool(f & OBJECT_FLAGS)
    return spec_objectness(v.args)


def _fields_objectness(state: Any) -> tuple[bool, bool]:
    """(some field or the subarray base holds objects, every field and the subarray base could be read)."""
    items = state.items
    found, known = False, True
    sub = items[2] if len(items) > 2 else None
    if sub is not None:
        if isinstance(sub, Seq) and sub.items:
            o = objectness(sub.items[0])
            found |= o is True
            known &= o is not None
        else:
            known = False
    fields = items[4] if len(items) > 4 else None
    if fields is not None:
        if isinstance(fields, Dct):
            # pairs past the cap: their dtypes are in the spill (values.Dct)
            if fields.total != len(fields.items):
                spill = fields.spill or []
                known &= len(spill) < KEEP_ITEMS
                for x in spill:
                    if isinstance(x, (Call, Opaque)):
                        o = objectness(x)
                        found |= o is True
                        known &= o is not None
            for _, fv in fields.items:
                o = objectness(fv.items[0]) if isinstance(fv, Seq) and fv.items else None
                found |= o is True
                known &= o is not None
        else:
            known = False
    return found, known


def dtype_state_problems(dt: Call, state: Any, objects_in_stream: bool) -> list[Problem]:
    """BUILD on a numpy dtype: the object flags it pickles must agree with what its spec, fields and subarray hold."""
    if not (isinstance(dt.args, Seq) and dt.args.complete):
        # numpy writes dtype(spec, align, copy) as a literal tuple; a computed argument tuple (the result of an
        # allowlisted call that returns a tuple) hides the spec, so neither the spec nor this state can be judged
        return [
            (
                "gadget-argument",
                "numpy dtype built from a computed argument tuple is given state",
                {"state": "dtype"},
            )
        ]
    user = _user_dtype_problems(dt, state)
    if user is not None:
        return user
    flags = _flags(state)
    if flags is None:
        if isinstance(state, Seq) and state.complete and len(state.items) < 7:
            return []  # numpy refuses a shorter dtype state
        return [
            ("gadget-argument", "numpy dtype state whose flags cannot be read statically", {"state": "dtype"})
        ]
    claims = bool(flags & POINTER_FLAGS)
    spec = spec_objectness(dt.args)
    fields, known = _fields_objectness(state)
    holds: bool | None = True if (spec or fields) else (False if known and spec is False else None)
    if holds is None and not objects_in_stream and spec is not None:
        holds = False  # fields past what the walker keeps, but no dtype in the stream can hold objects
    if holds is True and flags & OBJECT_FLAGS != OBJECT_FLAGS:
        return [
            (
                "gadget-argument",
                f"numpy dtype state flags {flags} say 'no objects' for a dtype whose spec or fields hold objects: "
                "numpy copies raw pickled bytes into its object slots and reading them dereferences an "
                "attacker-chosen pointer",
                {"flags": flags},
            )
        ]
    if holds is False and claims:
        return [
            (
                "gadget-argument",
                f"numpy dtype state flags {flags} mark a dtype without object fields as holding Python objects: "
                "numpy would treat its raw bytes as object pointers",
                {"flags": flags},
            )
        ]
    if holds is None and not claims:
        return [
            (
                "gadget-argument",
                f"numpy dtype state flags {flags} say 'no objects' but the fields cannot all be read statically "
                "while the stream builds object dtypes: raw bytes may land in object slots",
                {"flags": flags},
            )
        ]
    return []


def _raw_length(v: Any) -> int | None:
    """Byte length of an ndarray's raw data (bytes/str literal, a kept-out literal, encode(str, 'latin1'))."""
    if type(v) in (bytes, bytearray):
        return len(v)
    if type(v) is str:
        return len(v)
    if isinstance(v, Blob):
        return v.length
    if (
        isinstance(v, Call)
        and isinstance(v.func, Glob)
        and v.func.rec.path == "_codecs:encode"
        and isinstance(v.args, Seq)
        and v.args.items
        and type(v.args.items[0]) is str
    ):
        return len(v.args.items[0])
    return None


def _shape_elements(shape: Any) -> int | None:
    if type(shape) is int and shape >= 0:
        return shape
    if isinstance(shape, Seq) and shape.complete:
        n = 1
        for d in shape.items:
            if type(d) is not int or d < 0:
                return None
            n *= d
        return n
    return None


def array_state_problems(arr: Call, state: Any, max_bytes: int) -> list[Problem]:
    """BUILD on a numpy array (``_reconstruct``/``_mareconstruct`` result): shape, dtype and raw data must agree."""
    if not (isinstance(state, Seq) and state.complete):
        if isinstance(state, (Call, Opaque)):
            return [("gadget-argument", "numpy array state computed at load time cannot be checked", {})]
        return []  # numpy refuses anything but a tuple
    items = state.items
    masked = isinstance(arr.func, Glob) and arr.func.rec.path == "numpy.ma.core:_mareconstruct"
    if masked and len(items) == 7:
        shape, dtype, raw = items[1], items[2], items[4]
    elif len(items) == 5:
        shape, dtype, raw = items[1], items[2], items[4]
    elif len(items) == 4:
        shape, dtype, raw = items[0], items[1], items[3]
    else:
        return []  # numpy raises on any other length
    n = _shape_elements(shape)
    if n is None:
        return [
            (
                "allocation",
                "numpy array state shape is not a literal tuple of sizes (a size computed at load time is unbounded)",
                {},
            )
        ]
    holds = objectness(dtype)
    if isinstance(raw, Seq) and raw.kind == "list":
        if raw.total < n:
            return [
                (
                    "gadget-argument",
                    f"object array of {n} elements restored from a list of {raw.total}: numpy reads "
                    f"{n - raw.total} item pointers past the end of the list (out-of-bounds read, crash or worse)",
                    {"elements": n, "items": raw.total},
                )
            ]
        return []
    length = _raw_length(raw)
    if length is None and holds is not False and not isinstance(raw, Seq):
        return [
            (
                "gadget-argument",
                f"array data of {n} elements is not a literal (an object array's item list of unknown length is read "
                "past its end)",
                {"elements": n},
            )
        ]
    if n * ELEMENT_COST > max_bytes and (length is None or n > length):
        return [
            (
                "allocation",
                f"numpy array of {n} elements stored in {length if length is not None else 'an unknown number of'} "
                f"bytes (zero itemsize): every consumer that iterates it materialises {n * ELEMENT_COST} bytes or more "
                f"(cap {max_bytes})",
                {"elements": n, "bytes": length},
            )
        ]
    return []


# -- numpy bit generator states: indexes the C state setters store without a range check --

#: bit generator -> (where the index lives: "state" dict or the top level, key, largest valid value); the C
#: generators read ``key[pos]`` / ``buffer[buffer_pos]`` on the next draw: MT19937 regenerates only when
#: ``pos == 624`` and Philox when ``buffer_pos >= 4``, so a larger or negative index reads out of bounds
_RNG_INDEX = {"MT19937": ("state", "pos", 624), "Philox": (None, "buffer_pos", 4)}


def _index_problem(bit_generator: str, key: str, value: Any, top: int) -> list[Problem]:
    if type(value) is int and 0 <= value <= top:
        return []
    return [
        (
            "gadget-argument",
            f"numpy {bit_generator} state {key}={str(value)[:40]} is outside 0..{top}: the generator reads its key "
            "buffer at that index on the next draw (out-of-bounds read: crash or heap contents as random numbers)",
            {"bit_generator": bit_generator, "index": key},
        )
    ]


def rng_state_problems(state: Any) -> list[Problem]:
    """BUILD (``__setstate__``/``.state = ...``) of a numpy bit generator, RandomState or Generator dict state
    (numpy 2 pickles a bit generator's as ``(state dict, seed sequence)``)."""
    if isinstance(state, Seq) and state.kind == "tuple" and state.items and isinstance(state.items[0], Dct):
        state = state.items[0]
    if not isinstance(state, Dct):
        return []
    bg = state.get("bit_generator")
    spec = _RNG_INDEX.get(bg) if type(bg) is str else None
    if spec is None:
        return []
    where, key, top = spec
    holder = state.get(where) if where is not None else state
    if not isinstance(holder, Dct) or not holder.has(key):
        return []  # numpy raises KeyError/TypeError before storing anything
    return _index_problem(bg, key, holder.get(key), top)  # type: ignore[arg-type]


def legacy_rng_tuple_problems(items: Any) -> list[Problem]:
    """``('MT19937', key, pos, has_gauss, gauss)``: the legacy state RandomState.set_state stores unchecked
    (Hugging Face Trainer checkpoints keep it in rng_state.pth and restore it with numpy.random.set_state)."""
    if len(items) < 3 or type(items[0]) is not str or items[0] != "MT19937":
        return []
    return _index_problem("MT19937", "pos", items[2], 624)
