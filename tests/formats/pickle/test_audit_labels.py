"""The audit labels ``literal-args`` / ``args-allowlisted`` are enforced for every profile entry carrying them.

``signatures/pickle/audit/*.yaml`` records, per profile entry, the argument shape
the library writes. A label is only a promise until the analyzer checks it: the
checks live in ``signatures/pickle/gadgets.yaml``. These tests keep the two in
step (a labelled entry without a gadget rule fails) and build variants that call
labelled entries with a call result, a class or a non-literal where the library
writes a literal, each of which must block.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.harness import REPO, rule_ids, scan

PICKLE = REPO / "signatures" / "pickle"
LABELS = ("literal-args", "args-allowlisted", "size-bounded")


def _gadgets() -> dict[str, dict]:
    return yaml.safe_load((PICKLE / "gadgets.yaml").read_text())["callables"]


def _labelled() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted((PICKLE / "audit").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            if group["constraint"] in LABELS:
                for g in group["globals"]:
                    out.setdefault(g, group["constraint"])
    return out


def test_every_labelled_entry_has_its_argument_rule() -> None:
    gadgets = _gadgets()
    labelled = _labelled()
    assert len(labelled) > 40  # the audit labels dozens of entries: this must not pass on an empty scan
    missing = sorted(g for g in labelled if g not in gadgets or not gadgets[g].get("args"))
    assert not missing, f"audit-labelled entries without a gadgets.yaml argument rule: {missing}"


def test_literal_args_entries_accept_only_literals() -> None:
    gadgets = _gadgets()
    for g, label in _labelled().items():
        if label != "literal-args":
            continue
        rules = gadgets[g]["args"]
        assert 0 in rules, g
        for pos, rule in rules.items():
            # 'literal', or a narrower kind of literal: an int, None, a str matching a regex
            accepted = rule.get("one_of") or []
            narrow = [t for t in accepted if t not in ("literal", "int", "none") and not t.startswith("re:")]
            # regex narrows a literal pattern further (no catastrophic backtracking)
            assert accepted and not narrow and set(rule) - {"regex"} == {"one_of"}, (
                f"{g} argument {pos}: {rule}"
            )


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _call(target: bytes, *args: bytes) -> bytes:
    return target + b"(" + b"".join(args) + b"tR"


def _attr(module: str, name: str, attr: str) -> bytes:
    """getattr(<module:name>, 'attr') as Python pickles bound methods and classmethods."""
    return _call(_glob("builtins", "getattr"), _glob(module, name), _str(attr))


ODICT = _call(_glob("collections", "OrderedDict"))  # an allowlisted call result: not a literal
DTYPE = _call(_glob("numpy", "dtype"), _str("f8"), b"\x89\x88")

# Each calls one audit-labelled entry the way the library does, except for ONE argument.
BAD = {
    "codecs_encode_object": _call(_glob("_codecs", "encode"), ODICT, _str("latin1")),
    "codecs_encode_third_arg": _call(_glob("_codecs", "encode"), _str("ab"), _str("latin1"), ODICT),
    "dtype_from_class": _call(_glob("numpy", "dtype"), _glob("numpy", "ndarray")),
    "dtype_v1_from_call": _call(_glob("numpy.core.multiarray", "dtype"), ODICT, b"\x89\x88"),
    "enum_hf_from_call": _call(_glob("transformers.training_args", "OptimizerNames"), ODICT),
    "enum_accelerate_class": _call(
        _glob("accelerate.utils.dataclasses", "DistributedType"), _glob("collections", "OrderedDict")
    ),
    "enum_sktime_second_arg": _call(_glob("sktime.datatypes._dtypekind", "DtypeKind"), _str("a"), ODICT),
    "zoneinfo_key_call": _call(_glob("zoneinfo", "ZoneInfo"), ODICT),
    "zoneinfo_unpickle_getattr": _call(_attr("zoneinfo", "ZoneInfo", "_unpickle"), ODICT, b"K\x01"),
    "pytz_p_last_arg": _call(_glob("pytz", "_p"), _str("UTC"), b"K\x00", b"K\x00", ODICT),
    "type_for_alias_call": _call(_glob("pyarrow.lib", "type_for_alias"), ODICT),
    "get_layout_class": _call(_glob("torch.serialization", "_get_layout"), _glob("torch", "Tensor")),
    "randomstate_ctor_arg": _call(_glob("numpy.random", "__RandomState_ctor"), ODICT),
    "scalar_without_dtype": _call(
        _glob("numpy._core.multiarray", "scalar"), _glob("numpy", "ndarray"), b"C\x00"
    ),
    "custom_business_day_calendar_object": _call(
        _glob("pandas._libs.tslibs.offsets", "CustomBusinessDay"),
        b"K\x01",
        b"\x89",
        _str("Mon Tue Wed Thu Fri"),
        b")",
        ODICT,  # _get_calendar calls calendar.holidays(): pandas writes None here
    ),
    "new_interval_index_other_class": _call(
        _glob("pandas.core.indexes.interval", "_new_IntervalIndex"), _glob("pandas", "DataFrame"), b"}"
    ),
    "seedsequence_other_class": _call(
        _glob("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        _glob("collections", "OrderedDict"),
        b"K\x01",
        b"N",
    ),
}

# The same entries as the libraries really write them: allowed, so the rules above are not blanket blocks.
GOOD = {
    "codecs_encode": _call(_glob("_codecs", "encode"), _str("ab"), _str("latin1")),
    "dtype": DTYPE,
    "enum_hf": _call(_glob("transformers.training_args", "OptimizerNames"), _str("adamw_torch")),
    "scalar": _call(_glob("numpy._core.multiarray", "scalar"), DTYPE, b"C\x08" + bytes(8)),
    "zoneinfo_unpickle": _call(_attr("zoneinfo", "ZoneInfo", "_unpickle"), _str("UTC"), b"K\x01"),
    "custom_business_day": _call(
        _glob("pandas._libs.tslibs.offsets", "CustomBusinessDay"),
        b"K\x01",
        b"\x89",
        _str("Mon Tue Wed Thu Fri"),
        b")",
        b"N",
        _call(_glob("datetime", "timedelta"), b"K\x00", b"K\x00", b"K\x00"),
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_labelled_entry_with_a_non_literal_argument_blocks(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(BAD[name]))
    report = scan(path)
    assert report.verdict.decision.value == "block", sorted(rule_ids(report))
    assert "PICKLE-GADGET-ARGUMENT" in rule_ids(report)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_labelled_entry_as_the_library_writes_it_is_allowed(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(GOOD[name]))
    report = scan(path)
    assert "PICKLE-GADGET-ARGUMENT" not in rule_ids(report)
    assert report.verdict.decision.value == "allow", sorted(rule_ids(report))


# Entries measured 2026-12-02 with the 'data-only' / 'newobj-only' constraints, used the way their library never
# writes them: called by REDUCE instead of stored or built with NEWOBJ+BUILD.
MISUSED = {
    "numpy_mean_called": _call(_glob("numpy", "mean"), b"]"),
    "kmeans_kernel_called": _call(_glob("sklearn.cluster._kmeans", "_kmeans_single_lloyd"), b"N", b"N", b"N"),
    "dateoffset_reduce": _call(_glob("pandas", "DateOffset"), b"K\x01"),
    "bisecting_tree_reduce": _call(
        _glob("sklearn.cluster._bisect_k_means", "_BisectingTree"), b"N", b"N", b"N"
    ),
    "string_array_called": _call(_glob("pandas.arrays", "StringArray"), b"]"),
    "matrix_called": _call(_glob("numpy", "matrix"), _str("1 2; 3 4")),
}


@pytest.mark.parametrize("name", sorted(MISUSED))
def test_constrained_entry_used_another_way_blocks(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(_p2(MISUSED[name]))
    report = scan(path)
    assert report.verdict.decision.value == "block", sorted(rule_ids(report))
