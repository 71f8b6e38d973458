"""cloudpickle's ``_builtin_type('MethodType')`` is judged as ``types.MethodType``; nothing else it returns is (issue #9).

fastai's tabular ``Learner.export`` rebuilds one bound method with
``cloudpickle._builtin_type('MethodType')(FilteredBase.dataloaders, <TabularPandas>)``.
The walker resolves only that literal name, to ``types:MethodType``, whose
function argument counts as called (gadgets.yaml) like ``functools.partial``'s.
Any other name (``CodeType``, ``FunctionType``) or a computed one stays a call of
cloudpickle, which the denylist reports as code construction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import FIXTURES, rule_ids, scan


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _call(target: bytes, *args: bytes) -> bytes:
    return target + b"(" + b"".join(args) + b"tR"


def _builtin_type(name: bytes) -> bytes:
    return _call(_glob("cloudpickle.cloudpickle", "_builtin_type"), name)


METHOD_TYPE = _builtin_type(_str("MethodType"))
DATALOADERS = _call(
    _glob("builtins", "getattr"), _glob("fastai.data.core", "FilteredBase"), _str("dataloaders")
)
INSTANCE = _glob("fastai.tabular.core", "TabularPandas") + b")\x81}b"  # NEWOBJ + BUILD, as fastai writes it

GOOD = {
    "fastai_bound_method": _call(METHOD_TYPE, DATALOADERS, INSTANCE),
    "direct_types_methodtype": _call(
        _glob("types", "MethodType"), _glob("fastai.metrics", "accuracy"), INSTANCE
    ),
}

BAD = {
    "method_around_os_system": (
        _call(METHOD_TYPE, _glob("os", "system"), _str("id")),
        "PICKLE-DANGEROUS-GLOBAL",
    ),
    "method_around_posix_system": (
        _call(_glob("types", "MethodType"), _glob("posix", "system"), _str("id")),
        "PICKLE-DANGEROUS-GLOBAL",
    ),
    "method_around_unlisted_function": (
        _call(METHOD_TYPE, _glob("evilpkg.hooks", "run"), INSTANCE),
        "PICKLE-CALL-UNLISTED",
    ),
    "method_around_builtins_eval": (
        _call(METHOD_TYPE, _glob("builtins", "eval"), _str("1")),
        "PICKLE-DANGEROUS-GLOBAL",
    ),
    "bound_method_called_at_load": (_call(_call(METHOD_TYPE, DATALOADERS, INSTANCE)), "PICKLE-UNTRACED-CALL"),
    "builtin_type_codetype": (_call(_builtin_type(_str("CodeType")), b"K\x00"), "PICKLE-CODE-OBJECT"),
    "builtin_type_functiontype": (_builtin_type(_str("FunctionType")), "PICKLE-CODE-OBJECT"),
    "builtin_type_computed_name": (
        _call(_builtin_type(_call(_glob("builtins", "str"), _str("MethodType"))), DATALOADERS, INSTANCE),
        "PICKLE-CODE-OBJECT",
    ),
    "builtin_type_memoized_then_codetype": (  # one import, resolved once: the second use is still judged
        _glob("cloudpickle.cloudpickle", "_builtin_type")
        + b"q\x00("
        + _str("MethodType")
        + b"tR0h\x00("
        + _str("CodeType")
        + b"tR",
        "PICKLE-CODE-OBJECT",
    ),
    "builtin_type_two_arguments": (
        _call(_glob("cloudpickle.cloudpickle", "_builtin_type"), _str("MethodType"), b"N"),
        "PICKLE-CODE-OBJECT",
    ),
    # the fastai classes are allowed in the NEWOBJ + BUILD shape only; inspect enums/parameters take literals
    "learner_called": (
        _call(_glob("fastai.tabular.learner", "TabularLearner")),
        "PICKLE-CONSTRAINT-VIOLATION",
    ),
    "accuracy_called_at_load": (_call(_glob("fastai.metrics", "accuracy")), "PICKLE-CONSTRAINT-VIOLATION"),
    "parameter_kind_object": (
        _call(_glob("inspect", "_ParameterKind"), _call(_glob("collections", "OrderedDict"))),
        "PICKLE-GADGET-ARGUMENT",
    ),
    "parameter_name_object": (
        _call(_glob("inspect", "Parameter"), _call(_glob("collections", "OrderedDict")), b"K\x01"),
        "PICKLE-GADGET-ARGUMENT",
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_method_type_around_an_allowlisted_function_is_allowed(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(GOOD[name]))
    report = scan(path)
    assert report.verdict.decision.value == "allow", sorted(rule_ids(report))


@pytest.mark.parametrize("name", sorted(BAD))
def test_method_type_and_builtin_type_abuse_blocks(tmp_path: Path, name: str) -> None:
    body, rule = BAD[name]
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(body))
    report = scan(path)
    assert report.verdict.decision.value == "block", sorted(rule_ids(report))
    assert rule in rule_ids(report), sorted(rule_ids(report))


def test_fastai_tabular_export_is_allowed_with_no_finding_above_low() -> None:
    report = scan(FIXTURES / "ecosystem" / "fastai" / "tabular_export.pkl")
    assert report.verdict.decision.value == "allow", sorted(rule_ids(report))
    assert not [f for f in report.all_findings() if f.severity.value in ("medium", "high", "critical")]
