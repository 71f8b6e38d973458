"""OpenVINO IR pairs through the repository check: weights identified, ranges and extension ops judged."""

from __future__ import annotations

import struct

from scanner.findings import Coverage, Severity
from scanner.repo.openvino import custom_layers, known_ops, parse_ir
from tests.harness import fixture, rule_ids, scan_files

WEIGHTS = struct.pack("<16f", *range(16))


def _ir(offset: int = 0, size: int = 64, layer_type: str = "Add", version: str = "opset1") -> str:
    return (
        f'<?xml version="1.0"?>\n<net name="t" version="11"><layers>'
        f'<layer id="0" name="x" type="Parameter" version="opset1"><data shape="1,16" element_type="f32"/></layer>'
        f'<layer id="1" name="w" type="Const" version="opset1">'
        f'<data element_type="f32" shape="1,16" offset="{offset}" size="{size}"/></layer>'
        f'<layer id="2" name="op" type="{layer_type}" version="{version}"/>'
        f'<layer id="3" name="out" type="Result" version="opset1"/></layers><edges/></net>'
    )


def test_benign_pair_relabels_bin() -> None:
    res = scan_files({"openvino_model.xml": _ir(), "openvino_model.bin": WEIGHTS})
    b = res["openvino_model.bin"]
    assert b.format == "openvino-weights" and b.coverage is Coverage.FULL
    assert rule_ids(b) == {"OPENVINO-WEIGHTS"}
    assert not res["openvino_model.xml"].findings


def test_range_past_end_keeps_bin_unknown() -> None:
    res = scan_files({"m.xml": _ir(offset=8), "m.bin": WEIGHTS})
    assert "OPENVINO-WEIGHTS-RANGE" in rule_ids(res["m.xml"])
    assert res["m.bin"].format == "unknown" and "FORMAT-UNKNOWN" in rule_ids(res["m.bin"])


def test_non_numeric_range_is_reported() -> None:
    res = scan_files({"m.xml": _ir().replace('offset="0"', 'offset="0x10"'), "m.bin": WEIGHTS})
    assert "OPENVINO-WEIGHTS-RANGE" in rule_ids(res["m.xml"])


def test_missing_bin() -> None:
    res = scan_files({"m.xml": _ir()})
    assert {f.rule_id: f.severity for f in res["m.xml"].findings} == {
        "OPENVINO-WEIGHTS-MISSING": Severity.MEDIUM
    }


def test_custom_op_high_and_tokenizer_ops_medium() -> None:
    res = scan_files({"m.xml": _ir(layer_type="MyKernel", version="my_ext"), "m.bin": WEIGHTS})
    f = [f for f in res["m.xml"].findings if f.rule_id == "OPENVINO-CUSTOM-OP"]
    assert len(f) == 1 and f[0].severity is Severity.HIGH and f[0].evidence["types"] == ["MyKernel@my_ext"]
    tok = scan_files(
        {
            "openvino_tokenizer.xml": _ir(layer_type="BPETokenizer", version="extension"),
            "openvino_tokenizer.bin": WEIGHTS,
        }
    )
    f = [f for f in tok["openvino_tokenizer.xml"].findings if f.rule_id == "OPENVINO-CUSTOM-OP"]
    assert len(f) == 1 and f[0].severity is Severity.MEDIUM
    # a standard-opset version does not make an unknown type standard
    odd = scan_files({"m.xml": _ir(layer_type="NotAnOp", version="opset8"), "m.bin": WEIGHTS})
    assert any(
        f.severity is Severity.HIGH for f in odd["m.xml"].findings if f.rule_id == "OPENVINO-CUSTOM-OP"
    )


def test_entity_expansion_is_refused_before_parsing() -> None:
    lol = (
        '<?xml version="1.0"?>\n<!DOCTYPE net [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY a{i} "{"&a;" * 10}">' for i in range(8))
        + ']>\n<net name="&a7;"><layers/></net>'
    )
    res = scan_files({"m.xml": lol, "m.bin": WEIGHTS})
    assert "OPENVINO-XML-UNSAFE" in rule_ids(res["m.xml"])
    assert res["m.bin"].format == "unknown"


def test_other_xml_and_already_flagged_bins_are_left_alone() -> None:
    res = scan_files({"pom.xml": "<project><modelVersion>4.0.0</modelVersion></project>", "pom.bin": WEIGHTS})
    assert res["pom.bin"].format == "unknown" and not res["pom.xml"].findings
    import pickle

    pkl = pickle.dumps({"w": [1.0] * 4}, protocol=2)
    res = scan_files({"m.xml": _ir(size=8), "m.bin": pkl})
    assert res["m.bin"].format == "pickle"  # a recognized format is never relabelled


def test_every_layer_of_the_fixture_is_standard() -> None:
    ir = parse_ir(fixture("openvino/benign_ir/openvino_model.xml").read_bytes())
    assert ir is not None and len(ir.layers) == 4 and len(ir.consts) == 1
    assert custom_layers(ir) == []
    assert {"Const", "Parameter", "Result", "ScaledDotProductAttention", "ReadValue", "Loop"} <= known_ops()


def test_fixture_directories_scan_as_expected() -> None:
    from tests.harness import scan

    rep = scan(fixture("openvino/benign_ir"))
    formats = {f.path.rsplit("/", 1)[-1]: f.format for f in rep.files}
    assert formats.get("openvino_model.bin") == "openvino-weights", formats
    assert rep.verdict.decision.value == "allow"
