"""skops ``.skops`` files: real dumps allow; every hand-edited schema that makes skops.io.load import or call
something unlisted blocks, as do malformed, unmodeled, huge and deep schemas.

The variants are built from the benign fixtures (fixtures/gen/skops_files.py, written by skops 0.16.0) with
the standard library: schema.json is edited, every other member is copied.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scanner.findings import Coverage
from scanner.formats.registry import HANDLERS, by_name
from scanner.limits import DEFAULT_LIMITS
from tests.harness import EVIL_PICKLE, fixture, inspect_bytes, rule_ids, scan_on_disk, verdict

LOGREG = "skops/benign_logreg_sparse_object.skops"
PIPE = "skops/benign_pipeline_hgb.skops"
BLOCKING = {"block"}


def _json(v: Any) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(v)}


def _tuple(*items: dict[str, Any]) -> dict[str, Any]:
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": list(items)}


def _node(loader: str, module: str, cls: str, **extra: Any) -> dict[str, Any]:
    return {"__class__": cls, "__module__": module, "__loader__": loader, **extra}


def rebuild(
    src: str,
    edit: Callable[[dict[str, Any]], Any] | None = None,
    *,
    raw: Callable[[bytes], bytes] | None = None,
    members: dict[str, bytes] | None = None,
) -> bytes:
    """The fixture with schema.json edited (as JSON, or as bytes with ``raw``) and members replaced or added."""
    buf = io.BytesIO()
    extra = dict(members or {})
    with zipfile.ZipFile(fixture(src)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "schema.json":
                if edit is not None:
                    data = json.dumps(edit(json.loads(data))).encode()
                if raw is not None:
                    data = raw(data)
            data = extra.pop(info.filename, data)
            zout.writestr(info, data)
        for name, data in extra.items():
            zout.writestr(name, data)
    return buf.getvalue()


def with_attr(node: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An edit adding ``node`` as an attribute of the top estimator (its state DictNode)."""

    def edit(schema: dict[str, Any]) -> dict[str, Any]:
        state = schema["content"]
        state["content"]["planted_"] = node
        state["key_types"]["content"].append(_node("TypeNode", "builtins", "str"))
        return schema

    return edit


def _find(tree: Any, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    stack = [tree]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if pred(v):
                return v
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    raise AssertionError("node not found")


# --------------------------------------------------------------------------- benign


@pytest.mark.parametrize("name", [LOGREG, PIPE])
def test_real_dumps_allow_with_no_finding(tmp_path: Path, name: str) -> None:
    fr = scan_on_disk(tmp_path, fixture(name).read_bytes(), "model.skops")
    assert fr.format == "skops"
    assert not fr.findings, [f.message for f in fr.findings]
    assert fr.coverage is Coverage.FULL
    assert verdict(fr).value == "allow"
    assert "numpy-npy" in fr.formats  # the .npy members went through the numpy inspector
    assert any(m.endswith(".npy") for m in fr.members)


def test_sparse_member_goes_through_the_npz_inspector() -> None:
    fr = inspect_bytes(fixture(LOGREG).read_bytes(), "m.skops")
    assert "numpy-npz" in fr.formats


def test_registry_places_skops_after_keras_zip_and_before_npz_and_zip() -> None:
    names = [h.name for h in HANDLERS]
    i = names.index("skops")
    assert names.index("keras-zip") < i < names.index("numpy-npz") < names.index("zip-archive")
    assert by_name("skops").claims == (".skops",)


def test_zip_with_a_non_skops_schema_json_is_not_judged_as_skops() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("schema.json", json.dumps({"type": "object", "properties": {}}))
    fr = inspect_bytes(buf.getvalue(), "bundle.zip")
    assert not any(r.startswith(("SKOPS-", "PICKLE-")) for r in rule_ids(fr))
    assert fr.coverage is Coverage.FULL


# --------------------------------------------------------------------------- malicious edits

CMD = "touch /tmp/modelward-canary"
CASES: dict[str, tuple[str, Callable[[dict[str, Any]], Any], set[str]]] = {
    "function_os_system": (
        LOGREG,
        with_attr(_node("FunctionNode", "os", "system")),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "function_builtins_eval": (
        LOGREG,
        with_attr(_node("FunctionNode", "builtins", "eval")),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "function_protocol0_content": (  # protocol 0 imports content.module_path:function, not __module__
        LOGREG,
        lambda s: {
            **with_attr(
                _node(
                    "FunctionNode", "numpy", "log1p", content={"module_path": "posix", "function": "system"}
                )
            )(s),
            "protocol": 0,
        },
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "function_unlisted": (
        LOGREG,
        with_attr(_node("FunctionNode", "mypkg.hooks", "on_load")),
        {"PICKLE-IMPORT-UNLISTED"},
    ),
    "operator_methodcaller": (
        LOGREG,
        with_attr(
            _node("OperatorFuncNode", "operator", "methodcaller", attrs=_tuple(_json("system"), _json(CMD)))
        ),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "operator_attrgetter": (
        LOGREG,
        with_attr(_node("OperatorFuncNode", "operator", "attrgetter", attrs=_tuple(_json("os.system")))),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "operator_outside_operator": (
        LOGREG,
        with_attr(_node("OperatorFuncNode", "os", "system", attrs=_tuple(_json(CMD)))),
        {"SKOPS-SCHEMA-INVALID"},
    ),
    "method_node": (
        LOGREG,
        lambda s: with_attr(
            _node(
                "MethodNode",
                s["__module__"],
                s["__class__"],
                content={
                    "func": "__reduce_ex__",
                    "obj": _node("ObjectNode", s["__module__"], s["__class__"]),
                },
            )
        )(s),
        {"PICKLE-CALL-UNLISTED"},
    ),
    "object_unlisted_module": (
        LOGREG,
        lambda s: {**s, "__module__": "mypackage.models", "__class__": "Backdoored"},
        {"PICKLE-CALL-UNLISTED"},
    ),
    "reduce_node_unknown_loader": (
        LOGREG,
        with_attr(
            _node(
                "ReduceNode", "mypkg.evil", "Thing", __reduce__={"args": _tuple(_json(CMD))}, content=_tuple()
            )
        ),
        {"SKOPS-LOADER-UNKNOWN", "PICKLE-CALL-UNLISTED"},
    ),
    "loss_node_constructor_escape": (  # LossNode calls state __module__.__class__(*args)
        LOGREG,
        with_attr(
            _node("LossNode", "builtins", "exec", __reduce__={"args": _tuple(_json("1"))}, content=_tuple())
        ),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "constructor_from_reduce_popen": (
        LOGREG,
        with_attr(_node("ConstructorFromReduceNode", "subprocess", "Popen", content=_tuple(_json(CMD)))),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "constructor_newobj_only_class": (  # allowlisted only as cls.__new__ + state; called with arguments
        LOGREG,
        with_attr(_node("ConstructorFromReduceNode", "scipy.sparse._csr", "csr_matrix", content=_tuple())),
        {"PICKLE-CONSTRAINT-VIOLATION"},
    ),
    "type_node_dangerous": (
        LOGREG,
        with_attr(_node("TypeNode", "builtins", "exec")),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "key_type_unlisted": (  # DictNode calls key types on the keys
        LOGREG,
        lambda s: (
            s["content"]["key_types"]["content"].__setitem__(0, _node("TypeNode", "mypkg.keys", "Key")) or s
        ),
        {"PICKLE-CALL-UNLISTED"},
    ),
    "ndarray_subtype_call": (  # NdArrayNode of a type other than ndarray calls it with the array
        LOGREG,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "NdArrayNode" and n.get("type") == "numpy").update(
                __module__="os", __class__="system"
            )
            or s
        ),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "random_generator_bit_generator_name": (
        PIPE,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "RandomGeneratorNode")["content"]["bit_generator"][
                "content"
            ].__setitem__("bit_generator", _json("seed"))
            or s
        ),
        {"PICKLE-CALL-UNLISTED"},
    ),
    "random_generator_pool_size": (
        PIPE,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "RandomGeneratorNode")["content"]["seed_seq"][
                "content"
            ].__setitem__("pool_size", _json(1 << 40))
            or s
        ),
        {"PICKLE-ALLOCATION-SIZE"},
    ),
    "nested_pipeline_hides_one": (  # deep inside Pipeline -> ColumnTransformer -> OneHotEncoder
        PIPE,
        lambda s: (
            _find(
                s, lambda n: n.get("__loader__") == "ObjectNode" and n.get("__class__") == "OneHotEncoder"
            ).update(__module__="mypkg.encoders", __class__="OneHotEncoder")
            or s
        ),
        {"PICKLE-CALL-UNLISTED"},
    ),
    "nested_function_in_pipeline": (
        PIPE,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "JsonNode" and n.get("content") == '"ignore"').update(
                __loader__="FunctionNode", __module__="posix", __class__="system"
            )
            or s
        ),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "fixed_type_node_declares_dangerous": (  # not imported by this loader, but listed to the user to trust
        LOGREG,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "SparseMatrixNode").update(
                __module__="os", __class__="system"
            )
            or s
        ),
        {"PICKLE-DANGEROUS-GLOBAL"},
    ),
    "protocol_from_the_future": (LOGREG, lambda s: {**s, "protocol": 3}, {"SKOPS-SCHEMA-INVALID"}),
    "protocol_not_an_int": (LOGREG, lambda s: {**s, "protocol": "2"}, {"SKOPS-SCHEMA-INVALID"}),
    "missing_member_file": (
        LOGREG,
        lambda s: (
            _find(s, lambda n: n.get("__loader__") == "NdArrayNode" and n.get("type") == "numpy").update(
                file="nope.npy"
            )
            or s
        ),
        {"SKOPS-SCHEMA-INVALID"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malicious_schema_edit_blocks(tmp_path: Path, case: str) -> None:
    src, edit, expected = CASES[case]
    fr = scan_on_disk(tmp_path, rebuild(src, edit), "model.skops")
    assert fr.format == "skops"
    found = rule_ids(fr)
    assert expected <= found, (case, sorted(found), [f.message for f in fr.findings])
    assert verdict(fr).value in BLOCKING, (case, [f.message for f in fr.findings])


def test_finding_names_the_loader_node_and_where() -> None:
    fr = inspect_bytes(rebuild(LOGREG, with_attr(_node("FunctionNode", "os", "system"))), "m.skops")
    f = next(f for f in fr.findings if f.rule_id == "PICKLE-DANGEROUS-GLOBAL")
    assert f.evidence["global"] == "os:system"
    assert f.evidence["node"] == "FunctionNode"
    assert "planted_" in f.evidence["at"]


def test_escaped_keys_are_decoded_like_the_loader_does(tmp_path: Path) -> None:
    def esc(data: bytes) -> bytes:
        return data.replace(b'"__loader__"', b'"\\u005f_loader__"').replace(
            b'"__module__"', b'"\\u005f_module__"'
        )

    fr = scan_on_disk(
        tmp_path, rebuild(LOGREG, with_attr(_node("FunctionNode", "os", "system")), raw=esc), "m.skops"
    )
    assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_schema_in_other_json_encodings_is_still_judged(tmp_path: Path, encoding: str) -> None:
    data = rebuild(
        LOGREG, with_attr(_node("FunctionNode", "os", "system")), raw=lambda b: b.decode().encode(encoding)
    )
    fr = scan_on_disk(tmp_path, data, "m.skops")
    assert fr.format == "skops"
    assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)


def test_whitespace_padding_before_the_schema_does_not_hide_it(tmp_path: Path) -> None:
    data = rebuild(LOGREG, with_attr(_node("FunctionNode", "os", "system")), raw=lambda b: b" " * 70_000 + b)
    fr = scan_on_disk(tmp_path, data, "m.skops")
    assert fr.format == "skops" and "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)


def test_schema_that_does_not_parse_blocks(tmp_path: Path) -> None:
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, raw=lambda b: b[:-10]), "m.skops")
    assert "SKOPS-SCHEMA-INVALID" in rule_ids(fr)
    assert fr.coverage is not Coverage.FULL
    assert verdict(fr).value == "block"


@pytest.mark.parametrize("depth", [400, 5000])  # past the walk's depth cap; past what json.loads parses
def test_deep_schema_is_a_limit_with_partial_coverage(tmp_path: Path, depth: int) -> None:
    opener = b'{"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": ['
    deep = opener * depth + json.dumps(_node("FunctionNode", "os", "system")).encode() + b"]}" * depth
    data = rebuild(LOGREG, with_attr("@@DEEP@@"), raw=lambda b: b.replace(b'"@@DEEP@@"', deep))  # type: ignore[arg-type]
    fr = scan_on_disk(tmp_path, data, "m.skops")
    assert "LIMIT-EXCEEDED" in rule_ids(fr)
    assert fr.coverage is Coverage.PARTIAL
    assert verdict(fr).value == "block"


def test_huge_schema_is_a_limit_not_a_pass() -> None:
    fr = inspect_bytes(fixture(PIPE).read_bytes(), "m.skops", replace(DEFAULT_LIMITS, max_json_values=1000))
    assert "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL
    fr = inspect_bytes(fixture(PIPE).read_bytes(), "m.skops", replace(DEFAULT_LIMITS, max_json_bytes=10_000))
    assert "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL


def test_node_count_cap_is_a_limit() -> None:
    fr = inspect_bytes(fixture(PIPE).read_bytes(), "m.skops", replace(DEFAULT_LIMITS, max_nodes=50))
    assert "LIMIT-EXCEEDED" in rule_ids(fr) and fr.coverage is Coverage.PARTIAL


def test_object_array_npy_member_fails_closed(tmp_path: Path) -> None:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (118 - len(header)) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + EVIL_PICKLE
    with zipfile.ZipFile(fixture(LOGREG)) as z:
        target = next(n for n in z.namelist() if n.endswith(".npy"))
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, members={target: npy}), "m.skops")
    assert "NUMPY-OBJECT-ARRAY" in rule_ids(fr) or "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)
    assert verdict(fr).value == "block"


def test_bytes_member_holding_a_pickle_is_inspected(tmp_path: Path) -> None:
    node = _node("BytesNode", "builtins", "bytes", file="payload.bin")
    fr = scan_on_disk(
        tmp_path, rebuild(LOGREG, with_attr(node), members={"payload.bin": EVIL_PICKLE}), "m.skops"
    )
    assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)


def test_plain_bytes_member_is_data(tmp_path: Path) -> None:
    node = _node("BytesNode", "builtins", "bytes", file="data.bin")
    fr = scan_on_disk(
        tmp_path, rebuild(LOGREG, with_attr(node), members={"data.bin": b"plain bytes"}), "m.skops"
    )
    assert not fr.findings, [f.message for f in fr.findings]


def test_unreferenced_members_are_inspected_by_content(tmp_path: Path) -> None:
    fr = scan_on_disk(tmp_path, rebuild(LOGREG, members={"extra.pkl": EVIL_PICKLE}), "m.skops")
    assert "PICKLE-DANGEROUS-GLOBAL" in rule_ids(fr)
