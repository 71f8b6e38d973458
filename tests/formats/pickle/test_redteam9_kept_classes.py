"""Red team 9: an allowlisted newobj-only class kept as a VALUE, which the library that gets the object calls later.

``newobj-only`` (signatures/pickle/audit) marks classes whose ``__init__`` has side effects (``joblib.Memory(path)``
creates ``path/joblib``; TrainingArguments, accelerate's PartialState, Booster(model_file=...)): the walker allowed
them when instantiated with ``cls.__new__`` only. Kept as a plain value they were not judged at all, yet scikit-learn
calls what its objects hold: with scikit-learn 1.9.1 / joblib 1.6 (throwaway venv) ``joblib.load`` + ``transform``
of a ``CountVectorizer`` whose ``analyzer`` is ``joblib.memory.Memory`` created ``<document>/joblib``, and one whose
``tokenizer`` is ``Memory`` and ``preprocessor`` is ``functools.partial(numpy.add, '/tmp/x/pwn_')`` (both allowlisted)
created ``/tmp/x/pwn_<document>/joblib``, a directory the file chose. Every such file was allowed. A newobj-only class
held anywhere a library can reach it (BUILD state, a call's arguments outside an argument rule, items added to an
object, the pickle's result, a persistent id, items past the walker's caps) is now PICKLE-CONSTRAINT-VIOLATION,
except under the attribute names real libraries keep one (gadgets.yaml ``kept_values``, measured in
fixtures/ecosystem). Nothing is unpickled here.
"""

from __future__ import annotations

import pytest

from scanner.findings import Severity

from .assembler import (
    BUILD,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    NEWOBJ,
    NONE,
    PROTO,
    SETITEMS,
    STOP,
    TUPLE,
    G,
    U,
    call,
    finding,
    scan,
    worst,
)

MEMORY = G("joblib.memory", "Memory")
FT = G("sklearn.preprocessing._function_transformer", "FunctionTransformer")
VEC = G("sklearn.feature_extraction.text", "CountVectorizer")
LINEAR = G("torch.nn.modules.linear", "Linear")
SPLINE = G("scipy.interpolate._fitpack2", "UnivariateSpline")
ODICT = G("collections", "OrderedDict")
RULE = "PICKLE-CONSTRAINT-VIOLATION"


def _p2(body: bytes) -> bytes:
    return PROTO(2) + body + STOP


def _obj(cls: bytes, *pairs: tuple[str, bytes]) -> bytes:
    """cls.__new__(cls) then BUILD of {name: value, ...}: how every estimator and module is written."""
    state = EMPTY_DICT + MARK + b"".join(U(k) + v for k, v in pairs) + SETITEMS
    return cls + EMPTY_TUPLE + NEWOBJ + state + BUILD


def _list(*items: bytes) -> bytes:
    return EMPTY_LIST + MARK + b"".join(items) + b"e"


def _blocks(data: bytes) -> None:
    fr = scan(data)
    assert worst(fr) is not None and worst(fr) >= Severity.HIGH, [(f.rule_id, f.message) for f in fr.findings]
    f = finding(fr, RULE)
    assert "joblib.memory.Memory" in f.message and "kept as a value" in f.message


def _allowed(data: bytes) -> None:
    fr = scan(data)
    above = [(f.rule_id, f.message) for f in fr.findings if f.severity > Severity.LOW]
    assert not above


JUNK = [(f"k{i}", b"K\x01") for i in range(70)]
PARTIAL_ADD = call(G("functools", "partial"), G("numpy", "add"), U("/tmp/modelward-pwn_"))

BLOCKING = {
    # the confirmed shapes (scikit-learn 1.9.1: joblib.load + transform created the directory)
    "function_transformer_func": _obj(FT, ("func", MEMORY), ("validate", b"\x89")),
    "vectorizer_analyzer": _obj(VEC, ("analyzer", MEMORY)),
    "vectorizer_tokenizer_with_steered_path": _obj(VEC, ("tokenizer", MEMORY), ("preprocessor", PARTIAL_ADD)),
    # invented variants: the same value reached by other paths
    "inverse_func_nested_in_kw_args": _obj(FT, ("kw_args", EMPTY_DICT + U("x") + MEMORY + b"s")),
    # torch calls hook(module, input, output) for each value of _forward_hooks in model(x)
    "forward_hook_in_ordered_dict": _obj(
        LINEAR, ("_forward_hooks", call(ODICT, _list(MARK + b"K\x00" + MEMORY + TUPLE)))
    ),
    "constructor_argument": call(ODICT, _list(MARK + U("f") + MEMORY + TUPLE)),
    "pickle_result": MEMORY,
    "in_a_list_result": _list(MEMORY),
    "list_item_past_the_kept_64": _list(*([b"K\x01"] * 70), MEMORY),
    "list_item_past_the_kept_callables": _list(*([b"K\x01"] * 64), *([G("numpy", "add")] * 70), MEMORY),
    "tuple_item_past_the_kept_64": _list(*([b"K\x01"] * 70), MARK + U("f") + MEMORY + TUPLE),
    "dict_value_past_the_kept_64": EMPTY_DICT
    + MARK
    + b"".join(U(f"k{i}") + b"K\x01" for i in range(70))
    + U("cb")
    + MEMORY
    + SETITEMS,
    # _rebuild_from_type_v2's state (an argument rule: state) is set as attributes of the tensor it returns
    "tensor_state_attribute": call(
        G("torch._tensor", "_rebuild_from_type_v2"),
        ODICT,
        G("torch", "Tensor"),
        EMPTY_TUPLE,
        EMPTY_DICT + U("cb") + MEMORY + b"s",
    ),
    "kept_attribute_past_the_kept_64": _obj(SPLINE, *JUNK, ("_spline_class", MEMORY)),
    "kept_attribute_with_another_class": _obj(SPLINE, ("_spline_class", MEMORY)),
    "setitems_on_an_instance": _obj(FT) + MARK + U("f") + MEMORY + SETITEMS,
    "memoised_after_a_newobj": MEMORY + b"q\x00" + EMPTY_TUPLE + NEWOBJ + b"0" + _obj(FT, ("func", b"h\x00")),
}


@pytest.mark.parametrize("name", sorted(BLOCKING))
def test_newobj_only_class_kept_as_a_value_blocks(name: str) -> None:
    _blocks(_p2(BLOCKING[name]))


def test_value_nested_past_the_walk_budget_blocks() -> None:
    # 5000 nested 1-tuples: the value walk runs out before it reaches the class, so it may be kept (fail closed)
    fr = scan(_p2(_obj(FT, ("func", MEMORY + b"\x85" * 5000))))
    f = finding(fr, RULE)
    assert "kept as a value" in f.message and f.severity >= Severity.HIGH


ALLOWED = {
    # hdbscan: HDBSCAN(memory=Memory(location=None)) is written NEWOBJ + BUILD
    "memory_instantiated_by_newobj": _obj(G("hdbscan.hdbscan_", "HDBSCAN"), ("memory", _obj(MEMORY))),
    "memoised_class_instantiated_twice": MEMORY
    + b"q\x00"
    + EMPTY_TUPLE
    + NEWOBJ
    + b"0h\x00"
    + EMPTY_TUPLE
    + NEWOBJ,
    "reconstructor_class_argument": call(
        G("copyreg", "_reconstructor"), MEMORY, G("builtins", "object"), NONE
    ),
    # scipy UnivariateSpline._set_class keeps the class it ended as (measured: scipy 1.9-1.17)
    "scipy_spline_class_past_the_kept_64": _obj(
        SPLINE, *JUNK, ("_spline_class", G("scipy.interpolate._fitpack2", "LSQUnivariateSpline"))
    ),
    "scipy_spline_class": _obj(
        SPLINE, ("_spline_class", G("scipy.interpolate._fitpack2", "LSQUnivariateSpline"))
    ),
    # data-only values are what libraries call later: a ufunc as FunctionTransformer.func
    "ufunc_as_func": _obj(FT, ("func", G("numpy", "log1p")), ("inverse_func", G("numpy", "expm1"))),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_shapes_libraries_write_stay_allowed(name: str) -> None:
    _allowed(_p2(ALLOWED[name]))


# -- torch nn.Module hook dicts: torch calls what they hold in the module's normal use ------------------------------
#
# torch 2.13 (throwaway venv): torch.save of a Linear whose _forward_hooks is OrderedDict([(0, builtins.print)]);
# torch.load(weights_only=False) + model(x) printed the module, input and output. builtins.print is allowlisted
# data-only (fastai's Recorder logger), so the file was allowed.

PRINT = G("builtins", "print")


@pytest.mark.parametrize(
    "hooks",
    [
        pytest.param(
            ("_forward_hooks", call(ODICT, _list(MARK + b"K\x00" + PRINT + TUPLE))), id="ordered_dict_pairs"
        ),
        pytest.param(("_forward_pre_hooks", call(ODICT) + MARK + b"K\x00" + PRINT + SETITEMS), id="setitems"),
        pytest.param(("_state_dict_hooks", EMPTY_DICT + b"K\x00" + PRINT + b"s"), id="state_dict_hooks_dict"),
        pytest.param(
            ("_load_state_dict_pre_hooks", EMPTY_DICT + b"K\x00" + PRINT + b"s"), id="load_pre_hooks"
        ),
    ],
)
def test_data_only_function_as_a_module_hook_blocks(hooks: tuple[str, bytes]) -> None:
    fr = scan(_p2(_obj(LINEAR, ("training", b"\x88"), hooks)))
    f = finding(fr, RULE)
    assert "builtins.print" in f.message and f.severity >= Severity.HIGH


def test_module_with_empty_hook_dicts_stays_allowed() -> None:
    empty = call(ODICT)
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_state_dict_hooks")
    _allowed(_p2(_obj(LINEAR, ("training", b"\x88"), *((n, empty) for n in names))))


# -- an import set as a method the library calls: BUILD state shadows the class's method ----------------------------
#
# torch 2.13: torch.save of a Linear with .forward = builtins.print; torch.load(weights_only=False) + model(x) printed
# x. scikit-learn 1.9.1: joblib.dump of a fitted LogisticRegression with .predict = builtins.print; joblib.load +
# predict(X) printed X. Both allowed before.

LOGREG = G("sklearn.linear_model._logistic", "LogisticRegression")


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (LINEAR, "forward"),
        (LINEAR, "_call_impl"),
        (LOGREG, "predict"),
        (LOGREG, "transform"),
        (FT, "inverse_transform"),
    ],
)
def test_data_only_function_set_as_a_library_method_blocks(cls: bytes, method: str) -> None:
    fr = scan(_p2(_obj(cls, (method, PRINT))))
    f = finding(fr, RULE)
    assert "builtins.print" in f.message and f.severity >= Severity.HIGH


def test_method_set_through_slot_state_blocks() -> None:
    state = MARK + NONE + EMPTY_DICT + U("forward") + PRINT + b"s" + TUPLE
    fr = scan(_p2(LINEAR + EMPTY_TUPLE + NEWOBJ + state + BUILD))
    assert "builtins.print" in finding(fr, RULE).message


def test_allowed_kept_class_reused_under_another_key_past_the_cap_blocks() -> None:
    # the same memoised class object is the value of '_spline_class' (allowed) and of the key 5 (not a kept name)
    lsq = G("scipy.interpolate._fitpack2", "LSQUnivariateSpline")
    state = (
        EMPTY_DICT
        + MARK
        + b"".join(U(k) + v for k, v in JUNK)
        + U("_spline_class")
        + lsq
        + b"q\x05K\x05h\x05"
    )
    fr = scan(_p2(SPLINE + EMPTY_TUPLE + NEWOBJ + state + SETITEMS + BUILD))
    assert "LSQUnivariateSpline" in finding(fr, RULE).message
