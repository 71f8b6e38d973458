"""Red-team round 2 (non-pickle formats): Core ML file paths that leave the model's folder.

``samples/mlprogram.mlpackage`` was written by coremltools 9.0 (``ct.convert`` of a MIL program, mlprogram):
its weights are referenced as ``@model_path/weights/weight.bin``. Core ML memory-maps whatever an ML
program's BlobFileValue names, and a LinkedModel loads the compiled model its file name and ':'-separated
search path lead to (relative to the model unless absolute). Before this round ML programs were not walked
at all and every LinkedModel was medium, whatever path it named. (Core ML itself does not run on Linux; the
judgement is fail closed: coremltools' Linux reader keeps only the base name.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.formats.data.test_data_formats import _len, _model
from tests.harness import findings, inspect_bytes, path_verdict

SAMPLE = Path(__file__).parent / "samples" / "mlprogram.mlpackage"
SPEC = "Data/com.apple.CoreML/model.mlmodel"
OWN = b"@model_path/weights/weight.bin"


def test_real_mlprogram_allows() -> None:
    decision, by_rule = path_verdict(SAMPLE)
    assert decision == "allow", {r: [f.message for f in fs] for r, fs in by_rule.items()}


@pytest.mark.parametrize(
    "other",
    [
        b"@model_path/weights/../../x.bi",  # climbs out of weights/
        b"/" * 20 + b"etc/passwd",  # absolute
        b"@model_path/./../Manifest.json",  # the package's other files
        b"@model_path/weights/weight.bi\x00",
        b"weights/weight.bin" + b"\x2f" * 12,  # not under @model_path
    ],
)
def test_mlprogram_weight_reference_outside_the_package_blocks(tmp_path: Path, other: bytes) -> None:
    assert len(other) == len(OWN)
    pkg = tmp_path / "m.mlpackage"
    shutil.copytree(SAMPLE, pkg)
    spec = pkg / SPEC
    data = spec.read_bytes()
    assert data.count(OWN) == 2  # weight and bias
    spec.write_bytes(data.replace(OWN, other, 1))
    decision, by_rule = path_verdict(pkg)
    assert decision == "block"
    assert [f.severity for f in by_rule["COREML-LINKED-MODEL"]] == [Severity.HIGH]


def _linked(name: str, search: str | None) -> bytes:
    link = _len(1, _len(1, name.encode()))
    if search is not None:
        link += _len(2, _len(1, search.encode()))
    return _model(_len(556, _len(1, link)))


@pytest.mark.parametrize(
    ("name", "search"),
    [
        ("/tmp/evil.mlmodelc", None),
        ("../../evil.mlmodelc", "@model_path"),
        ("evil.mlmodelc", ".:/var/tmp"),
        ("evil.mlmodelc", "@model_path/../.."),
        ("evil.mlmodelc", "~/Library"),
        ("C:\\evil.mlmodelc", ""),
        ("", None),
    ],
)
def test_linked_model_outside_the_folder_blocks(name: str, search: str | None) -> None:
    fr = inspect_bytes(_linked(name, search), "m.mlmodel")
    assert [f.severity for f in findings(fr, "COREML-LINKED-MODEL")] == [Severity.HIGH]


@pytest.mark.parametrize("search", [None, "", ".", "@model_path", "@model_path/linked:."])
def test_linked_model_next_to_it_warns(search: str | None) -> None:
    fr = inspect_bytes(_linked("other.mlmodelc", search), "m.mlmodel")
    assert [f.severity for f in findings(fr, "COREML-LINKED-MODEL")] == [Severity.MEDIUM]
