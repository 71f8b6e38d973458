"""skops calls judged by the pickle argument rules (signatures/pickle/gadgets.yaml): what a node hands an
allowlisted factory or helper is judged as a pickle REDUCE/BUILD would be.

Real dumps (skops 0.16.0, data/benign_zoo.skops and the fixtures) allow with no finding; every hand-written
variant blocks: a helper handed an unlisted callable, a non-literal where only literals are accepted, a huge
allocation size (in the schema, in a 0-d .npy member, bound by a partial), a hook planted through state, and
arguments built by other nodes or reached through ``__id__`` references. The variants marked "real" were
loaded with skops 0.16.0 (trusted = its own untrusted types) with harmless sizes and a marker directory:
``test_variants_do_under_real_skops_what_the_model_says`` repeats that when SKOPS_PYTHON names a Python
with skops installed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scanner.findings import Coverage
from tests.formats.skops.test_skops_files import LOGREG, _json, _node, _tuple, rebuild, with_attr
from tests.harness import scan_on_disk, verdict

ZOO = Path(__file__).with_name("data") / "benign_zoo.skops"
HUGE = 3_000_000_000  # bytes: past the walker's 256 MiB allocation cap


def _list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": list(items)}


def _dict(content: dict[str, Any], key_types: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    types = key_types if key_types is not None else [_node("TypeNode", "builtins", "str") for _ in content]
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": content,
        "key_types": _list(*types),
    }


def _type(module: str, name: str, **extra: Any) -> dict[str, Any]:
    return _node("TypeNode", module, name, **extra)


def _func(module: str, name: str) -> dict[str, Any]:
    return _node("FunctionNode", module, name)


def _reduce(module: str, name: str, *args: dict[str, Any]) -> dict[str, Any]:
    return _node("ConstructorFromReduceNode", module, name, content=_tuple(*args))


def _partial(
    func: dict[str, Any], *args: dict[str, Any], kwds: Any = None, namespace: Any = None
) -> dict[str, Any]:
    return _node(
        "PartialNode",
        "functools",
        "partial",
        content={
            "func": func,
            "args": _tuple(*args),
            "kwds": kwds if kwds is not None else _dict({}),
            "namespace": namespace if namespace is not None else _json(None),
        },
    )


def _npy(value: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(value), allow_pickle=False)
    return buf.getvalue()


def _top(**attrs: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Several attributes on the top estimator, in this order (get_tree's order decides what an __id__ names)."""

    def edit(schema: dict[str, Any]) -> dict[str, Any]:
        for name, node in attrs.items():
            schema = with_attr(node)(schema)
            schema["content"]["content"][name] = schema["content"]["content"].pop("planted_")
        return schema

    return edit


# --------------------------------------------------------------------------- real dumps


@pytest.mark.parametrize("src", [ZOO, Path("fixtures/skops/benign_pipeline_hgb.skops")])
def test_real_dumps_of_every_calling_loader_allow(tmp_path: Path, src: Path) -> None:
    fr = scan_on_disk(tmp_path, src.read_bytes(), "model.skops")
    assert fr.format == "skops"
    assert not fr.findings, [f.message for f in fr.findings]
    assert fr.coverage is Coverage.FULL
    assert verdict(fr).value == "allow"


# --------------------------------------------------------------------------- hand-written variants

Edit = Callable[[dict[str, Any]], Any]
CASES: dict[str, tuple[Edit, dict[str, bytes], str]] = {
    # an allowlisted helper handed a callable outside the allowlist (called later, or at load)
    "defaultdict_factory_unlisted": (
        with_attr(
            _node(
                "DefaultDictNode",
                "collections",
                "defaultdict",
                content={"main": _dict({}), "default_factory": _type("mypkg.hooks", "Factory")},
            )
        ),
        {},
        "PICKLE-CALL-UNLISTED",
    ),
    "defaultdict_by_constructor_unlisted": (
        with_attr(_reduce("collections", "defaultdict", _func("mypkg.hooks", "on_missing"))),
        {},
        "PICKLE-CALL-UNLISTED",
    ),
    "methodtype_binds_unlisted": (
        with_attr(_reduce("types", "MethodType", _func("mypkg.hooks", "run"), _json(1))),
        {},
        "PICKLE-CALL-UNLISTED",
    ),
    "reconstructor_base_outside_its_list": (  # real: base.__init__ ran at load (joblib.Memory made its dir)
        with_attr(
            _reduce(
                "copyreg",
                "_reconstructor",
                _type("joblib.memory", "Memory"),
                _type("joblib.memory", "Memory"),
                _json("/tmp/modelward-canary-dir"),
            )
        ),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    # a value where only literals are accepted
    "dtype_of_a_built_object": (
        with_attr(_reduce("numpy", "dtype", _reduce("decimal", "Decimal", _json("1")))),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "decimal_exponent_dos": (
        with_attr(_reduce("decimal", "Decimal", _json("1e2000000000"))),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "fraction_key_type_dos": (  # real: DictNode called Fraction('1e3000') on the key at load
        with_attr(_dict({"1e2000000000": _json(1)}, [_type("fractions", "Fraction")])),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "numpy_scalar_of_a_2d_array": (
        with_attr(_node("NdArrayNode", "numpy", "float64", type="numpy", file="m.npy")),
        {"m.npy": _npy(np.zeros((2, 2)))},
        "PICKLE-GADGET-ARGUMENT",
    ),
    # sizes past the allocation cap
    "bytes_size_in_schema": (  # real: bytes(1000) from the schema
        with_attr(_reduce("builtins", "bytes", _json(HUGE))),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "bytearray_size_in_schema": (
        with_attr(_reduce("builtins", "bytearray", _json(HUGE))),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "range_materialised": (
        with_attr(_reduce("builtins", "range", _json(0), _json(10**10))),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "bytes_size_in_a_0d_npy_member": (  # real: bytes(np.load(member)) of a 0-d int array gave 1000 bytes
        with_attr(_node("NdArrayNode", "builtins", "bytes", type="numpy", file="n.npy")),
        {"n.npy": _npy(HUGE)},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "bytes_size_unpacked_from_a_list": (
        with_attr(_node("ConstructorFromReduceNode", "builtins", "bytes", content=_list(_json(HUGE)))),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "partial_binds_a_huge_size": (  # real: partial(bytes, 1000) kept func and args
        with_attr(_partial(_type("builtins", "bytes"), _json(HUGE))),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    # hooks planted through state (__dict__.update / __setstate__ of what the file names)
    "object_state_plants_setstate": (  # real: the instance's __dict__ held __setstate__=print
        with_attr(
            _node(
                "ObjectNode",
                "argparse",
                "Namespace",
                content=_dict({"__setstate__": _func("builtins", "print")}),
            )
        ),
        {},
        "PICKLE-HOOK-PLANTED",
    ),
    "object_state_hook_past_the_item_cap": (
        with_attr(
            _node(
                "ObjectNode",
                "argparse",
                "Namespace",
                content=_dict(
                    {**{f"a{i}": _json(i) for i in range(100)}, "append": _func("builtins", "print")}
                ),
            )
        ),
        {},
        "PICKLE-HOOK-PLANTED",
    ),
    "loss_node_state_plants_append": (  # list args: ReduceNode does __dict__.update(attrs)
        with_attr(
            _node(
                "LossNode",
                "argparse",
                "Namespace",
                __reduce__={"args": _list()},
                content=_dict({"append": _func("builtins", "print")}),
            )
        ),
        {},
        "PICKLE-HOOK-PLANTED",
    ),
    "partial_namespace_plants_hook": (
        with_attr(
            _partial(_func("numpy", "log1p"), namespace=_dict({"__setstate__": _func("builtins", "print")}))
        ),
        {},
        "PICKLE-HOOK-PLANTED",
    ),
    # arguments built by other nodes, or named by an __id__
    "size_from_an_int_call": (
        with_attr(_reduce("builtins", "bytes", _reduce("builtins", "int", _json(str(HUGE))))),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "defaultdict_of_a_huge_partial": (
        with_attr(
            _node(
                "DefaultDictNode",
                "collections",
                "defaultdict",
                content={
                    "main": _dict({}),
                    "default_factory": _partial(_type("builtins", "bytes"), _json(HUGE)),
                },
            )
        ),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "size_through_a_cached_node": (
        _top(
            a_size=_json(HUGE) | {"__id__": 910001},
            b_alloc=_reduce("builtins", "bytes", _node("CachedNode", "builtins", "int", __id__=910001)),
        ),
        {},
        "PICKLE-ALLOCATION-SIZE",
    ),
    "key_type_named_by_a_repeated_id": (  # real: the JsonNode was replaced by the earlier Fraction TypeNode
        _top(
            a_type=_type("fractions", "Fraction", __id__=910002),
            b_dict=_dict({"1e2000000000": _json(1)}, [_json("str") | {"__id__": 910002}]),
        ),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "key_type_built_by_a_node": (
        with_attr(_dict({"k": _json(1)}, [_partial(_func("builtins", "print"))])),
        {},
        "PICKLE-UNTRACED-CALL",
    ),
    # shapes the argument rules cannot place: fail closed
    "set_unpacked_as_arguments": (
        with_attr(
            _node(
                "ConstructorFromReduceNode",
                "builtins",
                "bytes",
                content={
                    "__class__": "set",
                    "__module__": "builtins",
                    "__loader__": "SetNode",
                    "content": [_json("a"), _json(HUGE)],
                },
            )
        ),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
    "partial_keywords_to_a_helper": (
        with_attr(_partial(_type("builtins", "bytes"), kwds=_dict({"encoding": _json("utf-8")}))),
        {},
        "PICKLE-GADGET-ARGUMENT",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_helper_argument_variant_blocks(tmp_path: Path, case: str) -> None:
    edit, members, expected = CASES[case]
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, edit, members=members), "model.skops")
    assert fr.format == "skops"
    found = {f.rule_id for f in fr.findings}
    assert expected in found, (case, sorted(found), [f.message for f in fr.findings])
    assert verdict(fr).value == "block", (case, [f.message for f in fr.findings])


def test_same_sizes_within_the_cap_are_data(tmp_path: Path) -> None:
    """A bytes/bytearray/range size the walker accepts in a pickle is accepted from a skops node too."""
    edit = _top(
        a=_reduce("builtins", "bytes", _json(1000)),
        b=_partial(_type("builtins", "bytes"), _json(1000)),
        c=_node("NdArrayNode", "builtins", "bytes", type="numpy", file="n.npy"),
        d=_reduce("decimal", "Decimal", _json("1.5")),
    )
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, edit, members={"n.npy": _npy(1000)}), "model.skops")
    assert not fr.findings, [f.message for f in fr.findings]


def test_gadget_finding_names_the_node_and_where(tmp_path: Path) -> None:
    fr = scan_on_disk(
        tmp_path, rebuild(LOGREG, with_attr(_reduce("builtins", "bytes", _json(HUGE)))), "m.skops"
    )
    f = next(f for f in fr.findings if f.rule_id == "PICKLE-ALLOCATION-SIZE")
    assert f.evidence["callable"] == "builtins:bytes"
    assert f.evidence["node"] == "ConstructorFromReduceNode"
    assert f.evidence["loader"] == "skops.io.load"
    assert "planted_" in f.evidence["at"]


def test_helper_called_import_is_reported_as_called(tmp_path: Path) -> None:
    edit = with_attr(_reduce("collections", "defaultdict", _func("mypkg.hooks", "on_missing")))
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, edit), "m.skops")
    f = next(f for f in fr.findings if f.rule_id == "PICKLE-CALL-UNLISTED")
    assert f.evidence["global"] == "mypkg.hooks:on_missing"
    assert f.evidence["use"] == "helper"


# --------------------------------------------------------------------------- real skops (optional)

REAL = r"""
import json, os, sys, skops.io as sio
out = {}
for name in sorted(os.listdir(".")):
    if name.endswith(".skops"):
        obj = sio.load(name, trusted=sio.get_untrusted_types(file=name))
        v = obj.planted_
        out[name[:-6]] = {"type": type(v).__name__, "len": len(v) if isinstance(v, bytes) else None,
                          "keys": [type(k).__name__ for k in v] if isinstance(v, dict) else None,
                          "dict": sorted(getattr(v, "__dict__", {}) or {})}
print(json.dumps(out))
"""


@pytest.mark.skipif(
    not os.environ.get("SKOPS_PYTHON"), reason="SKOPS_PYTHON (a Python with skops 0.16) not set"
)
def test_variants_do_under_real_skops_what_the_model_says(tmp_path: Path) -> None:
    """Harmless sizes: skops really calls bytes(n) from the schema and from a 0-d .npy member, calls a key type
    on each key, keeps a partial's bound arguments and puts state keys in the instance __dict__."""
    small = {
        "bytes_size": with_attr(_reduce("builtins", "bytes", _json(1000))),
        "npy_size": with_attr(_node("NdArrayNode", "builtins", "bytes", type="numpy", file="n.npy")),
        "key_type": with_attr(_dict({"1e300": _json(1)}, [_type("fractions", "Fraction")])),
        "state_hook": with_attr(
            _node(
                "ObjectNode",
                "argparse",
                "Namespace",
                content=_dict({"__setstate__": _func("builtins", "print")}),
            )
        ),
    }
    for name, edit in small.items():
        (tmp_path / f"{name}.skops").write_bytes(rebuild(LOGREG, edit, members={"n.npy": _npy(1000)}))
    run = subprocess.run(
        [os.environ["SKOPS_PYTHON"], "-c", REAL], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["bytes_size"]["len"] == 1000 and seen["npy_size"]["len"] == 1000
    assert seen["key_type"]["keys"] == ["Fraction"]
    assert seen["state_hook"]["dict"] == ["__setstate__"]
    assert sys.executable != os.environ["SKOPS_PYTHON"]  # skops never runs in the scanner's interpreter
