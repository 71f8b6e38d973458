"""Red-team: OpenVINO IR XML that OpenVINO's parser (pugixml) reads but ElementTree reads differently or refuses.

Confirmed with OpenVINO 2026.4.1 ``Core().read_model()`` in a throwaway venv: with an element after ``</net>``,
or a layer (or the root) carrying ``xmlns="urn:x"``, the runtime still builds the layers and stops only at
"Cannot create EvilKernel layer ... from unsupported opset: extension" (it runs with the extension registered),
while the scan skipped the IR checks (allowed). Also: the IR serializer writes Relu/PRelu/Softmax as
ReLU/PReLU/SoftMax, which were reported as extension ops on real IRs.
"""

from __future__ import annotations

import struct

import pytest

from scanner.findings import Coverage
from tests.harness import rule_ids, scan_files

WEIGHTS = struct.pack("<16f", *range(16))


def _ir(
    layer: str = '<layer id="2" name="op" type="EvilKernel" version="extension"/>', net: str = "<net"
) -> str:
    return (
        f'<?xml version="1.0"?>\n{net} name="t" version="11"><layers>'
        '<layer id="0" name="x" type="Parameter" version="opset1"><data shape="1,16" element_type="f32"/></layer>'
        f'{layer}<layer id="3" name="out" type="Result" version="opset1"/></layers><edges/></net>'
    )


@pytest.mark.parametrize(
    "xml",
    [
        _ir() + "\n<junk/>",  # pugixml keeps the first element; expat: junk after document element
        _ir('<layer id="2" name="op" type="Add" version="opset1" type="EvilKernel"/>'),  # repeated attribute
        _ir('<layer xmlns="urn:x" id="2" name="op" type="EvilKernel" version="extension"/>'),
        _ir('<layer id="2" name="op" type="Add" version="opset1"/>', net='<net xmlns="urn:x"'),
        _ir('<layer xmlns:a="urn:a" id="2" name="op" type="Add" a:type="EvilKernel" version="opset1"/>'),
        _ir('<layer id="2" name="op&undefined;" type="EvilKernel" version="extension"/>'),
    ],
)
def test_ir_the_runtime_reads_differently_is_not_allowed(xml: str) -> None:
    fr = scan_files({"openvino_model.xml": xml})["openvino_model.xml"]
    assert "OPENVINO-XML-UNSAFE" in rule_ids(fr) and fr.coverage is not Coverage.FULL


def test_serializer_spellings_are_standard_ops() -> None:
    layers = "".join(
        f'<layer id="{i}" name="n{i}" type="{t}" version="{v}"/>'
        for i, (t, v) in enumerate([("ReLU", "opset1"), ("PReLU", "opset1"), ("SoftMax", "opset8")], 10)
    )
    res = scan_files({"m.xml": _ir(layers)})
    assert not res["m.xml"].findings


def test_malformed_xml_without_a_net_root_is_left_alone() -> None:
    res = scan_files({"config.xml": '<?xml version="1.0"?><network><a></network>'})
    assert "OPENVINO-XML-UNSAFE" not in rule_ids(res["config.xml"])


def test_ir_behind_a_long_comment_is_judged() -> None:
    xml = _ir().replace("<net", "<!--" + "x" * 5000 + "-->\n<net", 1)
    f = [f for f in scan_files({"m.xml": xml})["m.xml"].findings if f.rule_id == "OPENVINO-CUSTOM-OP"]
    assert f and f[0].evidence["types"] == ["EvilKernel@extension"]


@pytest.mark.parametrize("prefix", ["tree\nversion=v3\n", "#!/bin/sh\n", "import os\n", '{"a": 1}\n'])
def test_ir_after_text_another_sniffer_claims_is_judged(prefix: str) -> None:
    # OpenVINO 2026.4.1 read past each prefix to the layers; "tree\n" made it LightGBM text (allowed)
    fr = scan_files({"m.xml": prefix + _ir().split("\n", 1)[1]})["m.xml"]
    assert rule_ids(fr) & {"OPENVINO-XML-UNSAFE", "OPENVINO-CUSTOM-OP"}


@pytest.mark.parametrize(
    ("encoding", "seen"),
    [
        ("latin-1", "Add\u00e9"),
        ("windows-1252", "Add\u00e9"),
        ("ISO-8859-1", "Add\u00c3\u00a9"),
        ("latin1", "Add\u00c3\u00a9"),
    ],
)
def test_layer_types_are_read_in_the_encoding_openvino_uses(encoding: str, seen: str) -> None:
    # OpenVINO 2026.4.1 named the layer "Add\u00e9" (UTF-8) under the first two declarations and
    # "Add\u00c3\u00a9" under the two pugixml converts from latin-1
    xml = _ir('<layer id="2" name="op" type="Add\xc3\xa9" version="opset1"/>').replace(
        '<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'
    )
    fr = scan_files({"m.xml": xml.encode("latin-1")})["m.xml"]
    f = [f for f in fr.findings if f.rule_id == "OPENVINO-CUSTOM-OP"]
    assert f and f[0].evidence["types"] == [f"{seen}@opset1"]


@pytest.mark.parametrize(
    ("version", "custom"),
    [("opset1", False), ("opset17", False), ("opset18", True), ("opset99", True), ("opset007", True)],
)
def test_only_the_standard_opsets_are_standard(version: str, custom: bool) -> None:
    # OpenVINO 2026.4.1 resolves Abs@opset99 among registered extensions only
    fr = scan_files({"m.xml": _ir(f'<layer id="2" name="op" type="Abs" version="{version}"/>')})["m.xml"]
    assert ("OPENVINO-CUSTOM-OP" in rule_ids(fr)) is custom
